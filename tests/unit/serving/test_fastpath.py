"""The raw ASGI front takes exactly the inference paths FastAPI would route to the inference handlers."""

from __future__ import annotations

import pytest

from kubeloop.serving.fastpath import route


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/models/churn/infer", ("churn", None, "v2")),
        ("/v2/models/churn/versions/3/infer", ("churn", "3", "v2")),
        ("/v1/models/churn:predict", ("churn", None, "v1")),
        ("/v1/models/a:b:predict", ("a:b", None, "v1")),  # Starlette's {name} takes the colon too
        ("/v2/models//infer", None),
        ("/v2/models/churn/versions//infer", None),
        ("/v2/models/churn/other/3/infer", None),
        ("/v2/models/a/b/infer", None),
        ("/v1/models/:predict", None),
        ("/v1/models/a/b:predict", None),
        ("/v2/models/churn", None),
        ("/v1/feedback", None),
        ("/metrics", None),
    ],
)
def test_routes(path: str, expected: tuple[str, str | None, str] | None) -> None:
    assert route(path) == expected
