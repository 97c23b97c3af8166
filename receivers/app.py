"""The HTTP service: ``create_app(settings)`` builds the whole Litestar app, nothing at import.

Routes: the four receivers (POST), ``/health`` and ``/ready`` (open), ``/api/...`` (admin keys)
and the OpenAPI document under ``/schema`` (admin keys). Client mistakes map to 4xx with a JSON
body ``{"error": ..., "detail": ..., "path": ...}``; a database that cannot take a write to 503
with ``Retry-After`` (Azure Monitor retries 503, never 500). On every route, a state-changing
request from another site is refused (:mod:`receivers.csrf`) and every answer carries the
security headers (:mod:`receivers.headers`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import structlog
from litestar import Litestar, MediaType, Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.response.base import ASGIResponse
from litestar.types import ControllerRouterHandler

from engine.config import RECEIVERS, Settings
from engine.errors import MalformedPayload, PayloadError, StorageError
from engine.runtime.metrics import Metrics
from engine.store.db import Database
from engine.text import secret_values
from receivers import intake
from receivers.api import BadRequest, JsonRequest, api_router
from receivers.auth import Authenticator, Unauthorized, admin_guard
from receivers.csrf import CrossSiteGuard, CrossSiteRequest, JsonRequired
from receivers.dashboard import PAGES, dashboard_router, metrics_handler, refusal
from receivers.group_commit import GroupCommitter
from receivers.headers import add_security_headers
from receivers.operators_api import operators_router
from receivers.operators_pages import operators_pages
from receivers.silence_pages import silence_router
from receivers.silences_api import silences_router

if TYPE_CHECKING:
    from engine.runtime.service import Service

__all__ = ["admin_guard", "create_app"]

log = structlog.get_logger("remediator.http")

RETRY_AFTER_SECONDS = "5"


class UnsupportedMediaType(Exception):
    """The body is declared as something other than JSON (answered 415)."""


INLINE_BYTES = 64 * 1024
"""Bodies up to this size are parsed and redacted on the event loop (a fraction of a
millisecond; a thread hop costs as much); larger ones in a worker thread, so that a 1 MB body
does not stall the other requests."""


_ENCODER = msgspec.json.Encoder()


def _receiver_handler(endpoint: str) -> ControllerRouterHandler:
    """A POST handler for one receiver endpoint; all of them share :mod:`receivers.intake`.

    The hot path of the service, so it skips two pieces of Litestar's machinery that cost
    more than the work they do here (measured in-process: 119 -> 56 µs per request): the
    caller is checked in the handler instead of by a guard (Litestar copies the handler for
    every guard call), and the 202 body is encoded once into an ``ASGIResponse``.
    """

    async def receive(request: Request[Any, Any, Any]) -> ASGIResponse:
        started = time.perf_counter()
        authenticator: Authenticator = request.app.state["authenticator"]
        authenticator.check(endpoint, request.headers, request.query_params)
        try:
            intake.check_content_type(request.headers.get("content-type", ""))
        except ValueError as exc:
            raise UnsupportedMediaType(str(exc)) from exc
        body = await request.body()
        try:
            if len(body) > INLINE_BYTES:
                events, raw = await anyio.to_thread.run_sync(intake.prepare, endpoint, body)
            else:
                events, raw = intake.prepare(endpoint, body)
            committer: GroupCommitter = request.app.state["committer"]
            receipts = await committer.commit(endpoint, events, raw)
        except PayloadError as exc:
            log.info("intake refused", endpoint=endpoint, error=_error_name(exc),
                     detail=exc.message, path=exc.path)
            raise
        except StorageError as exc:
            log.warning("intake not stored", endpoint=endpoint, error=str(exc)[:300])
            raise
        answer = intake.answer(receipts)
        log.info(
            "intake",
            event_id=answer["event_id"],
            endpoint=endpoint,
            duplicate=answer["duplicate"],
            status=answer["status"],
            events=len(receipts),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return ASGIResponse(body=_ENCODER.encode(answer), status_code=202,
                            media_type=MediaType.JSON)

    return post(
        f"/{endpoint}",
        name=endpoint,
        operation_id=f"receive_{endpoint.replace('-', '_')}",
        summary=f"Receive a {endpoint} notification",
        description="Answers 202 with the stored event's id once the event is committed.",
        status_code=202,
        tags=["receivers"],
        responses={202: ResponseSpec(data_container=dict[str, Any],
                                     description="Stored (or a duplicate of a stored event)")},
    )(receive)


@get("/health", tags=["health"], sync_to_thread=False)
def health() -> dict[str, str]:
    """The process is up (touches no storage)."""
    return {"status": "ok"}


@get("/ready", tags=["health"])
async def ready(request: Request[Any, Any, Any], db: NamedDependency[Database]
                ) -> Response[dict[str, str]]:
    """200 if a webhook could be stored now, else 503 so that a load balancer stops sending.

    The intake's writer decides (:meth:`GroupCommitter.ready`: no commit stuck past
    ``[intake] commit_timeout_s``, the last write committed, a heartbeat write when none was
    made lately); the database must also answer a read.
    """
    committer: GroupCommitter = request.app.state["committer"]
    if await committer.ready() and await anyio.to_thread.run_sync(db.ping):
        return Response({"status": "ready"}, status_code=200)
    return Response({"status": "unavailable"}, status_code=503,
                    headers={"Retry-After": RETRY_AFTER_SECONDS})


def _error_name(exc: PayloadError) -> str:
    return "malformed_payload" if isinstance(exc, MalformedPayload) else "unknown_schema"


def _reject(request: Request[Any, Any, Any], reason: str) -> None:
    """Count a refused request in the app's metrics (set up by the lifespan)."""
    metrics = request.app.state.get("metrics")
    if metrics is not None:
        metrics.reject(reason)


