"""Every foreign exception the cloud SDKs raise, mapped to our two action errors.

The type decides whether the worker tries again: :class:`~engine.errors.RetryableActionError`
(timeouts, 408, 429, 5xx, connection failures) or :class:`~engine.errors.PermanentActionError`
(other 4xx, bad credentials, unknown ids). :func:`verdicts` names every exception class of
``databricks.sdk.errors``, ``requests``, ``azure.core.exceptions``, ``azure.identity`` and
``httpx`` explicitly (a test checks that none is missing); a subclass an SDK adds later falls
back to its nearest listed ancestor.

Messages say where (``adf.rerun_pipeline[factory=f pipeline=p]: 429 Too Many Requests (retry
after 5 s)``), carry no secret (the redactor runs over them, and URLs keep only their host)
and chain the SDK's exception as ``__cause__``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from types import MappingProxyType
from typing import Literal

import httpx

from engine.errors import ActionError, PermanentActionError, RetryableActionError
from engine.text.patterns import TEXT_LIMIT
from engine.text.patterns import compile as compile_pattern
from engine.text.redact import redact_text

__all__ = [
    "RetryAfterError",
    "Verdict",
    "cloud_call",
    "foreign",
    "map_error",
    "retryable_status",
    "safe_text",
    "verdict_of",
    "verdicts",
]

Verdict = Literal["retryable", "permanent", "status"]
"""``status`` means: decided by the HTTP status the exception carries."""


class RetryAfterError(RetryableActionError):
    """A retryable failure whose server said when to come back: ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@cache
