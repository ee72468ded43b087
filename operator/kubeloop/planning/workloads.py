"""Pod templates for every workload the operator starts (training, validation, serving, monitoring).

Secure by default: non-root, read-only root filesystem with an emptyDir /tmp, no privilege
escalation, all capabilities dropped, RuntimeDefault seccomp (admitted under PodSecurity
`restricted`). Store keys only ever come from the Secret, by reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeloop import __version__

Obj = dict[str, Any]
NON_ROOT_UID = 65532


@dataclass(frozen=True)
class WorkloadSettings:
    """What the operator's settings decide about workloads."""

    s3_endpoint: str
    s3_bucket: str
    s3_secret_name: str
    trainer_image: str
    server_image: str
    router_image: str = f"kubeloop/router:{__version__}"
    monitor_image: str = f"kubeloop/monitor:{__version__}"
    pull_policy: str = "IfNotPresent"  # of every workload container


def store_env(settings: WorkloadSettings) -> list[Obj]:
    secret = settings.s3_secret_name
    return [
        {"name": "KUBELOOP_S3_ENDPOINT", "value": settings.s3_endpoint},
        {"name": "KUBELOOP_S3_BUCKET", "value": settings.s3_bucket},
        {
            "name": "KUBELOOP_S3_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": secret, "key": "accessKey"}},
        },
        {
            "name": "KUBELOOP_S3_SECRET_KEY",
            "valueFrom": {"secretKeyRef": {"name": secret, "key": "secretKey"}},
        },
    ]


def restricted_pod_security() -> Obj:
    return {"runAsNonRoot": True, "runAsUser": NON_ROOT_UID, "runAsGroup": NON_ROOT_UID,
            "fsGroup": NON_ROOT_UID, "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip


def restricted_container_security() -> Obj:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def container(name: str, image: str, env: list[Obj], *, args: list[str] | None = None,
              command: list[str] | None = None, resources: Obj | None = None,
              pull_policy: str = "IfNotPresent") -> Obj:  # fmt: skip
    spec: Obj = {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy,
        "env": env,
        "resources": resources or {},
        "securityContext": restricted_container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if command:
        spec["command"] = command
    if args:
        spec["args"] = args
    return spec


def pod_spec(containers: list[Obj], *, restart_policy: str) -> Obj:
    return {
        "restartPolicy": restart_policy,
        "automountServiceAccountToken": False,  # workloads never talk to the API server
        "securityContext": restricted_pod_security(),
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def labels_for(component: str, instance: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"app.kubernetes.io/name": "kubeloop", "app.kubernetes.io/component": component,
            "app.kubernetes.io/instance": instance, **(extra or {})}  # fmt: skip


def owner_reference(owner: Obj) -> Obj:
    """Makes `owner` the controller of a child: garbage collection deletes the child with it."""
    return {
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip


def owned(child: Obj, owner: Obj) -> Obj:
    """`child` with `owner` as its controller and the owner's namespace."""
    metadata = {**child.get("metadata", {}), "ownerReferences": [owner_reference(owner)]}
    metadata.setdefault("namespace", owner["metadata"]["namespace"])
    return {**child, "metadata": metadata}
