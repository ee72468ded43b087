"""Column encodings shared by scikit-learn and ONNX, the drift profile and the HTML report."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from kubeloop.api.v1alpha1.common import ColumnType
from kubeloop.contracts.profile import OTHER, Profile
from kubeloop.trainer.columns import Column, column_kind, encode, encode_target, json_values, normalize
from kubeloop.trainer.profile import build_profile, categorical_profile, numeric_profile


def test_parquet_nullable_types_become_plain_numpy_kinds() -> None:
    frame = pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"), "j": pd.array([1, 2, 3], dtype="Int64"),
                          "b": pd.array([True, None, False], dtype="boolean"),
                          "s": pd.array(["x", None, "y"], dtype="string")})  # fmt: skip
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    read = normalize(pd.read_parquet(io.BytesIO(buffer.getvalue())))
    kinds = {name: column_kind(read[name], None) for name in read.columns}
    assert kinds == {"i": "float", "j": "integer", "b": "boolean", "s": "string"}


def test_encodings_are_what_the_signature_documents() -> None:
    assert encode(pd.Series([1.5, None]), "float").dtype == np.float32
    assert json_values(encode(pd.Series([35.2, None]), "float")) == [35.2, None]  # shortest float32 text
    assert encode(pd.Series([True, False, None], dtype=object), "boolean").tolist() == ["true", "false", ""]
    assert encode(pd.Series(["yes", "0", 1]), "boolean").tolist() == ["true", "false", "true"]
    assert encode(pd.Series([3.0, "a", None], dtype=object), "string").tolist() == ["3", "a", ""]
    assert column_kind(pd.Series([1.0, None]), ColumnType.INTEGER) == "float"  # int64 cannot hold NaN
    assert column_kind(pd.Series([1, 2]), ColumnType.STRING) == "string"  # declared type wins
    assert encode_target(pd.Series([1.0, 0.0]), regression=False).dtype == np.int64
    assert encode_target(pd.Series([True, False]), regression=False).tolist() == ["true", "false"]


def test_numeric_profile_has_quantile_bins_a_missing_rate_and_a_bounded_sample() -> None:
    values = np.concatenate([np.arange(5000, dtype=float), [np.nan] * 500])
    profile = numeric_profile(values, seed=1)
    assert len(profile.edges) == 11 and profile.edges[0] == 0 and profile.edges[-1] == 4999
    assert sum(profile.counts) == 5000 and max(profile.counts) - min(profile.counts) <= 1
    assert abs(profile.missing_rate - 500 / 5500) < 1e-12
    assert len(profile.sample) == 1000 and len(set(profile.sample)) == 1000
    constant = numeric_profile(np.full(10, 3.0), seed=1)
    assert constant.edges == [3.0] and constant.counts == [10]


def test_categorical_profile_keeps_the_top_categories() -> None:
    values = pd.Series([f"c{i}" for i in range(150)] + ["c0"] * 50 + [""] * 50, dtype=object)
    profile = categorical_profile(values)
    assert profile.counts["c0"] == 51 and len(profile.counts) == 101 and profile.counts[OTHER] == 50
    assert abs(sum(profile.frequencies.values()) - 1) < 1e-9 and profile.missing_rate == 0.2


def test_profile_round_trips_through_its_contract() -> None:
    raw = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "c": ["a", "b", None, "a"]})
    train = pd.DataFrame({"x": encode(raw["x"], "float"), "c": encode(raw["c"], "string")})
    profile = build_profile([Column("x", "float"), Column("c", "string")], raw=raw, train=train,
                            predictions=np.array(["no", "yes"]), task="classification", seed=0)  # fmt: skip
    again = Profile.model_validate_json(profile.to_json())
    assert again == profile
    assert again.features["x"].kind == "numeric" and again.features["c"].kind == "categorical"
    assert again.prediction.kind == "categorical" and again.prediction_rows == 2
