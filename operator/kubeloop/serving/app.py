"""The FastAPI application: health, metadata, inference in both forms, feedback and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import ClientDisconnect

from kubeloop.contracts.serving import ServingSettings
from kubeloop.serving import protocol as p
from kubeloop.serving.decoding import BadInput
from kubeloop.serving.feedback import parse_feedback
from kubeloop.serving.runtime import Runtime
from kubeloop.serving.scoring import ClientGone, read_body, score
from kubeloop.store.client import Store, StoreUnavailable

log = logging.getLogger("kubeloop.serving")
JSON = "application/json"


def _body(schema: str, description: str) -> dict[str, Any]:
    """openapi_extra for a route that reads its body by hand (see protocol.py for why)."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": True, "description": description, "content": {JSON: {"schema": ref}}}}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": p.ErrorBody} for code in codes}


def create_app(settings: ServingSettings, store: Store | None = None) -> FastAPI:
    runtime = Runtime(settings, store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        yield
        await asyncio.to_thread(runtime.stop)  # flush the logs once in-flight requests are done

    app = FastAPI(title="Kubeloop model server", version=runtime.server_version, lifespan=lifespan)
    app.state.runtime = runtime

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(part) for part in first["loc"])
        return Response(p.encode_error(f"{field}: {first['msg']}", field or None), 400, media_type=JSON)

    @app.get("/v2/health/live", response_model=p.Liveness, tags=["health"])
    async def live() -> Response:
        return Response(b'{"live":true}', media_type=JSON)

    @app.get(
        "/v2/health/ready",
        response_model=p.Readiness,
        responses={503: {"model": p.Readiness}},
        tags=["health"],
    )
    async def ready() -> Response:
        return runtime.readiness()

    @app.get("/v2", response_model=p.ServerMetadata, tags=["metadata"])
    async def server_metadata() -> Response:
        return runtime.server_metadata()

    @app.get(
        "/v2/models/{name}", response_model=p.ModelMetadata, responses=_errors(404, 503), tags=["metadata"]
    )
    async def model_metadata(name: str) -> Response:
        return runtime.model_metadata(name, None)

    @app.get(
        "/v2/models/{name}/versions/{version}",
        response_model=p.ModelMetadata,
        responses=_errors(404, 503),
        tags=["metadata"],
    )
    async def model_version_metadata(name: str, version: str) -> Response:
        return runtime.model_metadata(name, version)

    @app.get(
        "/v2/models/{name}/ready",
        response_model=p.Readiness,
        responses={404: {"model": p.ErrorBody}, 503: {"model": p.Readiness}},
        tags=["health"],
    )
    async def model_ready(name: str) -> Response:
        return runtime.model_readiness(name, None)

    @app.get(
        "/v2/models/{name}/versions/{version}/ready",
        response_model=p.Readiness,
        responses={404: {"model": p.ErrorBody}, 503: {"model": p.Readiness}},
        tags=["health"],
    )
    async def model_version_ready(name: str, version: str) -> Response:
        return runtime.model_readiness(name, version)

    infer_doc = _body("InferenceRequest", "Open Inference Protocol request: one tensor per column.")
    infer_errors = _errors(400, 404, 413, 503)

    @app.post(
        "/v2/models/{name}/infer",
        response_model=p.InferenceResponse,
        responses=infer_errors,
        openapi_extra=infer_doc,
        tags=["inference"],
    )
    async def infer(name: str, request: Request) -> Response:
        return await _infer(runtime, request, (name, None, "v2"))

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        response_model=p.InferenceResponse,
        responses=infer_errors,
        openapi_extra=infer_doc,
        tags=["inference"],
    )
    async def infer_version(name: str, version: str, request: Request) -> Response:
        return await _infer(runtime, request, (name, version, "v2"))

    @app.post(
        "/v1/models/{name}:predict",
        response_model=p.PredictResponse,
        responses=infer_errors,
        openapi_extra=_body("PredictRequest", '{"instances": [{"column": value, ...}]}'),
        tags=["inference"],
    )
    async def predict(name: str, request: Request) -> Response:
        return await _infer(runtime, request, (name, None, "v1"))

    @app.post(
        "/v1/feedback",
        response_model=p.FeedbackAccepted,
        responses=_errors(400, 403, 413, 503),
        openapi_extra=_body("FeedbackItem", "One {requestId, actual} item (or a JSON list of them)."),
        tags=["feedback"],
    )
    async def feedback(request: Request) -> Response:
        return await _feedback(runtime, request)

    @app.get("/metrics", tags=["metrics"], response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            model = runtime.state.model
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = p.component_schemas(model.specs if model is not None else None)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
            if model is None:
                return schema  # generic until the model is loaded; then specific, and kept
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _infer(runtime: Runtime, request: Request, route: tuple[str, str | None, str]) -> Response:
    """The FastAPI route of an inference path (FastInference answers these first when it is in front)."""

    async def read() -> bytes:
        try:
            return await read_body(
                request.stream(), request.headers.get("content-length"), runtime.settings.max_body_bytes
            )
        except ClientDisconnect:
            raise ClientGone from None

    try:
        answer = await score(runtime, read, route, request.headers.get("x-request-id"))
    except ClientGone:
        return Response(status_code=400)  # nobody is listening any more
    headers = {"x-request-id": answer.request_id} if answer.request_id else None
    return Response(answer.content, answer.status, headers, media_type=JSON)


async def _feedback(runtime: Runtime, request: Request) -> Response:
    started = time.perf_counter()
    if not runtime.settings.feedback_enabled:
        return runtime.problem(BadInput("feedback is disabled for this deployment", status=403), "feedback")
    try:
        body = await read_body(
            request.stream(), request.headers.get("content-length"), runtime.settings.max_body_bytes
        )
        items = parse_feedback(body, runtime.classes())
        location = await asyncio.to_thread(runtime.feedback.write, items)
    except BadInput as error:
        return runtime.problem(error, "feedback", started)
    except StoreUnavailable as error:
        log.warning("feedback not stored: the store is unavailable", extra={"error": str(error)})
        return runtime.problem(
            BadInput("the store is unavailable; feedback not stored, send it again", status=503),
            "feedback",
            started,
        )
    for item in items:
        runtime.metrics.feedback.labels(**runtime.metrics.base, source=item.source).inc()
    runtime.metrics.observe_request("feedback", 200, time.perf_counter() - started, 0)
    return Response(
        p.FeedbackAccepted(stored=len(items), location=location).model_dump_json(), media_type=JSON
    )
