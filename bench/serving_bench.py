"""Model server vs the floor (bench/floor_app.py), side by side, on a RandomForest trained by the trainer.

    .venv/bin/python bench/serving_bench.py [--seconds 15] [--rounds 2] [--work /tmp/kubeloop-bench]

Needs `wrk` (Debian: apt-get install wrk). The model: RandomForestClassifier(100 trees, depth 10) on
make_classification(50k x 20), trained by `python -m kubeloop.trainer` exactly as its Job would.
Our server runs with its metrics and request logging at 100% (logs go to a file:// store root, so
no store process competes for the 2 CPUs). One server process at a time, one uvicorn worker each,
order alternating per round; wrk runs as its own process on loopback (-t1). Prints a Markdown table
of medians over the rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
FEATURES = [f"f{i}" for i in range(20)]
# (label, rows per request, connections)
POINTS = [
    ("1 row, c=1", 1, 1),
    ("1 row, c=32", 1, 32),
    ("100 rows, c=1", 100, 1),
    ("100 rows, c=32", 100, 32),
]


def train_spec(work: Path) -> dict[str, Any]:
    return {
        "model": "bench",
        "dataset": {"uri": f"file://{work}/data.csv", "format": "csv", "target": "label"},
        "algorithm": {
            "estimator": "RandomForestClassifier",
            "params": {"n_estimators": 100, "max_depth": 10},
        },
        "split": {"testFraction": 0.2, "seed": 0},
    }


def train(work: Path) -> Path:
    """The trainer's model.onnx (and model.json) for the anchors' data set; reused when present."""
    output = work / "run"
    if (output / "model.json").exists():
        return output
    x, y = make_classification(
        n_samples=50_000, n_features=20, n_informative=10, n_redundant=5, random_state=0
    )
    frame = pd.DataFrame(x.astype(np.float32), columns=FEATURES)
    frame["label"] = y
    frame.to_csv(work / "data.csv", index=False)
    task = {
        "mode": "train",
        "spec": train_spec(work),
        "output": f"file://{output}/",
        "trainingRun": "bench/rf",
        "trainingRunUid": "bench",
    }
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "operator"),
        "KUBELOOP_TASK": json.dumps(task),
        "KUBELOOP_TERMINATION_LOG": str(work / "train.result"),
    }
    subprocess.run([PYTHON, "-m", "kubeloop.trainer"], env=env, check=True, stdout=subprocess.DEVNULL)
    return output


def body(rows: int, seed: int = 1) -> str:
    data = np.random.default_rng(seed).normal(size=(rows, len(FEATURES))).round(4)
    return json.dumps(
        {
            "inputs": [
                {"name": name, "shape": [rows, 1], "datatype": "FP32", "data": data[:, i].tolist()}
                for i, name in enumerate(FEATURES)
            ]
        }
    )


def start(kind: str, run: Path, work: Path, port: int) -> subprocess.Popen[bytes]:
    model = run / "model.onnx"
    if kind == "floor":
        argv, env = [PYTHON, str(REPO / "bench" / "floor_app.py"), str(model), str(port)], dict(os.environ)
    else:
        argv = [PYTHON, "-m", "kubeloop.serving"]
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "operator"),
            "KUBELOOP_MODEL_NAME": "bench",
            "KUBELOOP_MODEL_VERSION": "1",
            "KUBELOOP_MODEL_URI": f"file://{model}",
            "KUBELOOP_MODEL_SHA256": hashlib.sha256(model.read_bytes()).hexdigest(),
            "KUBELOOP_BIND_HOST": "127.0.0.1",
            "KUBELOOP_PORT": str(port),
            "KUBELOOP_STORE_ROOT": f"file://{work}/store/",
            "KUBELOOP_LOG_SAMPLE_RATE": "1.0",
            "KUBELOOP_LOG_LEVEL": "WARNING",
        }
    log = (work / f"{kind}.log").open("ab")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ready = f"http://127.0.0.1:{port}/v2/health/ready" if kind == "kubeloop" else None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if ready:
                urllib.request.urlopen(ready, timeout=1)  # noqa: S310 - loopback
            else:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v2/models/bench/infer", data=body(1).encode(), method="POST"
                )
                urllib.request.urlopen(request, timeout=1)  # noqa: S310
            return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{kind} did not start; see {work / f'{kind}.log'}")


def wrk(
    port: int, rows: int, connections: int, seconds: int, work: Path, *, payload: str | None = None
) -> dict[str, float]:
    """One wrk run of `payload` (default: `body(rows)`) POSTed to the V2 infer path of model "bench"."""
    payload = payload or body(rows)
    script = work / f"post-{hashlib.sha256(payload.encode()).hexdigest()[:12]}.lua"
    lua = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    script.write_text(f"{lua}wrk.body = [[{payload}]]\n")
    url = f"http://127.0.0.1:{port}/v2/models/bench/infer"
    # --timeout 10s: a slow peer's queue at 32 connections must count as latency, not socket errors
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s",
               str(script), url]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": _ms(out, "50%"), "p99": _ms(out, "99%")}


def _ms(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def measure(kind: str, run: Path, work: Path, seconds: int) -> dict[str, Any]:
    port = 18000 + (kind == "floor")
    process = start(kind, run, work, port)
    try:
        results: dict[str, Any] = {}
        for label, rows, connections in POINTS:
            wrk(port, rows, connections, 3, work)  # warm-up
            results[label] = wrk(port, rows, connections, seconds, work) | {"rows": rows}
        results["rss"] = rss_mb(process.pid)
        return results
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def table(rounds: list[dict[str, dict[str, Any]]]) -> str:
    def median(kind: str, label: str, key: str) -> float:
        return statistics.median(r[kind][label][key] for r in rounds)

    lines = [
        "| point | server | req/s | rows/s | p50 ms | p99 ms | vs floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, rows, _ in POINTS:
        floor = median("floor", label, "rps")
        for kind, name in (("kubeloop", "kubeloop (metrics + 100% logging)"), ("floor", "floor")):
            rps, p50, p99 = (median(kind, label, key) for key in ("rps", "p50", "p99"))
            lines.append(
                f"| {label} | {name} | {rps:,.0f} | {rps * rows:,.0f} | {p50:.2f} | {p99:.2f} "
                f"| {rps / floor:.2f}x |"
            )
    rss = {k: statistics.median(r[k]["rss"] for r in rounds) for k in ("kubeloop", "floor")}
    lines.append(f"\nPeak RSS (VmHWM): kubeloop {rss['kubeloop']:.0f} MB, floor {rss['floor']:.0f} MB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kubeloop-bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    run = train(args.work)
    load_before = os.getloadavg()[0]
    rounds = []
    for index in range(args.rounds):
        order = ("kubeloop", "floor") if index % 2 == 0 else ("floor", "kubeloop")
        rounds.append({kind: measure(kind, run, args.work, args.seconds) for kind in order})
        print(f"round {index + 1}: {json.dumps(rounds[-1])}", file=sys.stderr)
    print(table(rounds))
    print(f"Load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
