"""Where things live in the bucket (DESIGN.md §4). Every writer and reader goes through here."""

from __future__ import annotations

from datetime import datetime

MODEL_FILE, CARD_FILE, PROFILE_FILE, REPORT_FILE = "model.onnx", "model.json", "profile.json", "report.html"


def run_prefix(bucket: str, namespace: str, run: str, uid: str) -> str:
    """Folder of one TrainingRun's artifacts; the uid keeps a recreated run from overwriting them."""
    return f"s3://{bucket}/runs/{namespace}/{run}/{uid}/"


def trial_key(index: int) -> str:
    return f"trials/{index}.json"


def request_log_prefix(namespace: str, deployment: str, version: int, at: datetime) -> str:
    return f"logs/{namespace}/{deployment}/v{version}/dt={at:%Y-%m-%d}/hr={at:%H}/"


def review_prefix(namespace: str, deployment: str, version: int, at: datetime) -> str:
    """Low-confidence predictions waiting for a human label (ModelDeployment reviewThreshold)."""
    return f"review/{namespace}/{deployment}/v{version}/dt={at:%Y-%m-%d}/hr={at:%H}/"


def feedback_prefix(namespace: str, deployment: str, at: datetime) -> str:
    return f"feedback/{namespace}/{deployment}/dt={at:%Y-%m-%d}/hr={at:%H}/"


def monitor_prefix(namespace: str, monitor: str, at: datetime) -> str:
    return f"monitors/{namespace}/{monitor}/{at:%Y%m%dT%H%M%SZ}/"
