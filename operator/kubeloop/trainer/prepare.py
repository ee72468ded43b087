"""What both modes do first: read the spec, load and validate the dataset, encode it, split it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sklearn.model_selection import train_test_split

from kubeloop.api.v1alpha1.common import ColumnType
from kubeloop.api.v1alpha1.trainingrun import Estimator, TrainingRunSpec
from kubeloop.contracts.model import DatasetRef
from kubeloop.store.client import Store
from kubeloop.trainer import logs
from kubeloop.trainer.artifacts import RunFolder
from kubeloop.trainer.columns import Column, column_kind, encode_frame, encode_target
from kubeloop.trainer.dataset import Dataset, load
from kubeloop.trainer.errors import TrainerFailure, invalid_spec
from kubeloop.trainer.estimators import resolve
from kubeloop.trainer.validation import ValidationReport, validate

VALIDATION_FILE = "validation.json"


@dataclass(frozen=True)
class Prepared:
    spec: TrainingRunSpec
    estimator: Estimator
    dataset: Dataset
    validation: ValidationReport
    columns: list[Column]
    x_train: pd.DataFrame  # encoded (see columns.encode)
    x_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray

    @property
    def regression(self) -> bool:
        return self.estimator.is_regressor

    @property
    def seed(self) -> int:
        return self.spec.split.seed


def parse_spec(raw: dict[str, Any]) -> tuple[TrainingRunSpec, Estimator]:
    """The TrainingRun spec; the estimator is checked first so its refusal names the allow-list."""
    algorithm = raw.get("algorithm")
    estimator = resolve(algorithm.get("estimator") if isinstance(algorithm, dict) else None)
    try:
        spec = TrainingRunSpec.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:10]
        )
        raise invalid_spec(f"the TrainingRun spec is invalid: {problems}") from error
    return spec, estimator


def data_invalid(report: ValidationReport, location: str, dataset: DatasetRef) -> TrainerFailure:
    broken = ", ".join(f"{v.rule}({v.column})" if v.column else v.rule for v in report.violations[:10])
    more = f" and {len(report.violations) - 10} more" if len(report.violations) > 10 else ""
    return TrainerFailure(
        "DataValidationFailed",
        f"the dataset broke {len(report.violations)} validation rule(s): {broken}{more}; report: {location}",
        outcome="DataInvalid",
        violations=report.violations,
        dataset=dataset,
    )


def model_columns(frame: pd.DataFrame, spec: TrainingRunSpec, features: list[str]) -> list[Column]:
    validation = spec.dataset.validation
    declared: dict[str, ColumnType] = (
        {c.name: c.type for c in validation.required_columns} if validation else {}
    )
    return [Column(name, column_kind(frame[name], declared.get(name))) for name in features]


def split(
    x: pd.DataFrame, y: np.ndarray, spec: TrainingRunSpec, regression: bool
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    stratify = y if spec.split.stratify and not regression else None
    try:
        parts = train_test_split(
            x, y, test_size=spec.split.test_fraction, random_state=spec.split.seed, stratify=stratify
        )
    except ValueError as error:
        if stratify is None:
            raise TrainerFailure("DatasetTooSmall", f"cannot split the dataset: {error}") from error
        logs.warning("split", f"stratified split impossible ({error}); splitting without it")
        parts = train_test_split(x, y, test_size=spec.split.test_fraction, random_state=spec.split.seed)
    x_train, x_test, y_train, y_test = parts
    return x_train, x_test, np.asarray(y_train), np.asarray(y_test)


def encode_and_split(
    spec: TrainingRunSpec, estimator: Estimator, dataset: Dataset, report: ValidationReport
) -> Prepared:
    """Pure: the validated dataset as model inputs and targets, split into train and test."""
    columns = model_columns(dataset.frame, spec, report.features)
    x = encode_frame(dataset.frame, columns)
    y = encode_target(dataset.frame[spec.dataset.target], estimator.is_regressor)
    x_train, x_test, y_train, y_test = split(x, y, spec, estimator.is_regressor)
    return Prepared(spec, estimator, dataset, report, columns, x_train, x_test, y_train, y_test)


def prepare(raw_spec: dict[str, Any], store: Store, folder: RunFolder) -> Prepared:
    """Everything up to the split. Invalid data: validation.json is written, then DataInvalid."""
    spec, estimator = parse_spec(raw_spec)
    dataset = load(store, spec.dataset.uri, spec.dataset.format)
    with logs.timed("validated") as timing:
        report = validate(dataset.frame, spec.dataset, estimator.is_regressor)
        timing.update(ok=report.ok, violations=len(report.violations))
    if not report.ok:
        folder.put_text(VALIDATION_FILE, report.to_json())
        raise data_invalid(report, folder.location(VALIDATION_FILE), dataset.ref)
    with logs.timed("split") as timing:
        prepared = encode_and_split(spec, estimator, dataset, report)
        timing.update(train_rows=len(prepared.x_train), test_rows=len(prepared.x_test),
                      columns={c.name: c.kind for c in prepared.columns})  # fmt: skip
    return prepared
