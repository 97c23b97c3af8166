"""Structured logging: one line per event, JSON or key=value, with every value redacted.

:func:`configure_logging` sets up structlog and routes the standard library's loggers (uvicorn,
litestar, the SDKs) through the same processors, so that no line of the process escapes the
redactor. Our own (structlog) lines are rendered and written directly, without a stdlib
LogRecord and handler on the way: the service writes one per webhook, and the stdlib detour
was 2/3 of that line's cost.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import msgspec
import structlog

from engine.text.redact import redact

__all__ = ["configure_logging", "redact_event"]


def redact_event(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: mask secrets in every value (and in keys that name a secret).

    Also drops uvicorn's ``color_message`` (the same text with ANSI colours).
    """
    event_dict.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return redact(dict(event_dict))


def _json(value: Any, **_: Any) -> str:
    """JSON for a log line: msgspec (5x ``json.dumps``), ``repr`` of what it cannot encode."""
    return msgspec.json.encode(value, enc_hook=repr).decode()


def configure_logging(
    level: str = "info",
    fmt: Literal["json", "console"] = "json",
    stream: TextIO | None = None,
) -> None:
    """Send structlog and standard-library logs to ``stream`` (stderr) as JSON or key=value.

    Raises ``ValueError`` for an unknown level name. Calling it again replaces the setup.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json)
        if fmt == "json"
        else structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"])
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_event,
    ]
    out = stream or sys.stderr
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write of the whole line (under structlog's per-file lock), then a flush.
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # The cloud SDKs log every HTTP request at INFO (azure-core's http_logging_policy), and
    # APScheduler logs "Running job ... executed successfully" for every tick (every 5 s): keep
    # them to warnings unless debugging is asked for.
    for name in ("azure", "databricks.sdk", "openai", "httpx", "urllib3", "msal", "apscheduler"):
        logging.getLogger(name).setLevel(logging.DEBUG if numeric <= logging.DEBUG
                                         else max(numeric, logging.WARNING))
    # uvicorn installs its own handlers; let its records reach ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
