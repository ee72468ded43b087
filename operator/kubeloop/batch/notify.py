"""`python -m kubeloop.batch notify`: once a run is over, write its manifest and tell people.

The SMTP server and credentials (and a webhook URL that carries a token) reach this pod only as
environment variables from a Secret; the operator never reads them. Each channel is tried a few
times here; the pod then exits 1 for the Job to retry it (another pod, later) or 2 when retrying
cannot help (a 4xx answer, refused credentials). Channels already delivered are recorded in the
run folder, so a retried pod does not send them twice.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from pydantic import ValidationError

from kubeloop.batch.errors import BatchFailure
from kubeloop.contracts.batch import (
    MANIFEST_FILE,
    NOTIFICATIONS_FILE,
    SMTP_ENV,
    WEBHOOK_URL_ENV,
    EmailTarget,
    NotifyResult,
    NotifyTask,
    RunManifest,
    RunSummary,
    ShardManifest,
    shard_manifest_name,
)
from kubeloop.store.client import ObjectMissing, Store

log = logging.getLogger("kubeloop.batch.notify")
ATTEMPTS, FIRST_DELAY = 3, 1.0
TIMEOUT = 15.0


@dataclass(frozen=True)
class Delivery:
    ok: bool
    detail: str
    permanent: bool = False


def folder_of(summary: RunSummary) -> str:
    return summary.output_uri if summary.output_uri.endswith("/") else summary.output_uri + "/"


def write_manifest(store: Store, task: NotifyTask) -> str:
    """The run's manifest: the summary and every shard's manifest (a failed shard may have none)."""
    folder = folder_of(task.summary)
    shards, missing = [], []
    for shard in range(task.shards):
        try:
            shards.append(
                ShardManifest.model_validate_json(store.get_bytes(folder + shard_manifest_name(shard)))
            )
        except (ObjectMissing, ValidationError):
            missing.append(shard)
    manifest = RunManifest(summary=task.summary, shards=shards, missing_shards=missing)
    location = folder + MANIFEST_FILE
    store.put_bytes(location, manifest.model_dump_json(by_alias=True, exclude_none=True, indent=2).encode(),
                    "application/json")  # fmt: skip
    return location


# --- channels --------------------------------------------------------------------------------------


def send_webhook(url: str, summary: RunSummary) -> Delivery:
    request = urllib.request.Request(  # noqa: S310 - the URL scheme is checked by the CRD (http/https)
        url,
        data=summary.to_json().encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "kubeloop-batch",
            "X-Kubeloop-Event": "BatchPredictionRunFinished",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return Delivery(True, f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        # A 4xx will be answered the same way next time, except for timeouts and rate limits.
        permanent = 400 <= error.code < 500 and error.code not in (408, 429)
        return Delivery(False, f"HTTP {error.code} {error.reason}", permanent)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Delivery(False, f"could not reach the webhook: {reason}")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # starttls | tls | none
    username: str | None
    password: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SmtpSettings:
        host = env.get(SMTP_ENV["host"], "").strip()
        if not host:
            raise BatchFailure("BadConfiguration", "the SMTP Secret has no 'host' key")
        security = (env.get(SMTP_ENV["security"]) or "starttls").strip().lower()
        if security not in ("starttls", "tls", "none"):
            raise BatchFailure(
                "BadConfiguration", f"SMTP security must be starttls, tls or none, not {security!r}"
            )
        port_text = (env.get(SMTP_ENV["port"]) or ("465" if security == "tls" else "587")).strip()
        if not port_text.isdigit():
            raise BatchFailure("BadConfiguration", f"SMTP port must be a number, not {port_text!r}")
        return cls(host, int(port_text), security, env.get(SMTP_ENV["username"]) or None,
                   env.get(SMTP_ENV["password"]) or None)  # fmt: skip


def email_message(target: EmailTarget, summary: RunSummary) -> EmailMessage:
    message = EmailMessage()
    outcome = f"{summary.rows_out} rows scored" if summary.phase == "Succeeded" else "failed"
    message["Subject"] = (
        f"[kubeloop] {summary.namespace}/{summary.batch_prediction} run {summary.run}: {outcome}"
    )
    message["From"] = target.sender
    message["To"] = ", ".join(target.to)
    lines = [
        f"BatchPrediction {summary.namespace}/{summary.batch_prediction}, run {summary.run}: {summary.phase}",
        "",
        f"Model:        {summary.model} v{summary.version} (sha256 {summary.sha256})",
        f"Rows read:    {summary.rows_in}",
        f"Rows scored:  {summary.rows_out}",
        f"Rejected:     {summary.rejects}",
        f"Duration:     {summary.duration_seconds} s",
        f"Output:       {summary.output_uri}",
        f"Manifest:     {summary.manifest_uri}",
    ]
    if summary.failed_shards:
        lines.append(f"Failed shards: {', '.join(map(str, summary.failed_shards))}")
    if summary.message:
        lines += ["", summary.message]
    message.set_content("\n".join(lines) + "\n")
    return message


def send_email(settings: SmtpSettings, target: EmailTarget, summary: RunSummary) -> Delivery:
    message = email_message(target, summary)
    try:
        if settings.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=TIMEOUT,
                                                  context=ssl.create_default_context())  # fmt: skip
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT)
        with smtp:
            if settings.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as error:
        return Delivery(False, f"SMTP login refused: {error.smtp_code}", permanent=True)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
        return Delivery(False, f"SMTP refused the addresses: {error}", permanent=True)
    except smtplib.SMTPResponseException as error:
        return Delivery(False, f"SMTP error {error.smtp_code}", permanent=error.smtp_code >= 500)
    except (smtplib.SMTPException, OSError) as error:
        return Delivery(False, f"could not reach the SMTP server {settings.host}:{settings.port}: {error}")
    sent = len(target.to) - len(refused)
    return Delivery(True, f"sent to {sent} recipient(s) via {settings.host}:{settings.port}")


def with_retries(
    send: Callable[[], Delivery], attempts: int = ATTEMPTS, delay: float = FIRST_DELAY
) -> Delivery:
    result = send()
    for attempt in range(1, attempts):
        if result.ok or result.permanent:
            break
        time.sleep(delay * 2 ** (attempt - 1))
        result = send()
    return result


# --- the pod -----------------------------------------------------------------------------------------


def channels(task: NotifyTask, env: Mapping[str, str]) -> dict[str, Callable[[], Delivery]]:
    found: dict[str, Callable[[], Delivery]] = {}
    url = env.get(WEBHOOK_URL_ENV, "").strip() if task.webhook_from_secret else task.webhook_url
    if task.webhook_from_secret and not url:
        raise BatchFailure("BadConfiguration", "the webhook URL Secret key is empty")
    if url:
        found["webhook"] = lambda: send_webhook(url, task.summary)
    if task.email is not None:
        settings, target = SmtpSettings.from_env(env), task.email
        found["email"] = lambda: send_email(settings, target, task.summary)
    return found


def notify(store: Store, task: NotifyTask, env: Mapping[str, str] = os.environ) -> NotifyResult:
    manifest = write_manifest(store, task)
    if not task.notify:
        return NotifyResult(
            ok=True, reason="Skipped", message="this outcome does not notify", manifest=manifest
        )
    state_location = folder_of(task.summary) + NOTIFICATIONS_FILE
    delivered = _delivered(store, state_location)
    outcome: dict[str, Delivery] = {}
    for channel, send in channels(task, env).items():
        if channel in delivered:
            outcome[channel] = Delivery(True, delivered[channel] + " (earlier attempt)")
            continue
        outcome[channel] = with_retries(send)
        if outcome[channel].ok:
            delivered[channel] = outcome[channel].detail
            store.put_bytes(state_location, json.dumps(delivered).encode(), "application/json")
        level = logging.INFO if outcome[channel].ok else logging.WARNING
        log.log(level, "notification", extra={"channel": channel, "detail": outcome[channel].detail})
    failed = {name: d for name, d in outcome.items() if not d.ok}
    message = "; ".join(f"{name}: {d.detail}" for name, d in outcome.items())
    result = NotifyResult(
        ok=not failed,
        reason="Sent" if not failed else "DeliveryFailed",
        message=message[:1500],
        manifest=manifest,
        webhook=outcome["webhook"].detail[:500] if "webhook" in outcome else None,
        email=outcome["email"].detail[:500] if "email" in outcome else None,
    )
    if failed and all(d.permanent for d in failed.values()):
        raise UndeliverableNotification(result)
    return result


class UndeliverableNotification(Exception):
    def __init__(self, result: NotifyResult) -> None:
        super().__init__(result.message)
        self.result = result


def _delivered(store: Store, location: str) -> dict[str, str]:
    try:
        recorded = json.loads(store.get_bytes(location))
    except (ObjectMissing, ValueError):
        return {}
    return {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}
