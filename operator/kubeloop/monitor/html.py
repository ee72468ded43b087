"""report.html: one self-contained page (inline CSS and SVG, no scripts, nothing fetched).

Everything shown comes from the MonitorReport, escaped; feature names and categories are data
from requests, so nothing is written to the page unescaped.
"""

from __future__ import annotations

from html import escape

from kubeloop.contracts.monitoring import FeatureDrift, Histogram, MonitorReport, PerformanceReport

COLORS = {"reference": "#8c96a5", "current": "#2f6fdf"}
PHASE_COLORS = {
    "Healthy": "#1b8a3a",
    "Drifting": "#c77800",
    "Degraded": "#c0392b",
    "InsufficientData": "#6b7280",
}
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1f2933;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e4e7eb}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:2px 10px;font-weight:600}
.muted{color:#6b7280}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.card{border:1px solid #e4e7eb;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:18px}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eef0f2;padding:4px 6px;text-align:right}th{background:#f7f8fa}
td:first-child,th:first-child{text-align:left}.fail{color:#c0392b;font-weight:600}.pass{color:#1b8a3a}
.feature{display:inline-block;vertical-align:top;margin:6px 10px 14px 0;width:520px}
.feature h3{font-size:14px;margin:0}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""
STATISTICS = ("psi", "ks", "js", "wasserstein", "chi2_pvalue")


def number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def bar_chart(histogram: Histogram, width: int = 520, height: int = 170) -> str:
    """Grouped bars, reference (grey) beside current (blue), per bucket."""
    count = len(histogram.buckets)
    top = max([*histogram.reference, *histogram.current, 1e-9])
    left, chart_h = 36, height - 56
    group = (width - left - 6) / max(count, 1)
    bar = max(group / 2 - 2, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']  # fmt: skip
    for tick in (0.0, 0.5, 1.0):
        y = 10 + chart_h * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f2"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
                     f'fill="#6b7280">{percent(top * tick)}</text>')  # fmt: skip
    for index, bucket in enumerate(histogram.buckets):
        x = left + index * group + 1
        for offset, (side, values) in enumerate((("reference", histogram.reference),
                                                 ("current", histogram.current))):  # fmt: skip
            value = values[index] if index < len(values) else 0.0
            h = chart_h * value / top
            parts.append(
                f'<rect x="{x + offset * (bar + 1):.1f}" y="{10 + chart_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[side]}"><title>{escape(bucket)} {side}: '
                f"{percent(value)}</title></rect>"
            )
        label = escape(bucket if len(bucket) <= 14 else bucket[:13] + "…")
        cx, cy = x + group / 2, 10 + chart_h + 10
        parts.append(f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="9" fill="#374151" text-anchor="end" '
                     f'transform="rotate(-35 {cx:.1f} {cy:.1f})">{label}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: list[tuple[str, float]], width: int = 520, height: int = 150) -> str:
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 50) / max(len(points) - 1, 1)
    coords = [(40 + i * step, 10 + (height - 40) * (1 - (v - low) / span)) for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLORS["current"]}"><title>'
                   f"{escape(label)}: {value:.4g}</title></circle>"
                   for (x, y), (label, value) in zip(coords, points, strict=True))  # fmt: skip
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
        f'<polyline points="{path}" fill="none" stroke="{COLORS["current"]}" stroke-width="2"/>{dots}'
        f'<text x="4" y="14" font-size="10" fill="#6b7280">{high:.4g}</text>'
        f'<text x="4" y="{height - 30}" font-size="10" fill="#6b7280">{low:.4g}</text></svg>'
    )


def verdict_cell(feature: FeatureDrift) -> str:
    if feature.drifted:
        why = "missing rate" if feature.reason == "MissingRate" else "score"
        return f'<td class="fail">drift ({why})</td>'
    return '<td class="pass">pass</td>'


def score_table(features: list[FeatureDrift]) -> str:
    head = "".join(f"<th>{escape(s)}</th>" for s in STATISTICS)
    rows = []
    for f in features:
        statistics = "".join(f"<td>{number(f.statistics.get(s))}</td>" for s in STATISTICS)
        beyond = f.unseen if f.kind == "categorical" else f.out_of_range
        rows.append(
            f"<tr><td>{escape(f.name)}</td><td>{f.kind}</td><td>{f.method}</td><td><b>{number(f.score)}</b>"
            f"</td><td>{f.threshold:g}</td>{verdict_cell(f)}{statistics}"
            f"<td>{percent(f.reference_missing_rate)} → {percent(f.missing_rate)}</td><td>{beyond}</td>"
            f"<td>{f.samples}</td></tr>"
        )
    return (
        "<table><tr><th>feature</th><th>kind</th><th>method</th><th>score</th><th>threshold</th>"
        f"<th>result</th>{head}<th>missing (train → now)</th><th>out of range / unseen</th>"
        f"<th>values</th></tr>{''.join(rows)}</table>"
    )


