"""`kubeloop status|approve|abort|promote <mdep>`: read a rollout, or steer it with an annotation.

Steering uses annotations, not spec, so a GitOps tool that owns the spec sees no drift; the
operator records who approved in the rollout history.
"""

from __future__ import annotations

import getpass
from typing import Any

from kubernetes import client, config

from kubeloop import API_GROUP, API_VERSION
from kubeloop.kube.client import api_client
from kubeloop.planning.rollout import (
    ABORT_ANNOTATION,
    APPROVE_ANNOTATION,
    APPROVED_BY_ANNOTATION,
    PROMOTE_ANNOTATION,
)

Obj = dict[str, Any]
PLURAL = "modeldeployments"
ACTIONS = {
    "approve": "approve the candidate waiting in AwaitingApproval",
    "abort": "roll the candidate back now; the stable version keeps all traffic",
    "promote": "promote the candidate now, skipping the remaining steps",
}
ANNOTATION = {"approve": APPROVE_ANNOTATION, "abort": ABORT_ANNOTATION, "promote": PROMOTE_ANNOTATION}


class CommandError(Exception):
    """Something the person should fix (no rollout in progress, unknown deployment, ...)."""


def default_namespace() -> str:
    try:
        _, context = config.list_kube_config_contexts()
    except (config.ConfigException, FileNotFoundError):
        return "default"
    return str((context or {}).get("context", {}).get("namespace") or "default")


def who() -> str:
    """The person acting: the kubeconfig user of the current context, else the login name."""
    try:
        _, context = config.list_kube_config_contexts()
        user = (context or {}).get("context", {}).get("user")
    except (config.ConfigException, FileNotFoundError):
        user = None
    return f"{getpass.getuser()} ({user})" if user else getpass.getuser()


def read(namespace: str, name: str) -> Obj:
    custom = client.CustomObjectsApi(api_client())
    return dict(custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name))


def act(namespace: str, name: str, verb: str) -> str:
    candidate = (read(namespace, name).get("status") or {}).get("candidate")
    if not candidate:
        raise CommandError(f"ModelDeployment {name} has no rollout in progress")
    version = str(candidate["version"])
    annotations = {ANNOTATION[verb]: version}
    if verb in ("approve", "promote"):
        annotations[APPROVED_BY_ANNOTATION] = who()
    custom = client.CustomObjectsApi(api_client())
    custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name,
                                          {"metadata": {"annotations": annotations}})  # fmt: skip
    return f"{verb}: version {version} of ModelDeployment {namespace}/{name}"


def _side(figures: Obj, key: str) -> str:
    latency = (figures.get("latency") or {}).get(key) or {}
    requests, errors = (figures.get("requests") or {}).get(key, 0), (figures.get("errors") or {}).get(key, 0)
    p50, p99 = latency.get("p50Ms", "-"), latency.get("p99Ms", "-")
    return f"{requests} requests, {errors} errors, p50 {p50} ms, p99 {p99} ms"


def status_text(mdep: Obj) -> str:
    """What a person wants to see about a rollout, in a dozen lines."""
    status, meta = mdep.get("status") or {}, mdep["metadata"]
    stable, candidate = status.get("stable") or {}, status.get("candidate")
    lines = [
        f"ModelDeployment {meta['namespace']}/{meta['name']}: {status.get('phase', 'Unknown')}",
        f"  endpoint   {status.get('endpoint', '-')}",
        f"  stable     version {stable.get('version', '-')} ({stable.get('ready', 0)} ready)",
    ]
    if candidate:
        where = "shadow" if candidate.get("step") is None else f"step {candidate['step'] + 1}"
        ready, weight = candidate.get("ready", 0), candidate.get("weight", 0)
        lines.append(
            f"  candidate  version {candidate['version']} ({ready} ready), {where}, weight {weight}%"
        )
    figures = status.get("comparison")
    if figures:
        agreement, delta = figures.get("agreement", "-"), figures.get("probabilityDelta", "-")
        lines += ["  comparison",
                  f"    compared   {figures.get('compared', 0)} requests, agreement {agreement}, "
                  f"mean probability delta {delta}",
                  f"    stable     {_side(figures, 'stable')}",
                  f"    candidate  {_side(figures, 'candidate')}"]  # fmt: skip
    for condition in status.get("conditions") or []:
        lines.append(f"  {condition['type']:<12}{condition['status']:<7}{condition.get('message', '')}")
    history = status.get("history") or []
    if history:
        lines.append("  history")
        for record in history[-5:]:
            by = f", approved by {record['approvedBy']}" if record.get("approvedBy") else ""
            lines.append(f"    v{record['version']} {record['outcome']} ({record.get('reason', '')}){by}")
    return "\n".join(lines)
