"""Monitor drift statistics against Evidently's DataDriftPreset (a benchmark, not a test).

Both sides get the same seeded data: a reference and a current frame of `--rows` x `--features`
(three quarters numeric: normal, log-normal and Poisson columns with 1 % missing; a quarter
categorical with 4 to 19 categories), half of the current features shifted. Each side runs in its
own process, alternating, `--repeat` times; medians are reported.

- kubeloop: the monitor's own code path. The training-time profile (quantile bins, category
  counts, the 1,000-value sample) is built first and timed apart; then the monitor run proper:
  accumulators fed 10,000 rows at a time (as log files arrive), every statistic for every feature
  (PSI, exact KS, JS, Wasserstein, chi-squared, missing rate), the verdicts, and the HTML report.
- Evidently: `Report([DataDriftPreset()]).run(current, reference)` and `snapshot.dict()` (the
  results); its HTML (`save_html`) is timed apart.

Peak RSS is the process's high-water mark over the measured part only (reset through
/proc/self/clear_refs after the data is generated), minus the RSS just before: the memory the
computation itself needed.

    .venv/bin/python bench/monitor_bench.py --evidently ~/.cache/kubeloop-bench/evidently/bin/python
    .venv/bin/python bench/monitor_bench.py --rows 1000000 --features 50 --repeat 3  # kubeloop only
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CHUNK = 10_000


def frames(rows: int, features: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(reference, current, names of the shifted features)."""
    rng = np.random.default_rng(seed)
    numeric = features - features // 4
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    shifted = []
    for i in range(features):
        name, shift = f"f{i:02d}", i % 2 == 1
        if i < numeric:
            kind = i % 3
            if kind == 0:
                make = lambda n, s: rng.normal(10 + 0.8 * s, 3, n)  # noqa: E731
            elif kind == 1:
                make = lambda n, s: rng.lognormal(1 + 0.4 * s, 0.5, n)  # noqa: E731
            else:
                make = lambda n, s: rng.poisson(4 + 2 * s, n).astype(np.float64)  # noqa: E731
            ref[name], cur[name] = make(rows, 0), make(rows, int(shift))
            for column in (ref[name], cur[name]):
                column[rng.random(rows) < 0.01] = np.nan
        else:
            count = 4 + i % 16
            categories = np.array([f"c{k}" for k in range(count)], dtype=object)
            p = rng.dirichlet(np.ones(count) * 3)
            q = rng.dirichlet(np.ones(count) * 3) if shift else p
            ref[name], cur[name] = rng.choice(categories, rows, p=p), rng.choice(categories, rows, p=q)
        if shift:
            shifted.append(name)
    return pd.DataFrame(ref), pd.DataFrame(cur), shifted


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def kubeloop_worker(rows: int, features: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "operator"))
    from kubeloop.contracts.monitoring import DriftRule, MonitorReport  # noqa: PLC0415
    from kubeloop.contracts.profile import FeatureProfile  # noqa: PLC0415
    from kubeloop.monitor import html  # noqa: PLC0415
    from kubeloop.monitor.drift import feature_drift  # noqa: PLC0415
    from kubeloop.monitor.scan import accumulator  # noqa: PLC0415
    from kubeloop.trainer.profile import categorical_profile, numeric_profile  # noqa: PLC0415

    ref, cur, shifted = frames(rows, features)
    started = time.perf_counter()
    profiles: dict[str, FeatureProfile] = {
        name: numeric_profile(ref[name].to_numpy(), 7) if ref[name].dtype.kind == "f"
        else categorical_profile(ref[name])
        for name in ref.columns
    }  # fmt: skip
    profile_seconds = time.perf_counter() - started
    rule = DriftRule(method="wasserstein", threshold=0.1)  # Evidently's default for numeric columns
    # Columns as arrays, as the monitor holds a log file's values (pandas 3 keeps text in Arrow).
    columns = {name: cur[name].to_numpy(dtype=object if cur[name].dtype.kind != "f" else np.float64)
               for name in cur.columns}  # fmt: skip
    before = rss_mb("VmRSS")
    reset_peak()
    started = time.perf_counter()
    accs = {name: accumulator(profile) for name, profile in profiles.items()}
    for start in range(0, rows, CHUNK):
        for name, acc in accs.items():
            acc.update(columns[name][start : start + CHUNK])
    drifts = [feature_drift(name, acc, rule) for name, acc in accs.items()]
    seconds = time.perf_counter() - started
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    report = MonitorReport(namespace="bench", monitor="bench", deployment="bench", model="bench", version=1,
                           time=now, window_start=now, window_end=now, phase="Drifting",
                           reason="DriftDetected", message="bench", samples=rows, requests=rows // 100,
                           files=rows // CHUNK, min_samples=1, rule=rule, features=drifts)  # fmt: skip
    html_started = time.perf_counter()
    page = html.render(report)
    html_seconds = time.perf_counter() - html_started
    return {
        "engine": "kubeloop", "seconds": seconds, "profile_seconds": profile_seconds,
        "html_seconds": html_seconds,
        "html_kb": len(page) / 1024, "peak_mb": rss_mb("VmHWM") - before, "rss_mb": rss_mb("VmHWM"),
        "drifted": sorted(d.name for d in drifts if d.drifted), "shifted": shifted,
    }  # fmt: skip


def evidently_worker(rows: int, features: int) -> dict[str, Any]:
    import evidently  # noqa: PLC0415
    from evidently import Report  # noqa: PLC0415
    from evidently.presets import DataDriftPreset  # noqa: PLC0415

    ref, cur, shifted = frames(rows, features)
    before = rss_mb("VmRSS")
    reset_peak()
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(cur, ref)
    results = snapshot.dict()
    seconds = time.perf_counter() - started
    peak = rss_mb("VmHWM") - before
    html_started = time.perf_counter()
    snapshot.save_html("/tmp/kubeloop-bench-evidently.html")
    html_seconds = time.perf_counter() - html_started
    drifted = sorted(
        m["config"]["column"] for m in results["metrics"]
        if m["config"].get("type", "").endswith("ValueDrift") and m["value"] >= m["config"]["threshold"]
    )  # fmt: skip
    return {"engine": f"evidently {evidently.__version__}", "seconds": seconds, "html_seconds": html_seconds,
            "peak_mb": peak, "rss_mb": rss_mb("VmHWM"), "drifted": drifted, "shifted": shifted}  # fmt: skip


def write_logs(folder: Path, cur: pd.DataFrame, at: Any, per_record: int = 50, per_file: int = 2000) -> None:
    """The current frame as the model server logs it: columnar records, gzip JSON lines per file."""
    import gzip  # noqa: PLC0415

    hour = folder / f"dt={at:%Y-%m-%d}" / f"hr={at:%H}"
    hour.mkdir(parents=True)
    labels = np.where(np.arange(len(cur)) % 3 == 0, "yes", "no")
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for number, start in enumerate(range(0, len(cur), per_file)):
        lines = []
        for first in range(start, min(start + per_file, len(cur)), per_record):
            part = cur.iloc[first : first + per_record]
            inputs = {
                c: [None if isinstance(v, float) and math.isnan(v) else v for v in part[c].tolist()]
                for c in cur
            }
            lines.append(
                json.dumps(
                    {
                        "requestId": f"r{first}",
                        "time": stamp,
                        "model": "bench",
                        "version": 1,
                        "pod": "bench-0",
                        "protocol": "v1",
                        "latencyMs": 1.0,
                        "rows": len(part),
                        "inputs": inputs,
                        "outputs": {"label": labels[first : first + len(part)].tolist()},
                    }
                )
            )
        (hour / f"bench-0-1-{number:06d}.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode(), 5))


def workload(rows: int, features: int) -> dict[str, Any]:
    """`python -m kubeloop.monitor` end to end over the current frame written as request logs on
    file:// (reading, gunzip, JSON parsing, statistics, report.json and report.html)."""
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    sys.path.insert(0, str(REPO / "operator"))
    from kubeloop.contracts.model import DatasetRef, Golden, InputColumn, Lineage, ModelCard, Signature  # noqa: PLC0415
    from kubeloop.contracts.monitoring import DriftRule, MonitorTask  # noqa: PLC0415
    from kubeloop.contracts.profile import Profile  # noqa: PLC0415
    from kubeloop.trainer.profile import categorical_profile, numeric_profile  # noqa: PLC0415

    ref, cur, _ = frames(rows, features)
    root = Path(tempfile.mkdtemp(prefix="kubeloop-bench-", dir="/tmp"))
    model = root / "model"
    model.mkdir()
    numeric = {c: ref[c].dtype.kind == "f" for c in ref.columns}
    profile = Profile(task="classification", rows=rows, prediction_rows=rows,
                      prediction=categorical_profile(
                          pd.Series(np.where(np.arange(rows) % 3 == 0, "yes", "no"))),
                      features={c: numeric_profile(ref[c].to_numpy(), 7) if numeric[c]
                                else categorical_profile(ref[c])
                                for c in ref.columns})  # fmt: skip
    (model / "profile.json").write_text(profile.model_dump_json(by_alias=True))
    signature = Signature(task="classification", classes=["no", "yes"],
                          inputs=[InputColumn(name=c, type="float" if numeric[c] else "string",
                                              categorical=not numeric[c])
                                  for c in ref.columns])  # fmt: skip
    card = ModelCard(model="bench", estimator="none", signature=signature, metrics={}, params={},
                     golden=Golden(inputs={}),
                     lineage=Lineage(training_run="bench/bench", training_run_uid="u", code_version="bench",
                                     dataset=DatasetRef(uri="file:///x", sha256="0" * 64, rows=rows,
                                                        columns=features)))  # fmt: skip
    (model / "model.json").write_text(card.model_dump_json(by_alias=True))
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    write_logs(root / "logs" / "bench" / "bench" / "v1", cur, now)
    task = MonitorTask(namespace="bench", monitor="bench", deployment="bench", model="bench", version=1,
                       model_folder=f"file://{model}/", store_root=f"file://{root}/", window_seconds=3600,
                       min_samples=1, drift=DriftRule(method="wasserstein", threshold=0.1))  # fmt: skip
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "operator"), "KUBELOOP_TASK": task.to_json(),
           "KUBELOOP_TERMINATION_LOG": str(root / "termination.log")}  # fmt: skip
    # Started by a small launcher: Linux carries a process's RSS high-water mark across fork + exec,
    # so a child of this (large) process would report this process's memory as its own.
    launcher = ("import json, os, subprocess, sys, time; t = time.perf_counter(); "
                "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL); "
                "_, s, u = os.wait4(p.pid, 0); "
                "print(json.dumps([s, u.ru_maxrss, time.perf_counter() - t]))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", launcher, sys.executable, "-m", "kubeloop.monitor"], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    status, maxrss, seconds = json.loads(done.stdout)
    assert status == 0, done.stderr
    summary = json.loads((root / "termination.log").read_text())
    size = sum(f.stat().st_size for f in (root / "logs").rglob("*.gz")) / 2**20
    shutil.rmtree(root)
    return {"seconds": seconds, "peak_mb": maxrss / 1024, "samples": summary["samples"],
            "phase": summary["phase"], "logs_mb": size}  # fmt: skip