def feature_panels(features: list[FeatureDrift]) -> str:
    panels = []
    for f in features:
        body = bar_chart(f.histogram) if f.histogram else '<p class="muted">no values to compare</p>'
        state = '<span class="fail">drift</span>' if f.drifted else '<span class="pass">pass</span>'
        panels.append(
            f'<div class="feature"><h3>{escape(f.name)}: {f.method} {number(f.score)} {state}</h3>'
            f"{body}</div>"
        )
    return "".join(panels)


def performance_section(performance: PerformanceReport | None) -> str:
    if performance is None:
        return '<p class="muted">No performance check configured (spec.performance).</p>'
    p = performance
    state = '<span class="fail">degraded</span>' if p.degraded else '<span class="pass">ok</span>'
    rows = "".join(
        f"<tr><td>{point.start:%Y-%m-%d %H:00}</td><td>{point.labeled}</td>"
        f"<td>{number(point.value)}</td></tr>"
        for point in p.over_time
    )
    trend = [(f"{pt.start:%m-%d %H:00}", pt.value) for pt in p.over_time if pt.value is not None]
    chart = line_chart([(label, value) for label, value in trend]) if len(trend) >= 2 else ""
    return (
        f"<p>{state} {escape(p.status)}: {escape(p.message)}</p>"
        f'<div class="cards"><div class="card">live {escape(p.metric)}<b>{number(p.value)}</b></div>'
        f'<div class="card">at training<b>{number(p.baseline)}</b></div>'
        f'<div class="card">drop (allowed {p.max_drop:g})<b>{number(p.drop)}</b></div>'
        f'<div class="card">labelled / eligible<b>{p.labeled} / {p.eligible}</b></div></div>'
        f"{chart}<table><tr><th>hour</th><th>labelled</th><th>{escape(p.metric)}</th></tr>{rows}</table>"
    )


def quality_section(report: MonitorReport) -> str:
    q = report.data_quality
    rows = [("rows read", str(q.rows)), ("unreadable files", str(q.bad_files)),
            ("unreadable records", str(q.bad_records)),
            ("unexpected columns", ", ".join(q.unexpected_columns) or "none")]  # fmt: skip
    for title, counts in (("missing column", q.missing_columns), ("not a number", q.invalid_values),
                          ("outside the training range", q.out_of_range),
                          ("unseen categories", q.unseen_categories)):  # fmt: skip
        rows.extend((f"{title}: {name}", str(count)) for name, count in counts.items())
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table><tr><th>check</th><th>count</th></tr>{body}</table>"


def render(report: MonitorReport) -> str:
    color = PHASE_COLORS.get(report.phase, "#6b7280")
    prediction = report.prediction
    cards = [("rows", str(report.samples)), ("requests", str(report.requests)),
             ("largest drift score", number(report.drift_score)),
             ("drifted features", f"{len(report.drifted_features)} / {len(report.features)}")]  # fmt: skip
    if prediction is not None:
        cards.append(("prediction drift", f"{prediction.method} {number(prediction.score)}"))
    card_html = "".join(f'<div class="card">{escape(k)}<b>{escape(v)}</b></div>' for k, v in cards)
    legend = (
        '<p class="legend muted"><span style="background:#8c96a5"></span>training reference'
        '<span style="background:#2f6fdf"></span>live window</p>'
    )
    prediction_html = (
        score_table([prediction]) + feature_panels([prediction])
        if prediction is not None
        else '<p class="muted">no predictions logged</p>'
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(report.monitor)} '
        f"report {report.time:%Y-%m-%d %H:%M}</title><style>{STYLE}</style></head><body>"
        f"<h1>ModelMonitor {escape(report.namespace)}/{escape(report.monitor)}</h1>"
        f'<p class="muted">model {escape(report.model)} v{report.version} served by ModelDeployment '
        f"{escape(report.deployment)} · window {report.window_start:%Y-%m-%d %H:%M} → "
        f"{report.window_end:%Y-%m-%d %H:%M} UTC · run {report.time:%Y-%m-%d %H:%M:%S} UTC</p>"
        f'<p><span class="badge" style="background:{color}">{escape(report.phase)}</span> '
        f"{escape(report.message)}</p><div class='cards'>{card_html}</div>"
        f"<h2>Input drift ({escape(report.rule.method)}, threshold {report.rule.threshold:g})</h2>"
        f"{score_table(report.features)}<h2>Reference vs current</h2>{legend}"
        f"{feature_panels(report.features)}<h2>Prediction drift</h2>{prediction_html}"
        f"<h2>Performance</h2>{performance_section(report.performance)}"
        f"<h2>Data quality</h2>{quality_section(report)}"
        f'<p class="muted">report.json: {escape(report.json_uri)}</p></body></html>'
    )
