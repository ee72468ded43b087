"""Reading the dataset: the bytes from the store, their sha256, then a DataFrame (csv or parquet)."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import pandas as pd

from kubeloop.contracts.model import DatasetRef
from kubeloop.store.client import ObjectMissing, Store
from kubeloop.store.digest import sha256_bytes
from kubeloop.trainer import logs
from kubeloop.trainer.columns import normalize
from kubeloop.trainer.errors import TrainerFailure


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame
    ref: DatasetRef


def parse(data: bytes, file_format: str) -> pd.DataFrame:
    """The table in `data`; unreadable bytes are a permanent failure (retrying reads the same bytes)."""
    try:
        if file_format == "parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            frame = pd.read_csv(io.BytesIO(data))
    except Exception as error:  # pandas and pyarrow raise many types for malformed files
        raise TrainerFailure(
            "DatasetUnreadable", f"the dataset is not valid {file_format}: {type(error).__name__}: {error}"
        ) from error
    return normalize(frame)


def load(store: Store, uri: str, file_format: str) -> Dataset:
    started = time.perf_counter()
    try:
        data = store.get_bytes(uri)
    except ObjectMissing as error:
        raise TrainerFailure("DatasetMissing", f"dataset {uri} does not exist ({error})") from error
    frame = parse(data, file_format)
    ref = DatasetRef(uri=uri, sha256=sha256_bytes(data), rows=len(frame), columns=len(frame.columns))
    logs.event("dataset-loaded", seconds=round(time.perf_counter() - started, 3), uri=uri, bytes=len(data),
               sha256=ref.sha256, rows=ref.rows, columns=ref.columns)  # fmt: skip
    return Dataset(frame, ref)
