"""Our model server, the floor, MLServer and KServe side by side, in one run, on the same RandomForest.

    .venv/bin/python bench/peers_bench.py [--seconds 20] [--peers mlserver,mlserver-inline,kserve]
        [--max-load 1.5] [--work DIR]

Reuses bench/serving_bench.py: the trainer's model.onnx (RandomForest, 100 trees, depth 10, 20
features), our server and the floor started as there, and the same wrk load generator. The peers
serve the same pipeline as scikit-learn objects in their own format (a joblib file, which our server
never loads), fitted here by the trainer's own code on the same split and seed, and checked against
model.onnx. Each peer lives in its own venv under ~/.cache/kubeloop-bench/<peer>/ (created with the
latest releases when missing: they pin FastAPI/pydantic versions the project cannot share). A peer
that cannot be installed or started is reported with its error; the others still run.

Every server: one worker, a subprocess on 127.0.0.1, a 3 s warm-up before each point, RSS of all its
processes sampled every 0.25 s. Every server gets the same bytes: V2 bodies with one FP32 tensor per
column and `"parameters": {"content_type": "pd"}`, which the peers need to build a DataFrame.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
import serving_bench as sb

sys.path.insert(0, str(sb.REPO / "operator"))

from kubeloop.contracts.model import DatasetRef
from kubeloop.trainer.columns import onnx_feeds
from kubeloop.trainer.dataset import Dataset, parse
from kubeloop.trainer.estimators import effective_params
from kubeloop.trainer.prepare import encode_and_split, parse_spec
from kubeloop.trainer.train import make_pipeline
from kubeloop.trainer.validation import validate

VENVS = Path.home() / ".cache" / "kubeloop-bench"


@dataclass(frozen=True)
class Venv:
    packages: list[str]  # pip install arguments: the latest releases unless a pin says why
    check: str  # Python that must run in the venv for it to count as installed
    report: list[str]  # distributions whose versions are printed


VENV_SPECS = {
    # uvloop < 0.22: with 0.22+ MLServer 1.7.1's inference worker dies at start ("RuntimeError: There is
    # no current event loop in thread 'MainThread'" in mlserver/parallel/worker.py _ignore_signals;
    # upstream issue SeldonIO/MLServer#2286, open). Pinning uvloop is the workaround given there.
    "mlserver": Venv(
        ["mlserver", "mlserver-sklearn", "uvloop<0.22"],
        "import mlserver_sklearn, sklearn, joblib, importlib.metadata as m; "
        "assert int(m.version('uvloop').split('.')[1]) < 22, 'uvloop >= 0.22'",
        ["mlserver", "mlserver-sklearn", "scikit-learn", "fastapi", "uvloop"],
    ),
    "kserve": Venv(
        ["kserve", "scikit-learn", "joblib"],
        "import kserve, sklearn, joblib",
        ["kserve", "scikit-learn", "fastapi", "uvloop"],
    ),
}
PEERS = {"mlserver": "mlserver", "mlserver-inline": "mlserver", "kserve": "kserve"}  # peer -> its venv
NAMES = {"kubeloop": "kubeloop (metrics + 100% logging)", "floor": "floor (bare FastAPI + ORT)",
         "mlserver": "MLServer (1 inference worker)", "mlserver-inline": "MLServer (parallel_workers=0)",
         "kserve": "KServe (kserve.Model, sklearn)"}  # fmt: skip
PORTS = {"kubeloop": 18400, "floor": 18401, "mlserver": 18402, "mlserver-inline": 18403, "kserve": 18404}


class Unavailable(Exception):
    """A peer that could not be installed or started; the message is the precise reason."""


def payload(rows: int) -> str:
    return json.dumps({"parameters": {"content_type": "pd"}, **json.loads(sb.body(rows))})


# -- the peers' model and environments ---------------------------------------------------------------


def sklearn_model(work: Path, run: Path) -> tuple[Path, dict[str, float]]:
    """The trainer's pipeline fitted again on the trainer's split and seed, as model.joblib."""
    folder = work / "peers"
    target = folder / "model.joblib"
    parsed, estimator = parse_spec(sb.train_spec(work))
    frame = parse((work / "data.csv").read_bytes(), "csv")
    report = validate(frame, parsed.dataset, regression=False)
    ref = DatasetRef(uri=parsed.dataset.uri, sha256="0" * 64, rows=len(frame), columns=len(frame.columns))
    prepared = encode_and_split(parsed, estimator, Dataset(frame, ref), report)
    if target.exists():
        pipeline = joblib.load(target)  # written by this script: the peers' format
    else:
        params = effective_params(estimator, parsed.algorithm.params, prepared.seed)
        pipeline = make_pipeline(prepared, params)
        pipeline.fit(prepared.x_train, prepared.y_train)
        folder.mkdir(exist_ok=True)
        joblib.dump(pipeline, target)
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    labels, proba = session.run(["label", "probabilities"], onnx_feeds(prepared.x_test, prepared.columns))
    expected = pipeline.predict_proba(prepared.x_test)
    agreement = float(np.mean(labels.ravel() == pipeline.classes_[expected.argmax(axis=1)]))
    return target, {"label_agreement": agreement, "max_abs_prob_diff": float(np.abs(proba - expected).max())}


def peer_python(venv_name: str) -> Path:
    """The venv's interpreter; the venv is created and filled (latest releases) when missing."""
    venv, packages, check = VENVS / venv_name, VENV_SPECS[venv_name].packages, VENV_SPECS[venv_name].check
    python = venv / "bin" / "python"
    if (
        python.exists()
        and subprocess.run([python, "-c", check], check=False, capture_output=True).returncode == 0
    ):
        return python
    for command in ([sys.executable, "-m", "venv", str(venv)],
                    [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip", *packages]):  # fmt: skip
        done = subprocess.run(command, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"`{' '.join(map(str, command))}` failed:\n{done.stderr.strip()[-1500:]}")
    done = subprocess.run([python, "-c", check], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise Unavailable(f"installed, but `{check}` fails:\n{done.stderr.strip()[-1500:]}")
    return python


def versions(python: Path, distributions: list[str]) -> str:
    code = (
        "import sys, importlib.metadata as m; print(*(f'{d} {m.version(d)}' for d in sys.argv[1:]), sep=', ')"
    )
    done = subprocess.run([python, "-c", code, *distributions], check=False, capture_output=True, text=True)
    return done.stdout.strip() or done.stderr.strip()[-300:]


# -- starting servers ----------------------------------------------------------------------------------


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None


def peer_env() -> dict[str, str]:
    """The project's Python settings stay out of the peers' processes; so do KServe's per-request
    FastAPIDeprecationWarning lines (ORJSONResponse under FastAPI 0.165), which only cost it time."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return env | {"PYTHONWARNINGS": "ignore"}


def mlserver_launch(model: Path, work: Path, peer: str) -> Launch:
    """`mlserver start` on a repository with one model. "mlserver": one inference worker process
    behind the HTTP process (its default); "mlserver-inline": inference in the HTTP process. Access
    logs off (debug=false; they would only slow it down), metrics on their own port as shipped."""
    root = work / "peers" / peer
    (root / "bench").mkdir(parents=True, exist_ok=True)
    port = PORTS[peer]
    settings = {"debug": False, "host": "127.0.0.1", "http_port": port, "grpc_port": port + 100,
                "metrics_port": port + 200, "parallel_workers": int(peer == "mlserver")}  # fmt: skip
    (root / "settings.json").write_text(json.dumps(settings))
    model_settings = {"name": "bench", "implementation": "mlserver_sklearn.SKLearnModel",
                      "parameters": {"uri": str(model), "version": "1"}}  # fmt: skip
    (root / "bench" / "model-settings.json").write_text(json.dumps(model_settings))
    mlserver = str(peer_python("mlserver").parent / "mlserver")
    return Launch([mlserver, "start", str(root)], peer_env(), cwd=root)


def kserve_launch(model: Path, work: Path, peer: str) -> Launch:
    """bench/kserve_app.py, one uvicorn worker; the unused gRPC server and the per-request log lines
    (latency and access log) off, which only helps it."""
    port = PORTS[peer]
    argv = [str(peer_python("kserve")), str(sb.REPO / "bench" / "kserve_app.py"), str(model),
            "--http_port", str(port), "--grpc_port", str(port + 100), "--workers", "1",
            "--enable_grpc", "false", "--enable_latency_logging", "false",
            "--configure_logging", "false"]  # fmt: skip
    return Launch(argv, peer_env())


def start_peer(name: str, launch: Launch, work: Path) -> subprocess.Popen[bytes]:
    log = (work / f"{name}.log").open("ab")
    process = subprocess.Popen(launch.argv, env=launch.env, cwd=launch.cwd, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (work / f"{name}.log").read_text(errors="replace")[-2000:]
            raise Unavailable(f"{name} exited with code {process.returncode} before serving:\n{tail}")
        try:
            infer(PORTS[name], payload(1))
            return process
        except OSError:
            time.sleep(0.5)
    stop(process)
    raise Unavailable(f"{name} did not answer a 1-row request within 180 s; see {work / f'{name}.log'}")


def infer(port: int, body: str) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/bench/infer", data=body.encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())  # type: ignore[no-any-return]


def labels(answer: dict[str, Any]) -> list[int]:
    """The predicted labels, whatever each server names its output (label, predict, output-0)."""
    outputs = {o["name"]: o["data"] for o in answer["outputs"]}
    return [int(v) for v in next(outputs[n] for n in ("label", "predict", "output-0") if n in outputs)]


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


# -- measuring -----------------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Peak of the summed RSS of every process in the server's session (MLServer forks a worker)."""

    def __init__(self, session: int) -> None:
        super().__init__(daemon=True)
        self.session, self.peak_kb, self.done = session, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.25):
            self.peak_kb = max(self.peak_kb, self.sample())

    def sample(self) -> int:
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == self.session:  # fields[3] is the session id (man 5 proc)
                    total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
            except (OSError, IndexError):
                continue
        return total


def measure(
    name: str, starter: Callable[[], subprocess.Popen[bytes]], work: Path, seconds: int
) -> dict[str, Any]:
    try:
        process = starter()
    except (Unavailable, RuntimeError) as error:
        return {"error": str(error)}
    sampler = RssSampler(process.pid)
    sampler.start()
    try:
        results: dict[str, Any] = {
            "labels": {rows: labels(infer(PORTS[name], payload(rows))) for rows in (1, 100)}
        }
        for label, rows, connections in sb.POINTS:
            sb.wrk(PORTS[name], rows, connections, 3, work, payload=payload(rows))  # warm-up
            results[label] = sb.wrk(PORTS[name], rows, connections, seconds, work, payload=payload(rows))
            print(f"{name} {label}: {results[label]}", file=sys.stderr)
        sampler.done.set()
        sampler.join()
        results["rss"] = max(sampler.peak_kb / 1024, sb.rss_mb(process.pid))
        return results
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    finally:
        sampler.done.set()
        stop(process)


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| point | server | req/s | rows/s | p50 ms | p99 ms | vs floor | kubeloop / this |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    ours, floor = results.get("kubeloop", {}), results.get("floor", {})
    for label, rows, _ in sb.POINTS:
        for name, result in results.items():
            if "error" in result:
                continue
            point = result[label]
            vs_floor = f"{point['rps'] / floor[label]['rps']:.2f}x" if "error" not in floor else "-"
            ratio = f"{ours[label]['rps'] / point['rps']:.2f}x" if "error" not in ours else "-"
            lines.append(f"| {label} | {NAMES[name]} | {point['rps']:,.0f} | {point['rps'] * rows:,.0f} "
                         f"| {point['p50']:.2f} | {point['p99']:.2f} | {vs_floor} | {ratio} |")  # fmt: skip
    rss = ", ".join(f"{NAMES[n]} {r['rss']:.0f} MB" for n, r in results.items() if "error" not in r)
    lines.append(f"\nPeak RSS (all of the server's processes): {rss}")
    return "\n".join(lines)


def targets(results: dict[str, dict[str, Any]]) -> list[str]:
    ours, floor = (results.get(k, {"error": "not run"}) for k in ("kubeloop", "floor"))
    mlservers = [r for k, r in results.items() if k.startswith("mlserver") and "error" not in r]
    if "error" in ours:
        return ["kubeloop did not run: no target can be judged"]
    one, hundred = "1 row, c=32", "100 rows, c=32"
    met = {True: "met", False: "NOT met"}
    lines = []
    if "error" not in floor:
        ratio = ours[one]["rps"] / floor[one]["rps"]
        lines.append(f"1 row c=32 >= 0.8x floor: {ratio:.2f}x, {met[ratio >= 0.8]}")
    if mlservers:  # against the faster of its configurations
        ratio = ours[one]["rps"] / max(r[one]["rps"] for r in mlservers)
        lines.append(
            f"1 row c=32 >= 20x MLServer (its faster configuration): {ratio:.1f}x, {met[ratio >= 20]}"
        )
    best = max(ours[label]["rps"] * 100 for label in ("100 rows, c=1", hundred))
    lines.append(f"100-row requests >= 100,000 rows/s: {best:,.0f}, {met[best >= 100_000]}")
    p99 = max(ours[label]["p99"] for label in ("1 row, c=1", "100 rows, c=1"))
    lines.append(f"p99 at c=1 <= 2 ms: 1 row {ours['1 row, c=1']['p99']:.2f} ms, "
                 f"100 rows {ours['100 rows, c=1']['p99']:.2f} ms, {met[p99 <= 2]}")  # fmt: skip
    lines.append(f"RSS <= 200 MB: {ours['rss']:.0f} MB, {met[ours['rss'] <= 200]}")
    return lines


def loads(values: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="per point (the issue's figure is 20)")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {','.join(PEERS)}")
    parser.add_argument(
        "--max-load", type=float, help="first wait (up to 30 min) for a 1-min load below this"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/kubeloop-peers-bench"))
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    if unknown := set(peers) - set(PEERS):
        parser.error(f"unknown peer(s) {sorted(unknown)}; choose from {sorted(PEERS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    run = sb.train(args.work)
    model, fidelity = sklearn_model(args.work, run)
    print(f"joblib pipeline vs model.onnx on the test split: {fidelity}")
    starters: dict[str, Callable[[], subprocess.Popen[bytes]]] = {
        kind: (lambda kind=kind: sb.start(kind, run, args.work, PORTS[kind]))
        for kind in ("kubeloop", "floor")
    }
    launches = {"mlserver": mlserver_launch, "kserve": kserve_launch}
    for peer in peers:
        launch = launches[PEERS[peer]]
        starters[peer] = lambda p=peer, launch=launch: start_peer(p, launch(model, args.work, p), args.work)
        try:
            print(f"{peer}: {versions(peer_python(PEERS[peer]), VENV_SPECS[PEERS[peer]].report)}")
        except Unavailable as error:
            print(f"{peer}: {error}")
    deadline = time.monotonic() + 1800
    while args.max_load and os.getloadavg()[0] >= args.max_load and time.monotonic() < deadline:
        time.sleep(10)
    load_before, started = os.getloadavg(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = {name: measure(name, starter, args.work, args.seconds) for name, starter in starters.items()}
    print(f"\nstarted {started}, {args.seconds} s per point, load average (1/5/15 min) before "
          f"{loads(load_before)}, after {loads(os.getloadavg())}\n")  # fmt: skip
    print(table(results))
    for name, result in results.items():
        if "error" in result:
            print(f"\n{NAMES[name]} did not run: {result['error']}")
        elif result["labels"] != results["kubeloop"].get("labels", result["labels"]):
            print(f"\n{NAMES[name]} predicted other labels than kubeloop: {result['labels']}")
    print("\n" + "\n".join(targets(results)))


if __name__ == "__main__":
    main()
