"""The peers of bench/peers_bench.py: their venvs, their copy of the model, and starting them.

MLServer (mlserver-sklearn) and KServe serve the trainer's pipeline as a scikit-learn object in their
own format, a joblib file (our server never loads pickles): fitted again here by the trainer's own code
on the same split and seed, and checked against model.onnx. Each peer lives in its own venv under
~/.cache/kubeloop-bench/<venv>/, created with the latest releases when missing (they pin FastAPI and
pydantic versions the project cannot share). Errors name the failing command or the server's log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
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
