"""KServe's Python model server with the bench's scikit-learn pipeline (a peer in bench/peers_bench.py).

Run by the KServe venv's interpreter, never the project's (KServe pins its own FastAPI and pydantic):

    ~/.cache/kubeloop-bench/kserve/bin/python bench/kserve_app.py MODEL.joblib --http_port 18402 ...

The model class does what KServe's SKLearnModel runtime (sklearnserver, not published on the package
registry) does: `get_predict_input` (a DataFrame for V2 requests with `content_type: pd`),
`predict`, `get_predict_response`. Every other flag goes to kserve.ModelServer unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

import joblib
import kserve
import uvicorn
from kserve.utils.utils import get_predict_input, get_predict_response


class LoopbackConfig(uvicorn.Config):
    """KServe's REST server binds 0.0.0.0 with no flag to change it; a benchmark listens on loopback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


class SKLearnBench(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        # The peer's own format: a joblib pickle written by the bench, never by a user.
        self._model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
        return get_predict_response(payload, self._model.predict(get_predict_input(payload)), self.name)


if __name__ == "__main__":
    uvicorn.Config = LoopbackConfig  # type: ignore[misc]
    kserve.ModelServer().start([SKLearnBench("bench", sys.argv[1])])
