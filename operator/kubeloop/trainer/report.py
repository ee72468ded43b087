"""report.html: one self-contained page (inline CSS, no scripts, no external assets) per run."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from kubeloop.contracts.model import DatasetRef, StoredFile
from kubeloop.trainer.export import Fidelity
from kubeloop.trainer.validation import ValidationReport

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222;line-height:1.4}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .7rem;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}th{background:#f6f6f6}code{font-size:.85em}.num{text-align:right}
.bar{background:#4a7bd0;height:.8rem;display:inline-block}.bad{color:#b00020}.ok{color:#187a36}
"""


@dataclass(frozen=True)
class ReportInput:
    model: str
    training_run: str
    estimator: str
    dataset: DatasetRef
    validation: ValidationReport
    metrics: dict[str, float]
    params: dict[str, Any]
    importances: dict[str, float]
    fidelity: Fidelity | None
    files: dict[str, StoredFile]
    seconds: dict[str, float]


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{cell if isinstance(cell, _Html) else escape(_text(cell))}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


class _Html(str):
    """Markup built here from escaped parts; inserted as is."""


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _bars(importances: dict[str, float]) -> str:
    top = max((abs(v) for v in importances.values()), default=0.0) or 1.0
    rows = [
        (name, value, _Html(f'<span class="bar" style="width:{abs(value) / top * 20:.2f}rem"></span>'))
        for name, value in importances.items()
    ]
    return _table(["column", "mean score drop", ""], rows)


def _validation(report: ValidationReport) -> str:
    verdict = '<p class="ok">Every rule passed.</p>' if report.ok else '<p class="bad">Validation failed.</p>'
    checked = f"<p>Rules checked: {escape(', '.join(report.checked))}.</p>"
    violations = (
        _table(
            ["rule", "column", "count", "message"],
            [(v.rule, v.column, v.count, v.message) for v in report.violations],
        )
        if report.violations
        else ""
    )
    columns = _table(
        ["column", "kind", "missing", "distinct", "min", "max", "mean"],
        [(n, s.kind, s.missing, s.distinct, s.min, s.max, s.mean) for n, s in report.summary.items()],
    )
    return verdict + checked + violations + "<h3>Columns</h3>" + columns


def _fidelity(found: Fidelity | None) -> str:
    if found is None:
        return "<p>No export.</p>"
    return _table(
        ["test rows", "label agreement", "max |diff|", "max relative diff"],
        [(found.rows, found.label_agreement, found.max_abs_diff, found.max_rel_diff)],
    )


def render(data: ReportInput) -> str:
    d = data.dataset
    sections = [
        f"<h1>{escape(data.model)}: {escape(data.estimator)}</h1>",
        f"<p>TrainingRun <code>{escape(data.training_run)}</code></p>",
        "<h2>Dataset</h2>",
        _table(["uri", "sha256", "rows", "columns"], [(d.uri, d.sha256, d.rows, d.columns)]),
        "<h2>Metrics (test split)</h2>",
        _table(["metric", "value"], sorted(data.metrics.items())),
        "<h2>Parameters</h2>",
        _table(["parameter", "value"], sorted(data.params.items())),
        "<h2>Permutation importance</h2>",
        _bars(data.importances),
        "<h2>ONNX export fidelity</h2>",
        _fidelity(data.fidelity),
        "<h2>Validation</h2>",
        _validation(data.validation),
        "<h2>Files</h2>",
        _table(["file", "sha256", "bytes"], [(n, f.sha256, f.size) for n, f in data.files.items()]),
        "<h2>Timings (seconds)</h2>",
        _table(["stage", "seconds"], data.seconds.items()),
    ]
    title = escape(f"{data.model} - {data.training_run}")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n"
    )