def verdicts() -> Mapping[type[BaseException], Verdict]:
    """Every foreign exception class and its verdict (read-only; built on first use).

    Built lazily, and cached as the immutable constant it is, because naming the classes
    imports the cloud SDKs: the CLI commands that make no cloud call must not pay for them.
    """
    import azure.core.exceptions as az
    import azure.identity as azid
    import requests.exceptions as rq
    from databricks.sdk import errors as dbx

    table: dict[type[BaseException], Verdict] = {
        # databricks-sdk: the class is chosen by the SDK from the HTTP status and error code.
        dbx.DatabricksError: "status",
        dbx.BadRequest: "permanent",
        dbx.InvalidParameterValue: "permanent",
        dbx.InvalidState: "permanent",
        dbx.Unauthenticated: "permanent",
        dbx.PermissionDenied: "permanent",
        dbx.NotFound: "permanent",
        dbx.ResourceDoesNotExist: "permanent",
        dbx.ResourceConflict: "permanent",
        dbx.AlreadyExists: "permanent",
        dbx.ResourceAlreadyExists: "permanent",
        dbx.Aborted: "retryable",  # a concurrent modification: the next attempt sees fresh state
        dbx.TooManyRequests: "retryable",
        dbx.ResourceExhausted: "retryable",
        dbx.RequestLimitExceeded: "retryable",
        dbx.Cancelled: "retryable",
        dbx.InternalError: "retryable",
        dbx.Unknown: "retryable",
        dbx.DataLoss: "permanent",
        dbx.NotImplemented: "permanent",
        dbx.TemporarilyUnavailable: "retryable",
        dbx.DeadlineExceeded: "retryable",
        dbx.PrivateLinkValidationError: "permanent",
        dbx.OperationFailed: "permanent",
        dbx.OperationTimeout: "retryable",
        # The Databricks SDK raises the builtin TimeoutError when its retry budget runs out.
        TimeoutError: "retryable",
        # requests, under the Databricks SDK.
        rq.RequestException: "retryable",
        rq.BaseHTTPError: "permanent",
        rq.HTTPError: "status",
        rq.ConnectionError: "retryable",
        rq.ProxyError: "retryable",
        rq.SSLError: "permanent",
        rq.Timeout: "retryable",
        rq.ConnectTimeout: "retryable",
        rq.ReadTimeout: "retryable",
        rq.URLRequired: "permanent",
        rq.TooManyRedirects: "permanent",
        rq.MissingSchema: "permanent",
        rq.InvalidSchema: "permanent",
        rq.InvalidURL: "permanent",
        rq.InvalidHeader: "permanent",
        rq.InvalidProxyURL: "permanent",
        rq.InvalidJSONError: "permanent",
        rq.JSONDecodeError: "permanent",
        rq.CompatJSONDecodeError: "permanent",
        rq.ChunkedEncodingError: "retryable",
        rq.ContentDecodingError: "permanent",
        rq.StreamConsumedError: "permanent",
        rq.RetryError: "retryable",
        rq.UnrewindableBodyError: "permanent",
        # azure-core, under azure-mgmt-datafactory and azure-synapse-artifacts.
        az.AzureError: "permanent",
        az.ServiceRequestError: "retryable",
        az.ServiceResponseError: "retryable",
        az.ServiceRequestTimeoutError: "retryable",
        az.ServiceResponseTimeoutError: "retryable",
        az.HttpResponseError: "status",
        az.ODataV4Error: "status",
        az.ResourceExistsError: "status",
        az.ResourceNotFoundError: "status",
        az.ResourceModifiedError: "status",
        az.ResourceNotModifiedError: "status",
        az.ClientAuthenticationError: "permanent",
        az.DecodeError: "permanent",
        az.IncompleteReadError: "retryable",
        az.TooManyRedirectsError: "permanent",
        az.StreamConsumedError: "permanent",
        az.StreamClosedError: "permanent",
        az.ResponseNotReadError: "permanent",
        az.SerializationError: "permanent",
        az.DeserializationError: "permanent",
        azid.CredentialUnavailableError: "permanent",
        azid.AuthenticationRequiredError: "permanent",
        # httpx, under notify and ticket.
        httpx.HTTPError: "permanent",
        httpx.RequestError: "retryable",
        httpx.TransportError: "retryable",
        httpx.TimeoutException: "retryable",
        httpx.ConnectTimeout: "retryable",
        httpx.ReadTimeout: "retryable",
        httpx.WriteTimeout: "retryable",
        httpx.PoolTimeout: "retryable",
        httpx.NetworkError: "retryable",
        httpx.ConnectError: "retryable",
        httpx.ReadError: "retryable",
        httpx.WriteError: "retryable",
        httpx.CloseError: "retryable",
        httpx.ProtocolError: "retryable",
        httpx.LocalProtocolError: "permanent",
        httpx.RemoteProtocolError: "retryable",
        httpx.ProxyError: "retryable",
        httpx.UnsupportedProtocol: "permanent",
        httpx.DecodingError: "permanent",
        httpx.TooManyRedirects: "permanent",
        httpx.HTTPStatusError: "status",
        httpx.InvalidURL: "permanent",
        httpx.CookieConflict: "permanent",
        httpx.StreamError: "permanent",
        httpx.StreamConsumed: "permanent",
        httpx.StreamClosed: "permanent",
        httpx.ResponseNotRead: "permanent",
        httpx.RequestNotRead: "permanent",
    }
    return MappingProxyType(table)


@cache
def _dbx_status() -> Mapping[type[BaseException], int]:
    from databricks.sdk import errors as dbx

    return MappingProxyType({cls: status for status, cls in dbx.STATUS_CODE_MAPPING.items()})


@cache
def foreign() -> tuple[type[BaseException], ...]:
    """The roots that :func:`cloud_call` catches; nothing else is swallowed.

    A function (cached) so that the SDKs load on first use; ``except foreign() as exc``
    evaluates it only when an exception is being matched.
    """
    import azure.core.exceptions as az
    import azure.identity as azid
    import requests.exceptions as rq
    from databricks.sdk import errors as dbx

    return (
        dbx.DatabricksError, TimeoutError, rq.RequestException, az.AzureError,
        azid.CredentialUnavailableError, azid.AuthenticationRequiredError, httpx.HTTPError,
        httpx.InvalidURL, httpx.CookieConflict, httpx.StreamError,
    )


_URL = compile_pattern(r"\b(https?://[^/\s'\"]+)[^\s'\"]*")


