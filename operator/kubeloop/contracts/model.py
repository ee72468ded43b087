"""model.json: everything a server, a validator or a monitor needs to know about model.onnx.

Written by the trainer next to model.onnx; read by the server (signature), the ModelVersion
validation Job (golden inputs and outputs) and the operator (metrics, params, lineage).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

CARD_FORMAT = 1
ColumnKind = Literal["float", "integer", "string", "boolean"]
Task = Literal["classification", "regression"]


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


class InputColumn(Wire):
    """One named input of the ONNX graph: one per dataset feature column, each a [N, 1] tensor.

    Tensor element type by `type`: float -> float32 (missing: NaN; null in JSON), integer -> int64
    (never missing: integer columns with gaps are trained as float), string -> string, boolean ->
    string "true"/"false". A missing string or boolean is the empty string "".
    """

    name: str
    type: ColumnKind
    categorical: bool = False
    nullable: bool = True  # missing values are imputed inside the pipeline


class Signature(Wire):
    inputs: list[InputColumn]
    task: Task
    classes: list[str] | None = None  # classification: the label of each probability column, in order
    label_output: str = "label"  # ONNX output names; for regression the value output ("value")
    probability_output: str | None = "probabilities"
    value_output: str | None = None  # regression


class Golden(Wire):
    """Rows recorded at training and what the exported model answered: replayed to prove fidelity."""

    inputs: dict[str, list[Any]]  # column -> values, one per row
    labels: list[Any] | None = None
    probabilities: list[list[float]] | None = None
    values: list[float] | None = None
    tolerance: float = 1e-4


class DatasetRef(Wire):
    uri: str
    sha256: str
    rows: int
    columns: int


class Lineage(Wire):
    training_run: str  # <namespace>/<name>
    training_run_uid: str
    dataset: DatasetRef
    image: str | None = None
    code_version: str
    parent_version: str | None = None


class StoredFile(Wire):
    sha256: str
    size: int


class ModelCard(Wire):
    format: int = CARD_FORMAT
    model: str
    estimator: str
    signature: Signature
    metrics: dict[str, float]
    params: dict[str, Any]
    lineage: Lineage
    golden: Golden
    importances: dict[str, float] = Field(default_factory=dict)  # permutation importance per feature
    files: dict[str, StoredFile] = Field(default_factory=dict)  # model.onnx, profile.json, report.html
