"""Durations: one syntax (d, h, m, s in that order) for pydantic, the CRD pattern and planners."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from kubeloop.api.v1alpha1.common import (
    DURATION_PATTERN,
    POSITIVE_DURATION,
    Duration,
    PositiveDuration,
    format_duration,
    parse_duration,
)

VALID = [
    ("30s", 30),
    ("5m", 300),
    ("1h", 3600),
    ("1h30m", 5400),
    ("2d", 172_800),
    ("1d2h3m4s", 93_784),
    ("90m", 5400),
    ("0s", 0),
    ("0h0m", 0),
    ("36h", 129_600),
]
INVALID = ["", "5", "m", "1.5h", "30S", "1m1h", "1h 30m", "-5m", "5min", "1w", "1ms", "h1", " 5m"]


@pytest.mark.parametrize(("text", "seconds"), VALID)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "seconds"), VALID)
def test_valid_durations_match_the_crd_pattern(text: str, seconds: int) -> None:
    assert re.search(DURATION_PATTERN, text)
    assert TypeAdapter(Duration).validate_python(text) == text


@pytest.mark.parametrize("text", INVALID)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_durations_fail_the_crd_pattern_or_min_length(text: str) -> None:
    assert len(text) < 2 or not re.search(DURATION_PATTERN, text)
    with pytest.raises(ValidationError):
        TypeAdapter(Duration).validate_python(text)


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 61, 3600, 5400, 86_400, 93_784, 10 * 86_400])
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_format_duration_is_shortest() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(0) == "0s"
    assert format_duration(86_400) == "1d"
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


@pytest.mark.parametrize("text", ["0s", "0m", "0h0m0s", "0d"])
def test_positive_duration_rejects_zero_with_the_cel_message(text: str) -> None:
    with pytest.raises(ValidationError, match="duration must be greater than zero"):
        TypeAdapter(PositiveDuration).validate_python(text)
    assert not re.search("[1-9]", text)  # the CEL rule self.matches('[1-9]') rejects it too


@pytest.mark.parametrize("text", ["1s", "10m", "0h5m", "1d"])
def test_positive_duration_accepts(text: str) -> None:
    assert TypeAdapter(PositiveDuration).validate_python(text) == text
    assert re.search("[1-9]", text)


def test_positive_duration_schema_carries_the_cel_rule() -> None:
    schema = TypeAdapter(PositiveDuration).json_schema()
    assert schema["x-kubernetes-validations"] == [POSITIVE_DURATION.as_schema()]
    assert schema["maxLength"] == 32  # bounds the cost of the regex in CEL
