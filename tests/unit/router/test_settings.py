"""The router's environment and its standalone routing file: defaults, the in-cluster API, and
clear errors that name the variable or the field at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubeloop.contracts.router import ENV, RouterSettings, StandaloneRouting, split_address
from kubeloop.contracts.routing import ROUTER_PORT

TABLE = {
    "deployment": "churn", "model": "churn", "epoch": "e1", "mode": "Canary", "weight": 20,
    "stable": {"version": 1, "service": "churn-v1"}, "candidate": {"version": 2, "service": "churn-v2"},
}  # fmt: skip


def test_in_cluster_defaults() -> None:
    env = {"KUBELOOP_ROUTING_CONFIGMAP": "churn-routing", "KUBELOOP_NAMESPACE": "shop",
           "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}  # fmt: skip
    settings = RouterSettings.from_env(env)
    assert settings.kube_api == "https://10.96.0.1:443"
    assert settings.kube_token_file == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert settings.kube_ca_file == "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    assert (settings.port, settings.bind_host, settings.namespace) == (ROUTER_PORT, "0.0.0.0", "shop")
    ipv6 = RouterSettings.from_env({**env, "KUBERNETES_SERVICE_HOST": "fd00::1"})
    assert ipv6.kube_api == "https://[fd00::1]:443"


def test_overrides_for_tests_and_the_round_trip_through_env() -> None:
    env = {"KUBELOOP_ROUTING_CONFIGMAP": "churn-routing", "KUBELOOP_KUBE_API": "https://127.0.0.1:6443",
           "KUBELOOP_KUBE_TOKEN_FILE": "/tmp/t", "KUBELOOP_KUBE_CA_FILE": "/tmp/ca.crt",
           "KUBELOOP_PORT": "9000", "KUBELOOP_BIND_HOST": "127.0.0.1",
           "KUBELOOP_POD_NAME": "router-0"}  # fmt: skip
    settings = RouterSettings.from_env(env)
    assert settings.kube_api == "https://127.0.0.1:6443" and settings.port == 9000
    assert RouterSettings.from_env(settings.to_env()) == settings
    assert set(settings.to_env()) <= set(ENV.values())


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "KUBELOOP_ROUTING_CONFIGMAP"),
        ({"KUBELOOP_ROUTING_CONFIGMAP": "a", "KUBELOOP_ROUTING_FILE": "/f"}, "KUBELOOP_ROUTING_FILE"),
        ({"KUBELOOP_ROUTING_CONFIGMAP": "a"}, "KUBERNETES_SERVICE_HOST"),
        ({"KUBELOOP_ROUTING_FILE": "/f", "KUBELOOP_PORT": "http"}, "KUBELOOP_PORT"),
        ({"KUBELOOP_ROUTING_FILE": "/f", "KUBELOOP_EJECT_SECONDS": "-1"}, "KUBELOOP_EJECT_SECONDS"),
        ({"KUBELOOP_ROUTING_FILE": "/f", "KUBELOOP_LOG_LEVEL": "LOUD"}, "KUBELOOP_LOG_LEVEL"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match="bad router environment") as caught:
        RouterSettings.from_env(env)
    assert named in str(caught.value)


def test_routing_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    endpoints = {"churn-v1": ["127.0.0.2:8080", "127.0.0.3"], "churn-v2": []}
    path.write_text(json.dumps({"table": TABLE, "endpoints": endpoints}))
    routing = StandaloneRouting.load(str(path))
    assert routing.table.weight == 20 and routing.endpoints["churn-v1"][1] == "127.0.0.3"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "Invalid JSON"),
        (json.dumps({"table": {**TABLE, "weight": 150}}), "table.weight"),
        (json.dumps({"table": {**TABLE, "mode": "Blue"}}), "table.mode"),
        (json.dumps({"table": {**TABLE, "stable": None}}), "table.stable"),
        (json.dumps({"table": TABLE, "endpoints": {"churn-v3": []}}), "churn-v3"),
        (json.dumps({"table": TABLE, "endpoints": {"churn-v1": ["127.0.0.1:http"]}}), "bad port"),
        (json.dumps({"table": TABLE, "extra": 1}), "extra"),
    ],
)
def test_bad_routing_file_says_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "routing.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="routing file") as caught:
        StandaloneRouting.load(str(path))
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_missing_routing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="No such file"):
        StandaloneRouting.load(str(tmp_path / "absent.json"))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.7:9000", ("10.0.0.7", 9000)),
        ("10.0.0.7", ("10.0.0.7", 8080)),
        ("[fd00::7]:9000", ("fd00::7", 9000)),
        ("fd00::7", ("fd00::7", 8080)),
        ("server.local:81", ("server.local", 81)),
    ],
)
def test_addresses(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address, 8080) == expected


@pytest.mark.parametrize("address", [":80", "host:0", "host:99999", "[::1]:x"])
def test_bad_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        split_address(address, 8080)