def run_worker(python: str, engine: str, rows: int, features: int) -> dict[str, Any]:
    done = subprocess.run([python, __file__, "--worker", engine, "--rows", str(rows),
                           "--features", str(features)],
                          capture_output=True, text=True, check=False, timeout=3600)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{engine} worker failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.splitlines()[-1]))


def median(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evidently", default="", help="python of a virtualenv with evidently installed")
    parser.add_argument(
        "--workload", action="store_true", help="also time python -m kubeloop.monitor on logs"
    )
    parser.add_argument("--worker", choices=["kubeloop", "evidently"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker = kubeloop_worker if args.worker == "kubeloop" else evidently_worker
        print(json.dumps(worker(args.rows, args.features)))
        return
    ours, theirs = [], []
    for _ in range(args.repeat):
        ours.append(run_worker(sys.executable, "kubeloop", args.rows, args.features))
        if args.evidently:
            theirs.append(run_worker(args.evidently, "evidently", args.rows, args.features))
    print(f"reference {args.rows:,} x {args.features} vs current {args.rows:,} x {args.features}, "
          f"median of {args.repeat}\n")  # fmt: skip
    print("| measure | kubeloop | " + (f"{theirs[0]['engine']} |" if theirs else ""))
    print("|---|---|" + ("---|" if theirs else ""))
    rows = [("drift statistics, every feature (wall, s)", "seconds", "{:.3f}"),
            ("peak RSS of the computation (MB)", "peak_mb", "{:.0f}"),
            ("process RSS at its peak during the run, data and imports included (MB)", "rss_mb", "{:.0f}"),
            ("HTML report (wall, s)", "html_seconds", "{:.3f}")]  # fmt: skip
    for title, key, form in rows:
        line = f"| {title} | {form.format(median(ours, key))} |"
        if theirs:
            line += f" {form.format(median(theirs, key))} |"
        print(line)
    print(f"| profile of the reference, at training (wall, s) | {median(ours, 'profile_seconds'):.3f} |"
          + (" - |" if theirs else ""))  # fmt: skip
    if theirs:
        speed = median(theirs, "seconds") / median(ours, "seconds")
        memory = median(theirs, "peak_mb") / max(median(ours, "peak_mb"), 1e-9)
        print(f"\nkubeloop is {speed:.1f}x faster and needs 1/{memory:.1f} of the memory")
        print(f"drifted (kubeloop): {ours[0]['drifted']}\ndrifted (evidently): {theirs[0]['drifted']}")
    print(f"shifted on purpose: {ours[0]['shifted']}")
    if args.workload:
        runs = [workload(args.rows, args.features) for _ in range(args.repeat)]
        print(
            f"\n`python -m kubeloop.monitor` over {runs[0]['samples']:,} logged rows "
            f"({runs[0]['logs_mb']:.1f} MB of gzip JSON lines, file://): "
            f"{median(runs, 'seconds'):.2f} s wall, "
            f"peak RSS {median(runs, 'peak_mb'):.0f} MB, phase {runs[0]['phase']}"
        )


if __name__ == "__main__":
    main()
