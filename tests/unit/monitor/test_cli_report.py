"""`kubeloop report`: what a person reads, from a ModelMonitor's status (and report.json when at hand)."""

from __future__ import annotations

from typing import Any

from kubeloop.cli.main import parser
from kubeloop.cli.report import report_text
from tests.unit.planning.test_core import example


def drifting() -> dict[str, Any]:
    monitor = example("ModelMonitor")
    monitor["status"] = {
        "phase": "Drifting",
        "conditions": [
            {
                "type": "Healthy",
                "status": "False",
                "reason": "DriftDetected",
                "message": "2 of 5 features drifted (tenure_months, contract)",
            },
            {"type": "Retraining", "status": "False", "reason": "Cooldown", "message": "next in 3h"},
        ],
        "lastRun": {
            "time": "2026-03-01T12:00:00Z",
            "job": "churn-monitor-29555",
            "version": 3,
            "samples": 1200,
        },
        "driftScore": 0.61,
        "features": [
            {"name": "tenure_months", "score": 0.61, "drifted": True},
            {"name": "payment_method", "score": 0.01, "drifted": False},
        ],
        "driftedFeatures": ["tenure_months", "contract"],
        "performance": {
            "metric": "roc_auc",
            "value": 0.71,
            "baseline": 0.8,
            "labeledSamples": 300,
            "degraded": True,
        },
        "retrainCount": 1,
        "lastRetrain": {
            "time": "2026-03-01T09:00:00Z",
            "trainingRun": {"name": "churn-retrain-1"},
            "reason": "DriftDetected",
        },
        "reportUri": "s3://kubeloop/monitors/ns/churn/20260301T120000Z/report.html",
    }
    return monitor


def test_the_summary_names_the_verdict_features_performance_retraining_and_report() -> None:
    text = report_text(drifting(), link="http://minio:9000/kubeloop/monitors/x?sig=1")
    lines = text.splitlines()
    assert lines[0] == "ModelMonitor ns/churn on ModelDeployment churn: Drifting (DriftDetected)"
    assert "2 of 5 features drifted" in lines[1]
    assert "churn-monitor-29555" in text and "model v3, 1200 rows" in text
    assert "0.61 (psi, threshold 0.2); drifted: tenure_months, contract" in text
    (row,) = [line for line in lines if line.strip().startswith("tenure_months")]
    assert row.split() == ["tenure_months", "0.61", "DRIFT"]
    assert "roc_auc 0.71 vs 0.8 at training, 300 labelled (DEGRADED)" in text
    assert "1 so far; last churn-retrain-1" in text and "now: Cooldown: next in 3h" in text
    assert "Report:       s3://kubeloop/monitors/ns/churn/20260301T120000Z/report.html" in text
    assert lines[-1] == "Open:         http://minio:9000/kubeloop/monitors/x?sig=1"


def test_before_the_first_run_it_says_why() -> None:
    monitor = example("ModelMonitor")
    monitor["status"] = {
        "conditions": [
            {
                "type": "Scheduled",
                "status": "False",
                "reason": "NoStableVersion",
                "message": "ModelDeployment churn serves no stable version yet",
            }
        ]
    }
    text = report_text(monitor)
    assert (
        "no verdict yet" in text and "No run yet. ModelDeployment churn serves no stable version yet" in text
    )


def test_the_report_command_is_wired() -> None:
    args = parser().parse_args(["-n", "team", "report", "churn"])
    assert (args.command, args.monitor, args.namespace) == ("report", "churn", "team")