def _on_payload_error(
    request: Request[Any, Any, Any], exc: PayloadError
) -> Response[dict[str, Any]]:
    status = 400 if isinstance(exc, MalformedPayload) else 422
    _reject(request, "malformed" if status == 400 else "unknown_schema")
    return Response({"error": _error_name(exc), "detail": exc.message, "path": exc.path},
                    status_code=status)


def _on_storage_error(
    request: Request[Any, Any, Any], exc: StorageError
) -> Response[dict[str, Any]]:
    _reject(request, "storage")
    return Response(
        {"error": "storage_unavailable", "detail": "the event could not be stored; retry later"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _on_unauthorized(
    request: Request[Any, Any, Any], exc: Unauthorized
) -> Response[dict[str, Any]]:
    # The path only: the query string may hold a (wrong) key.
    log.info("unauthorized", path=request.url.path)
    _reject(request, "unauthorized")
    headers = {"WWW-Authenticate": ", ".join(exc.challenges)} if exc.challenges else {}
    return Response({"error": "unauthorized"}, status_code=401, headers=headers)


def _on_media_type(
    request: Request[Any, Any, Any], exc: UnsupportedMediaType | JsonRequired
) -> Response[dict[str, Any]]:
    _reject(request, "unsupported_media")
    return Response({"error": "unsupported_media_type", "detail": str(exc)}, status_code=415)


def _on_cross_site(request: Request[Any, Any, Any], exc: CrossSiteRequest) -> Response[Any]:
    """403: JSON, or a page for the dashboard's routes (a person's browser posted it)."""
    log.warning("cross-site request refused", method=request.method, path=request.url.path,
                detail=str(exc))
    _reject(request, "cross_site")
    handler = request.scope.get("route_handler")
    if handler is not None and handler.opt.get(PAGES):
        return refusal(403, "Refused: request from another site", str(exc))
    return Response({"error": "cross_site_request", "detail": str(exc)}, status_code=403)


def _on_bad_request(_: Request[Any, Any, Any], exc: BadRequest) -> Response[dict[str, Any]]:
    return Response({"error": "bad_request", "detail": str(exc)}, status_code=400)


def _http_error(body_limit: int) -> Any:
    names = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}

    def handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
        status = exc.status_code
        if status == 413:
            _reject(request, "too_large")
            detail = f"the body is larger than the limit of {body_limit} bytes"
        else:
            detail = exc.detail + _problems(exc.extra)
        error = names.get(status, "bad_request" if status < 500 else "internal")
        handler = request.scope.get("route_handler")
        if status == 400 and handler is not None and handler.opt.get(PAGES):
            # A dashboard form that did not parse: a person's browser reads the answer.
            return refusal(400, "Refused: the form does not parse", detail)
        return Response({"error": error, "detail": detail}, status_code=status,
                        headers=exc.headers or None)

    return handler


def _problems(extra: Any) -> str:
    """What Litestar's validation found (``[{"key", "message", "source"}]``), as text."""
    if not isinstance(extra, list):
        return ""
    found = [f"{item.get('key')}: {item.get('message')}" if item.get("key")
             else str(item.get("message")) for item in extra if isinstance(item, dict)]
    return f": {'; '.join(found)}" if found else ""


def _on_internal(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # A bug, never a client's doing (the fuzz tests hold us to that): log it whole, answer 500.
    log.error("internal error", path=request.url.path, exc_info=exc)
    return Response({"error": "internal"}, status_code=500)


def create_app(
    settings: Settings,
    db: Database | None = None,
    *,
    authenticator: Authenticator | None = None,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    service: Service | None = None,
    start_service: bool = True,
) -> Litestar:
    """The service for ``settings``.

    ``db``: a Database the caller owns (tests, the demo); without it the app opens
    ``settings.db`` at start and closes it at shutdown. ``authenticator``: built from the
    settings if not given (loads the Entra signing keys now; raises ConfigError if it cannot).
    ``route_handlers``: more handlers to mount (the playbook and dashboard routes); they get the
    ``db`` and ``settings`` dependencies and may use :func:`admin_guard`.
    ``service``: the engine (:class:`engine.runtime.service.Service`) over the same database; the
    management API uses it, and the lifespan starts and stops it (unless ``start_service`` is
    false: tests drive its worker by hand). Without it the app is the receivers only.
    """
    auth = authenticator or Authenticator(settings)
    secret_values.use(settings)  # masked by value wherever redaction runs (engine/text/redact.py)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        for problem in auth.problems():
            log.warning("auth", problem=problem)
        for where in secret_values.short():
            log.warning("secret too short to be masked by value", setting=where,
                        min_length=secret_values.MIN_LENGTH)
        owned = None
        if db is None:
            owned = await anyio.to_thread.run_sync(
                lambda: Database(settings.db, sync_full=settings.sync_full)
            )
        app.state["db"] = db or owned
        committer = GroupCommitter(
            app.state["db"], on_commit=service.wake if service is not None else None,
            intake=settings.intake,
        )
        committer.start()
        app.state["committer"] = committer
        app.state["metrics"] = Metrics(lambda: app.state.get("db"))
        if service is not None and start_service:
            await anyio.to_thread.run_sync(service.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(committer.close)
            if service is not None and start_service:
                await anyio.to_thread.run_sync(service.stop)
            if owned is not None:
                owned.close()

    def provide_db(state: State) -> Database:
        return state["db"]

    def provide_settings() -> Settings:
        return settings

    return Litestar(
        route_handlers=[
            health,
            ready,
            *(_receiver_handler(name) for name in RECEIVERS),
            api_router(),
            operators_router(),
            silences_router(),
            silence_router(),
            dashboard_router(),
            operators_pages(),
            metrics_handler,
            *route_handlers,
        ],
        dependencies={
            "db": Provide(provide_db, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
        },
        state=State({"authenticator": auth, "settings": settings, "service": service}),
        lifespan=[lifespan],
        middleware=[CrossSiteGuard()],
        before_send=[add_security_headers],
        exception_handlers={
            PayloadError: _on_payload_error,
            StorageError: _on_storage_error,
            Unauthorized: _on_unauthorized,
            UnsupportedMediaType: _on_media_type,
            JsonRequired: _on_media_type,
            CrossSiteRequest: _on_cross_site,
            BadRequest: _on_bad_request,
            HTTPException: _http_error(settings.body_limit),
            Exception: _on_internal,
        },
        request_max_body_size=settings.body_limit,
        request_class=JsonRequest,
        openapi_config=OpenAPIConfig(
            title="Remediator",
            version="0.1.0",
            openapi_router=Router(path="/schema", guards=[admin_guard], route_handlers=[]),
            # The documents only: the browsable UIs load scripts from CDNs, inline, into the
            # admin origin, which the security headers' policy (rightly) does not allow.
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
        ),
        logging_config=None,
    )
