"""From EndpointSlices to addresses, and from addresses to a pod: balancing and passive ejection."""

from __future__ import annotations

import time
from typing import Any

from kubeloop.router.backends import Pods
from kubeloop.router.kubewatch import ready_addresses, slice_port
from kubeloop.router.upstream import ConnectFailed


def endpoint_slice(
    name: str, endpoints: list[tuple[str, bool | None]], ports: list[dict[str, Any]] | None
) -> dict[str, Any]:
    listed = []
    for address, ready in endpoints:
        conditions = {} if ready is None else {"ready": ready}
        listed.append({"addresses": [address], "conditions": conditions})
    return {"metadata": {"name": name}, "endpoints": listed, "ports": ports}


def test_ready_or_unknown_endpoints_are_used_and_not_ready_ones_are_not() -> None:
    slices = [
        endpoint_slice("b", [("10.0.0.3", True)], [{"name": "http", "port": 8080}]),
        endpoint_slice("a", [("10.0.0.1", True), ("10.0.0.2", False), ("10.0.0.4", None)], [{"port": 8080}]),
    ]
    assert ready_addresses(slices, 8080) == [("10.0.0.1", 8080), ("10.0.0.4", 8080), ("10.0.0.3", 8080)]


def test_an_empty_slice_or_none_gives_no_address() -> None:
    assert ready_addresses([], 8080) == []
    assert ready_addresses([{"metadata": {"name": "x"}, "endpoints": None}], 8080) == []


def test_the_port_numbered_like_the_backend_else_named_http_else_the_only_one() -> None:
    assert slice_port([{"name": "metrics", "port": 9090}, {"name": "web", "port": 8080}], 8080) == 8080
    assert slice_port([{"name": "metrics", "port": 9090}, {"name": "http", "port": 8000}], 80) == 8000
    assert slice_port([{"name": "web", "port": 8000}], 80) == 8000
    assert slice_port(None, 8080) == 8080  # no ports listed: every port
    assert slice_port([{"name": "a", "port": 1}, {"name": "b", "port": 2}], 8080) == 8080


def test_least_outstanding_rotating_among_equals() -> None:
    pods = Pods("churn-v1", connect_timeout=1, eject_seconds=5)
    pods.set_addresses([("127.0.0.2", 8080), ("127.0.0.3", 8080), ("127.0.0.4", 8080)])
    picked = [pods.pick() for _ in range(6)]
    assert {p.address for p in picked if p} == {"127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.4:8080"}
    busy, _, _ = pods.pools
    busy.outstanding = 3
    assert all(pods.pick() is not busy for _ in range(10))


def test_an_ejected_pod_sits_out_unless_every_pod_is_ejected() -> None:
    pods = Pods("churn-v1", connect_timeout=1, eject_seconds=5)
    pods.set_addresses([("127.0.0.2", 8080), ("127.0.0.3", 8080)])
    first, second = pods.pools
    pods.eject(first, ConnectFailed("refused"))
    assert pods.ejected() == ["127.0.0.2:8080"]
    assert all(pods.pick() is second for _ in range(10))
    assert pods.pick(exclude=second) is first  # better a pod that may have recovered than no answer
    first.ejected_until = time.monotonic() - 1  # its time is up
    assert {pods.pick() for _ in range(4)} == {first, second}


def test_addresses_that_stay_keep_their_pool() -> None:
    pods = Pods("churn-v1", connect_timeout=1, eject_seconds=5)
    pods.set_addresses([("127.0.0.2", 8080), ("127.0.0.3", 8080)])
    kept = pods.pools[1]
    pods.set_addresses([("127.0.0.3", 8080), ("127.0.0.5", 8080), ("127.0.0.5", 8080)])
    assert pods.pools[0] is kept and pods.addresses == ["127.0.0.3:8080", "127.0.0.5:8080"]
    pods.set_addresses([])
    assert pods.pick() is None
