"""The floor: the least a FastAPI + onnxruntime server can do for the same V2 requests.

No validation, metrics, logging or model checks; one session, inference inline on the event loop
(cheapest for small models). `python bench/floor_app.py MODEL.onnx PORT`
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request

DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}

options = ort.SessionOptions()
options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
types = {i.name: DTYPES.get(i.type, object) for i in session.get_inputs()}
app = FastAPI()


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request) -> dict[str, object]:
    body = await request.json()
    feeds = {t["name"]: np.asarray(t["data"], dtype=types[t["name"]]).reshape(-1, 1) for t in body["inputs"]}
    label, probabilities = session.run(None, feeds)
    return {
        "model_name": name,
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [len(label)], "data": label.tolist()},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": list(probabilities.shape),
                "data": probabilities.ravel().tolist(),
            },
        ],
    }


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