def safe_text(text: str, limit: int = 300) -> str:
    """``text`` redacted, URLs cut to their host, on one line, at most ``limit`` characters.

    An SDK's error can quote a run's whole error output: only its first ``TEXT_LIMIT``
    characters are read."""
    text = _URL.sub(r"\1/…", redact_text(text[:TEXT_LIMIT]))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def verdict_of(cls: type[BaseException]) -> Verdict | None:
    """The verdict of ``cls`` or of its nearest ancestor in :func:`verdicts`."""
    table = verdicts()
    for klass in cls.__mro__:
        if klass in table:
            return table[klass]
    return None


def retryable_status(status: int) -> bool:
    """408, 429 and 5xx are worth another try; any other status is not."""
    return status in (408, 429) or 500 <= status <= 599


def _retry_after(exc: BaseException) -> float | None:
    secs = getattr(exc, "retry_after_secs", None)
    if isinstance(secs, int | float):
        return float(secs)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the worker's own backoff applies


def _status(exc: BaseException) -> tuple[int | None, str]:
    status = getattr(exc, "status_code", None)
    reason = getattr(exc, "reason", None) or ""
    response = getattr(exc, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
        reason = getattr(response, "reason_phrase", None) or getattr(response, "reason", "")
    return (status if isinstance(status, int) else None), str(reason or "")


def _is_databricks_error(exc: BaseException) -> bool:
    # An SDK that was never imported raised nothing: do not import it to find out.
    errors = sys.modules.get("databricks.sdk.errors")
    return errors is not None and isinstance(exc, errors.DatabricksError)


def _is_azure_response_error(exc: BaseException) -> bool:
    exceptions = sys.modules.get("azure.core.exceptions")
    return exceptions is not None and isinstance(exc, exceptions.HttpResponseError)


def _describe(exc: BaseException, status: int | None, reason: str) -> str:
    if _is_databricks_error(exc):
        code = getattr(exc, "error_code", None) or type(exc).__name__
        # On 401/403 the SDK appends its whole configuration ("Config: host=..."): cut it.
        text = str(exc).split(". Config: ")[0]
        statuses = _dbx_status()
        http = next((statuses[k] for k in type(exc).__mro__ if k in statuses), None)
        return f"{f'{http} ' if http else ''}{code}: {safe_text(text)}"
    if isinstance(exc, TimeoutError) and exc.__cause__ is not None:
        return f"gave up retrying: {_describe(exc.__cause__, *_status(exc.__cause__))}"
    if status is not None:
        text = f"{status} {reason}".strip()
        detail = getattr(exc, "message", None)
        if _is_azure_response_error(exc) and exc.error is not None and exc.error.message:
            detail = f"{exc.error.code}: {exc.error.message}"
        elif not isinstance(detail, str) or isinstance(exc, httpx.HTTPStatusError):
            detail = None
        return f"{text} ({safe_text(detail)})" if detail and detail != reason else text
    return f"{type(exc).__name__}: {safe_text(str(exc))}" if str(exc) else type(exc).__name__


def map_error(exc: BaseException, where: str) -> ActionError:
    """Our error for the SDK's ``exc``; raise it ``from exc``. ``where`` names the call."""
    cause = exc.__cause__ if isinstance(exc, TimeoutError) and exc.__cause__ else exc
    verdict = verdict_of(type(exc)) or "permanent"
    status, reason = _status(cause)
    if verdict == "status":
        verdict = "retryable" if status is not None and retryable_status(status) else "permanent"
    message = f"{where}: {_describe(exc, status, reason)}"
    if verdict == "permanent":
        return PermanentActionError(message)
    after = _retry_after(cause)
    if after is not None:
        return RetryAfterError(f"{message} (retry after {after:g} s)", after)
    return RetryableActionError(message)


@contextmanager
def cloud_call(where: str) -> Iterator[None]:
    """Run an SDK call, turning its exceptions into ours (chained) with ``where`` in front."""
    try:
        yield
    except foreign() as exc:
        raise map_error(exc, where) from exc
