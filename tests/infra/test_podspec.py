"""The local node's pure translation of pod specs: $(VAR) expansion, env sources, volumes, images."""

from __future__ import annotations

import base64

import pytest

from tests.infra.localnode.images import ImageMap, ImageNotMapped
from tests.infra.localnode.podspec import ConfigError, container_env, expand, field_value, volume_files

POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "web"}},
    "spec": {"nodeName": "kubeloop-local", "serviceAccountName": "sa"},
    "status": {"podIP": "127.0.1.5", "podIPs": [{"ip": "127.0.1.5"}]},
}
OBJECTS = {
    ("Secret", "ns", "creds"): {"data": {"key": base64.b64encode(b"s3").decode()}},
    ("ConfigMap", "ns", "conf"): {"data": {"mode": "fast", "level": "2"}},
}


def lookup(kind: str, namespace: str, name: str) -> dict[str, object] | None:
    return OBJECTS.get((kind, namespace, name))  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-two"),
        ("$$(A)", "$(A)"),
        ("$(MISSING)", "$(MISSING)"),
        ("$A", "$A"),
        ("x$$y", "x$y"),
    ],
)
def test_expand_follows_kubelet_rules(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "two"}) == expected


def test_env_sources_in_order_later_wins_and_refs_expand() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "conf"}, "prefix": "C_"}],
        "env": [
            {"name": "C_mode", "value": "override"},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "key"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "BOTH", "value": "$(KEY)@$(IP)"},
        ],
    }
    env = container_env(POD, container, lookup, {"PATH": "/bin"})
    assert env == {
        "PATH": "/bin",
        "C_mode": "override",
        "C_level": "2",
        "KEY": "s3",
        "IP": "127.0.1.5",
        "BOTH": "s3@127.0.1.5",
    }


@pytest.mark.parametrize(
    "env",
    [
        [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}],
        [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "absent"}}}],
    ],
)
def test_missing_references_are_config_errors_unless_optional(env: list[dict[str, object]]) -> None:
    with pytest.raises(ConfigError):
        container_env(POD, {"env": env}, lookup, {})
    for var in env:
        next(iter(var["valueFrom"].values()))["optional"] = True  # type: ignore[attr-defined]
    assert "X" not in container_env(POD, {"env": env}, lookup, {})


def test_field_paths() -> None:
    assert field_value(POD, "metadata.labels['app']") == "web"
    assert field_value(POD, "spec.serviceAccountName") == "sa"
    with pytest.raises(ConfigError, match="unsupported fieldRef"):
        field_value(POD, "spec.containers")


def test_projected_volume_like_the_service_account_admission_injects() -> None:
    volume = {
        "name": "kube-api-access",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "conf", "items": [{"key": "mode", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                    }
                },
            ]
        },
    }
    asked = []

    def tokens(namespace: str, account: str, audience: str | None, seconds: int) -> str:
        asked.append((namespace, account, audience, seconds))
        return "jwt"

    files = volume_files(POD, volume, lookup, tokens)
    assert files == {"token": b"jwt", "ca.crt": b"fast", "namespace": b"ns"}
    assert asked == [("ns", "sa", None, 3607)]
    assert volume_files(POD, {"name": "scratch", "emptyDir": {}}, lookup, tokens) is None


@pytest.mark.parametrize(
    ("image", "command", "expected"),
    [
        ("kubeloop/server:0.1.0", [], ["/py", "-m", "kubeloop.serving", "--x"]),
        ("registry.example/kubeloop/trainer@sha256:ab", [], ["/py", "-m", "kubeloop.trainer", "--x"]),
        ("python:3.11-slim", ["python3", "-c", "1"], ["/py", "-c", "1", "--x"]),
        ("kubeloop/operator:dev", ["/usr/bin/env"], ["/usr/bin/env", "--x"]),
    ],
)
def test_images_map_to_the_project_interpreter(image: str, command: list[str], expected: list[str]) -> None:
    assert ImageMap(python="/py").argv(image, command, ["--x"], "/bin") == expected


def test_other_images_are_refused_by_name() -> None:
    with pytest.raises(ImageNotMapped, match=r"'nginx:1\.27' has no local runtime"):
        ImageMap(python="/py").argv("nginx:1.27", [], [], "/bin")
