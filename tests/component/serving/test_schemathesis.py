"""Property-based requests generated from the server's own OpenAPI document: none may get a 5xx.

Bounded (about 300 cases over all operations, fixed seed) so it stays a test, not a soak.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.component.serving.conftest import Server, TrainedModel

CONFIG = """
[parameters]
"path.name" = "churn"
"path.version" = "1"
"""


def test_generated_requests_never_get_a_server_error(
    serve: Callable[..., Server], classifier: TrainedModel, tmp_path: Path
) -> None:
    server = serve(classifier, KUBELOOP_REVIEW_THRESHOLD="0.6", KUBELOOP_MAX_ROWS="50")
    schema = server.get("/openapi.json").json()
    instance = schema["components"]["schemas"]["PredictRequest"]["properties"]["instances"]["items"]
    assert set(instance["required"]) == {c.name for c in classifier.card.signature.inputs}  # model-specific
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "15",
        "--seed",
        "7",
        "--phases",
        "examples,coverage,fuzzing",
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "10",
        "--workers",
        "1",  # schemathesis' own engine is not reliable with more here
    ]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    counted = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counted, output[-3000:]
    generated = int(counted.group(1))
    assert 100 <= generated <= 600, output[-2000:]
    scored = server.metric("kubeloop_server_requests_total", endpoint="v1-infer", code="200")
    assert scored > 0  # generated rows got all the way through the model
    assert server.metric("kubeloop_server_errors_total", code="500") == 0
    server.process.check_alive()
