"""The wire: Open Inference Protocol (KServe V2) REST bodies, the records form, and their encoders.

The pydantic models describe the API in /openapi.json (what clients and schemathesis read); the
request path does not validate through them (too slow for columnar bodies): decoding.py checks
requests by hand and the encoders below write responses with orjson straight from numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from kubeloop.contracts.serving import FeedbackItem
from kubeloop.serving.columns import ACCEPTED_DATATYPES, InputSpec
from kubeloop.serving.inference import Prediction

# --- Open Inference Protocol (field names as the protocol spells them) --------------------------


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any]


class RequestInput(Tensor):
    """One column of the batch (the model's metadata lists the names and datatypes)."""


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """One tensor per column, shape [rows] or [rows, 1]; all inputs have the same number of rows."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class InferenceResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[Tensor]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any] | None = None


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Readiness(BaseModel):
    ready: bool
    phase: str  # Loading | Ready | Failed | Draining
    reason: (
        str  # Ready, Loading, StoreUnavailable, DigestMismatch, ArtifactMissing, LoadFailed, GoldenMismatch
    )
    message: str


class Liveness(BaseModel):
    live: bool


class ErrorBody(BaseModel):
    """Every 4xx/5xx: `error` says what is wrong, `field` names the column or field at fault."""

    error: str
    field: str | None = None


# --- the records form and feedback (our own API: camelCase like the CRDs) ---------------------------


class PredictRequest(BaseModel):
    instances: list[dict[str, Any]] = Field(min_length=1)


class RowPrediction(BaseModel):
    label: Any = None
    probabilities: dict[str, float] | None = None
    value: float | None = None
    review: bool | None = None


class PredictResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    predictions: list[RowPrediction]
    modelName: str
    modelVersion: str
    requestId: str


class FeedbackAccepted(BaseModel):
    stored: int
    location: str


API_MODELS: list[type[BaseModel]] = [
    InferenceRequest,
    InferenceResponse,
    PredictRequest,
    PredictResponse,
    FeedbackItem,
    ErrorBody,
]


def component_schemas(specs: Mapping[str, InputSpec] | None = None) -> dict[str, Any]:
    """JSON schemas of the request/response models, referenced as #/components/schemas/<name>.

    Once the model is loaded, the request schemas name its columns and their types, so /docs shows
    what to send and generated clients (and schemathesis) send rows the model can score."""
    _, schema = models_json_schema(
        [(model, "validation") for model in API_MODELS], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(schema.get("$defs", {}))
    if specs:
        names = list(specs)
        schemas["RequestInput"]["properties"]["name"] = {"type": "string", "enum": names}
        datatypes = sorted({d for spec in specs.values() for d in ACCEPTED_DATATYPES[spec.element]})
        schemas["RequestInput"]["properties"]["datatype"] = {"type": "string", "enum": datatypes}
        schemas["PredictRequest"]["properties"]["instances"]["items"] = {
            "type": "object",
            "properties": {name: _value_schema(spec) for name, spec in specs.items()},
            "required": names,
            "additionalProperties": False,
        }
    return schemas


def _value_schema(spec: InputSpec) -> dict[str, Any]:
    kinds = {
        "float": ["number"],
        "integer": ["integer"],
        "string": ["string"],
        "boolean": ["boolean", "string"],
    }
    types = kinds[spec.kind] + (["null"] if spec.nullable and spec.kind != "integer" else [])
    return {"type": types}


# --- encoders ---------------------------------------------------------------------------------------

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def label_datatype(labels: np.ndarray) -> str:
    return {"i": "INT64", "u": "UINT64", "b": "BOOL", "f": "FP32"}.get(labels.dtype.kind, "BYTES")


def v2_outputs(prediction: Prediction, flagged: np.ndarray | None) -> list[dict[str, Any]]:
    rows = prediction.rows
    outputs: list[dict[str, Any]] = []
    labels = prediction.labels
    if labels is not None:
        data = labels if labels.dtype.kind in "iub" else labels.tolist()
        outputs.append({"name": "label", "datatype": label_datatype(labels), "shape": [rows], "data": data})
    if prediction.probabilities is not None:
        probabilities = prediction.probabilities
        outputs.append(
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": list(probabilities.shape),
                "data": probabilities.reshape(-1),
            }
        )
    if prediction.values is not None:
        outputs.append({"name": "value", "datatype": "FP32", "shape": [rows], "data": prediction.values})
    if flagged is not None:
        outputs.append({"name": "review", "datatype": "BOOL", "shape": [rows], "data": flagged})
    return outputs


def encode_v2(
    model: str, version: str, request_id: str, outputs: list[dict[str, Any]], wanted: list[str] | None
) -> bytes:
    if wanted is not None:
        outputs = [output for output in outputs if output["name"] in wanted]
    body = {"model_name": model, "model_version": version, "id": request_id, "outputs": outputs}
    return orjson.dumps(body, option=_NUMPY)


def encode_v1(
    model: str,
    version: str,
    request_id: str,
    prediction: Prediction,
    *,
    classes: list[str],
    flagged: np.ndarray | None,
) -> bytes:
    if prediction.values is not None:
        rows: list[dict[str, Any]] = [{"value": value} for value in prediction.values.tolist()]
    else:
        labels = prediction.labels.tolist() if prediction.labels is not None else [None] * prediction.rows
        if prediction.probabilities is not None:
            rows = [
                {"label": label, "probabilities": dict(zip(classes, p, strict=False))}
                for label, p in zip(labels, prediction.probabilities.tolist(), strict=False)
            ]
        else:
            rows = [{"label": label} for label in labels]
    if flagged is not None:
        for row, review in zip(rows, flagged.tolist(), strict=False):
            row["review"] = review
    body = {"predictions": rows, "modelName": model, "modelVersion": version, "requestId": request_id}
    return orjson.dumps(body)


def encode_error(message: str, field: str | None = None) -> bytes:
    return orjson.dumps({"error": message, "field": field} if field else {"error": message})
