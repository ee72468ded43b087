"""The server's environment contract: what the operator sets is what the server reads."""

from __future__ import annotations

import pytest

from kubeloop.contracts.serving import ENV, ArtifactSettings, ServingSettings

SHA = "ab" * 32
MINIMAL = {
    "KUBELOOP_MODEL_NAME": "churn",
    "KUBELOOP_MODEL_VERSION": "3",
    "KUBELOOP_MODEL_URI": "s3://kubeloop/runs/ns/run/uid/model.onnx",
    "KUBELOOP_MODEL_SHA256": SHA,
}


def test_minimal_environment_gets_documented_defaults() -> None:
    settings = ServingSettings.from_env(MINIMAL)
    assert settings.model_version == 3 and settings.port == 8080 and settings.bind_host == "0.0.0.0"
    assert settings.card_uri == "s3://kubeloop/runs/ns/run/uid/model.json"  # next to model.onnx
    assert settings.deployment == "churn" and settings.review_threshold is None
    assert settings.log_sample_rate == 1.0 and settings.max_rows == 10_000
    assert settings.resolved_store_root({"KUBELOOP_S3_BUCKET": "models"}) == "s3://models/"


def test_every_variable_is_read() -> None:
    env = {
        **MINIMAL,
        "KUBELOOP_CARD_URI": "s3://kubeloop/cards/churn.json",
        "KUBELOOP_PORT": "9000",
        "KUBELOOP_BIND_HOST": "127.0.0.5",
        "KUBELOOP_NAMESPACE": "prod",
        "KUBELOOP_DEPLOYMENT": "churn-online",
        "KUBELOOP_POD_NAME": "churn-online-v3-abc",
        "KUBELOOP_STORE_ROOT": "file:///tmp/store",
        "KUBELOOP_LOG_SAMPLE_RATE": "0.25",
        "KUBELOOP_LOG_FLUSH_RECORDS": "100",
        "KUBELOOP_LOG_FLUSH_SECONDS": "2.5",
        "KUBELOOP_LOG_BUFFER_LIMIT": "1000",
        "KUBELOOP_REVIEW_THRESHOLD": "0.7",
        "KUBELOOP_FEEDBACK": "false",
        "KUBELOOP_MAX_BODY_BYTES": "65536",
        "KUBELOOP_MAX_ROWS": "500",
        "KUBELOOP_INTRA_OP_THREADS": "2",
        "KUBELOOP_INFERENCE_THREADS": "3",
        "KUBELOOP_INLINE_BUDGET_MS": "0",
        "KUBELOOP_SHUTDOWN_DELAY_SECONDS": "5",
        "KUBELOOP_LOG_LEVEL": "DEBUG",
        "KUBELOOP_ACCESS_LOG": "true",
    }
    assert set(env) - set(MINIMAL) | set(MINIMAL) == set(ENV.values())  # the test covers the table
    settings = ServingSettings.from_env(env)
    assert set(settings.to_env()) == set(env)
    assert ServingSettings.from_env(settings.to_env()) == settings  # what the operator renders reads back
    assert settings.review_threshold == 0.7 and settings.feedback_enabled is False
    assert settings.resolved_store_root() == "file:///tmp/store/"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("KUBELOOP_MODEL_VERSION", "three", "KUBELOOP_MODEL_VERSION"),
        ("KUBELOOP_MODEL_VERSION", "0", "KUBELOOP_MODEL_VERSION"),
        ("KUBELOOP_MODEL_SHA256", "not-a-digest", "KUBELOOP_MODEL_SHA256"),
        ("KUBELOOP_PORT", "70000", "KUBELOOP_PORT"),
        ("KUBELOOP_LOG_SAMPLE_RATE", "1.5", "KUBELOOP_LOG_SAMPLE_RATE"),
        ("KUBELOOP_REVIEW_THRESHOLD", "-0.1", "KUBELOOP_REVIEW_THRESHOLD"),
        ("KUBELOOP_UNRELATED", "x", None),
    ],
)
def test_bad_values_are_reported_by_variable_name(variable: str, value: str, fragment: str | None) -> None:
    if fragment is None:  # variables outside the table are ignored, not an error
        assert ServingSettings.from_env({**MINIMAL, variable: value}).model_name == "churn"
        return
    with pytest.raises(ValueError, match=fragment):
        ServingSettings.from_env({**MINIMAL, variable: value})


def test_missing_required_variables_are_named() -> None:
    with pytest.raises(ValueError, match=r"KUBELOOP_MODEL_NAME.*KUBELOOP_MODEL_VERSION") as raised:
        ServingSettings.from_env({k: v for k, v in MINIMAL.items() if "URI" in k or "SHA" in k})
    assert "KUBELOOP_MODEL_URI" not in str(raised.value)


def test_validation_needs_only_the_artifact() -> None:
    settings = ArtifactSettings.from_env(
        {k: MINIMAL[k] for k in ("KUBELOOP_MODEL_URI", "KUBELOOP_MODEL_SHA256")}
    )
    assert settings.card_uri.endswith("/model.json")
    with pytest.raises(ValueError, match="KUBELOOP_CARD_URI is required"):
        ArtifactSettings.from_env(
            {"KUBELOOP_MODEL_URI": "s3://b/elsewhere.onnx", "KUBELOOP_MODEL_SHA256": SHA}
        )
