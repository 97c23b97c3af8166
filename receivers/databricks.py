"""Databricks payloads to ``ErrorEvent`` values: pure functions, no HTTP, no SDK.

Three shapes reach us (see docs/SENDERS.md, "Databricks"):

- the job and task notifications that a Databricks webhook destination posts
  (``event_type: jobs.on_failure`` and friends). They carry ids and names only, never the
  error nor a time: ``error_code`` stays empty and ``message`` says what happened in words,
  until enrichment (``jobs/runs/get`` + ``get-output``) fills in the real error, and the
  intake stamps the time of receipt as ``occurred_at``;
- the in-house shapes that the existing setup posts (``event: job.failure``,
  ``cluster.terminated``, ``cluster.failed_to_start``) with the run state or the cluster's
  ``termination_reason`` inline;
- pages of ``POST /api/2.1/clusters/events``, which the cluster-events poller fetches
  because Databricks cannot push cluster events.

Ids arrive as numbers or strings and are always stored as strings. Unknown keys are
ignored everywhere (senders add fields); only what makes an event meaningless is refused,
with an ``UnknownSchema`` that names the field. Nothing but ``PayloadError`` subclasses
ever escapes, whatever the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import msgspec

from engine.errors import UnknownSchema
from engine.events import ErrorEvent, Status
from receivers._json import decode_bytes, kind_of

__all__ = ["WARNING_SEVERITY", "parse", "parse_cluster_events_page"]

SOURCE: Final = "databricks"

WARNING_SEVERITY: Final = 3
"""A slow run or a growing stream backlog: someone must see it (firing), nobody is woken
(Azure Monitor's Sev3 on the same 0 (critical) .. 4 scale)."""

# Real notification types: their status, severity and how the default message says what
# happened. A threshold notification is a warning about a run still going: firing, so that a
# rule can tell someone, with a low severity.
_JOB_EVENTS: Final[Mapping[str, tuple[Status, int | None, str]]] = MappingProxyType({
    "jobs.on_start": ("info", None, "started"),
    "jobs.on_success": ("info", None, "succeeded"),
    "jobs.on_failure": ("firing", None, "failed"),
    "jobs.on_duration_warning_threshold_exceeded": (
        "firing", WARNING_SEVERITY, "exceeded its duration warning threshold"
    ),
    "jobs.on_streaming_backlog_exceeded": (
        "firing", WARNING_SEVERITY, "exceeded its streaming backlog threshold"
    ),
})
# In-house cluster events and the verb of their default message.
_CLUSTER_EVENTS: Final[Mapping[str, str]] = MappingProxyType({
    "cluster.terminated": "terminated",
    "cluster.failed_to_start": "failed to start",
})
_IN_HOUSE_JOB_EVENT: Final = "job.failure"
_KNOWN_EVENTS: Final = (*_JOB_EVENTS, _IN_HOUSE_JOB_EVENT, *_CLUSTER_EVENTS)

# Parameters of a TerminationReason that hold the error's own words, most telling first.
_ERROR_MESSAGE_PARAMETERS: Final = (
    "databricks_error_message", "azure_error_message", "aws_error_message", "gcp_error_message",
)
# Parameters that hold a cloud's own error code, kept in ``error_codes`` after the main code.
_ERROR_CODE_PARAMETERS: Final = ("azure_error_code", "aws_api_error_code", "gcp_error_code")

_MISSING: Final = object()


def parse(body: bytes | bytearray | memoryview | str | dict[str, Any]) -> list[ErrorEvent]:
    """Turn one Databricks webhook body into its event (a list of one).

    ``body`` is the raw request body (bytes or text, decoded here) or an already decoded
    JSON value. Raises ``MalformedPayload`` when the bytes are not UTF-8 JSON and
    ``UnknownSchema`` (with ``path``) for JSON of no known shape; never anything else.
    Every event carries its fingerprint, ``id`` "" (the store assigns ids) and source
    ``databricks``.
    """
    data = _decode(body)
    if not isinstance(data, dict):
        raise UnknownSchema(f"a Databricks payload must be a JSON object, got {kind_of(data)}")
    root = _Node(data, "")
    # The in-house shapes carry `event` (and a copy in `event_type`); real ones only
    # `event_type`. `event` wins when both are there.
    key = "event" if data.get("event") is not None else "event_type"
    name = root.text(key, required=True)
    if name in _JOB_EVENTS:
        event = _job_notification(root, name)
    elif name == _IN_HOUSE_JOB_EVENT:
        event = _in_house_job_failure(root)
    elif name in _CLUSTER_EVENTS:
        event = _in_house_cluster(root, name)
    else:
        raise UnknownSchema(
            f"unknown {key} {_quote(name)}; known: {', '.join(_KNOWN_EVENTS)}", root.at(key)
        )
    return [_finish(event)]


def parse_cluster_events_page(
    page: dict[str, Any], *, cluster_name: str = "", workspace: str = ""
) -> list[ErrorEvent]:
    """Turn a page of ``POST /api/2.1/clusters/events`` into cluster termination events.

    Each ``TERMINATING`` event with ``details.reason`` becomes a firing ``cluster`` event
    (even a ``SUCCESS`` type such as ``INACTIVITY``: playbooks decide what it means); every
    other event type is ignored. ``cluster_name`` names the resource (the API's events carry
    only the id) and ``workspace`` lands in ``attributes.workspace``. The dedup key is
    ``dbx-cluster:<cluster_id>:<timestamp>``, so polling overlapping windows is harmless.
    A page of the wrong shape raises ``UnknownSchema`` with the path of the bad field.
    """
    if not isinstance(page, dict):
        raise UnknownSchema(f"a cluster events page must be a JSON object, got {kind_of(page)}")
    # The API leaves `events` out of an empty page.
    entries = _Node(page, "").get("events", list, default=[])
    events: list[ErrorEvent] = []
    for index, entry in enumerate(entries):
        path = f"events[{index}]"
        if not isinstance(entry, dict):
            raise UnknownSchema(
                f"`{path}` must be an object, got {kind_of(entry)}", f"$.{path}"
            )
        node = _Node(entry, path)
        if node.text("type") != "TERMINATING":
            continue
        details = node.child("details")
        reason = details.child("reason") if details is not None else None
        if reason is None:
            continue
        cluster_id = node.text("cluster_id", required=True)
        millis, occurred_at = node.timestamp("timestamp")
        events.append(_finish(_termination(
            reason,
            cluster_id=cluster_id,
            name=cluster_name,
            verb="terminated",
            message="",
            occurred_at=occurred_at,
            dedup_key=f"dbx-cluster:{cluster_id}:{millis}",
            attributes={"event_type": "TERMINATING", "workspace": workspace},
        )))
    return events


def _job_notification(root: _Node, event_type: str) -> ErrorEvent:
    """A real job or task notification: ids and names only, the error comes later."""
    status, severity, verb = _JOB_EVENTS[event_type]
    run = root.child("run", required=True)
    job = root.child("job", required=True)
    run_id = run.ident("run_id", required=True)
    job_id = job.ident("job_id", required=True)
    job_name = job.text("name")
    label = job_name or job_id
    attributes: dict[str, Any] = {
        "event_type": event_type,
        "job_id": job_id,
        "workspace_id": root.ident("workspace_id"),
    }
    task = root.child("task")
    if task is None:
        kind, subject, dedup_key = "job_run", f"Job {label}", f"dbx:{event_type}:{run_id}"
    else:
        task_key = task.text("task_key", required=True)
        kind, subject = "task_run", f"Task {task_key} of job {label}"
        dedup_key = f"dbx:{event_type}:{run_id}:{task_key}"
        attributes["task_key"] = task_key
        attributes["parent_run_id"] = run.ident("parent_run_id")
    return ErrorEvent(
        source=SOURCE,
        kind=kind,
        status=status,
        dedup_key=dedup_key,
        resource=job_name or f"job {job_id}",
        resource_id=job_id,
        run_id=run_id,
        message=f"{subject} run {run_id} {verb}",
        severity=severity,
        attributes=attributes,
    )


def _in_house_job_failure(root: _Node) -> ErrorEvent:
    """The in-house ``job.failure``: a ``runs/get``-like run with its state inline.

    ``message`` is ``run.state.state_message``. ``result_state`` (``FAILED``, ``TIMEDOUT``,
    ...) is a run state, not an error code, so it goes to ``attributes.result_state`` and
    ``error_code`` stays empty for enrichment to fill, unless the run also carries
    ``status.termination_details`` (as ``runs/get`` returns it): then its ``code`` and
    ``type`` are the error code and failure type, as enrichment would set them.
    """
    run = root.child("run", required=True)
    job = root.child("job", required=True)
    run_id = run.ident("run_id", required=True)
    job_id = job.ident("job_id", required=True)
    settings = job.child("settings")
    job_name = (settings.text("name") if settings is not None else "") or job.text("name")
    state = run.child("state")
    status = run.child("status")
    details = status.child("termination_details") if status is not None else None
    code = details.text("code") if details is not None else ""
    message = (
        (state.text("state_message") if state is not None else "")
        or (details.text("message") if details is not None else "")
        or f"Job {job_name or job_id} run {run_id} failed"
    )
    stamp = root.timestamp("timestamp") if root.data.get("timestamp") is not None else None
    return ErrorEvent(
        source=SOURCE,
        kind="job_run",
        status="firing",
        dedup_key=f"dbx:{_IN_HOUSE_JOB_EVENT}:{run_id}",
        resource=job_name or f"job {job_id}",
        resource_id=job_id,
        run_id=run_id,
        error_code=code,
        error_codes=(code,) if code else (),
        message=message,
        failure_type=details.text("type") if details is not None else "",
        occurred_at=stamp[1] if stamp is not None else None,
        attributes={
            "event_type": _IN_HOUSE_JOB_EVENT,
            "job_id": job_id,
            "workspace_id": root.ident("workspace_id"),
            "run_name": run.text("run_name"),
            "life_cycle_state": state.text("life_cycle_state") if state is not None else "",
            "result_state": state.text("result_state") if state is not None else "",
        },
    )


def _in_house_cluster(root: _Node, event: str) -> ErrorEvent:
    """The in-house ``cluster.terminated`` / ``cluster.failed_to_start``."""
    cluster = root.child("cluster", required=True)
    cluster_id = cluster.text("cluster_id", required=True)
    millis, occurred_at = root.timestamp("timestamp")
    reason = cluster.child("termination_reason")
    return _termination(
        reason if reason is not None else _Node({}, cluster.join("termination_reason")),
        cluster_id=cluster_id,
        name=cluster.text("cluster_name"),
        verb=_CLUSTER_EVENTS[event],
        message=cluster.text("state_message"),
        occurred_at=occurred_at,
        dedup_key=f"dbx:{event}:{cluster_id}:{millis}",
        attributes={"event_type": event, "state": cluster.text("state")},
    )


def _termination(
    reason: _Node,
    *,
    cluster_id: str,
    name: str,
    verb: str,
    message: str,
    occurred_at: datetime,
    dedup_key: str,
    attributes: dict[str, Any],
) -> ErrorEvent:
    """A cluster termination from its ``TerminationReason`` (code, type, parameters).

    Always firing: a ``SUCCESS`` termination (``INACTIVITY``) may still matter to a job
    that needs the cluster, and the playbooks, not the parser, decide that. Without a
    message from the sender, the message is the reason's own error text, or else the code
    and parameters in words.
    """
    code = reason.text("code")
    parameters = reason.get("parameters", dict, default={})
    cloud_codes = tuple(
        value for key in _ERROR_CODE_PARAMETERS
        if isinstance(value := parameters.get(key), str) and value and value != code
    )
    return ErrorEvent(
        source=SOURCE,
        kind="cluster",
        status="firing",
        dedup_key=dedup_key,
        resource=name or cluster_id,
        resource_id=cluster_id,
        error_code=code,
        error_codes=((code,) if code else ()) + cloud_codes,
        message=message
        or _reason_message(f"Cluster {name or cluster_id} {verb}", code, parameters),
        failure_type=reason.text("type"),
        occurred_at=occurred_at,
        attributes={
            **attributes,
            "cluster_id": cluster_id,
            "termination_parameters": dict(parameters),
        },
    )


def _reason_message(head: str, code: str, parameters: Mapping[str, Any]) -> str:
    """The error's own words if a parameter has them, else the code and parameters."""
    for key in _ERROR_MESSAGE_PARAMETERS:
        value = parameters.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    text = f"{head}: {code}" if code else head
    shown = ", ".join(f"{key}={value}" for key, value in parameters.items())
    return f"{text} ({shown})" if shown else text


def _finish(event: ErrorEvent) -> ErrorEvent:
    """Fingerprint the event, first making sure that JSON can carry every value in it.

    A dict handed in by a caller (rather than bytes we decoded) may hold lone surrogates or
    non-JSON values; the store would fail on them later, far from the cause.
    """
    try:
        msgspec.json.encode(event)
    except (UnicodeEncodeError, TypeError, OverflowError, RecursionError) as exc:
        raise UnknownSchema(f"the payload holds a value that JSON cannot carry: {exc}") from exc
    return event.with_fingerprint()


def _decode(body: object) -> object:
    """Bytes or text to a JSON value; anything else is taken as already decoded."""
    if isinstance(body, bytes | bytearray | memoryview | str):
        return decode_bytes(body)
    return body


def _quote(value: str) -> str:
    """A sender's value quoted for a message, cut short so that a huge one stays readable."""
    return f"'{value[:100]}...'" if len(value) > 100 else f"'{value}'"


class _Node:
    """A JSON object with its path from the root, so that every complaint says where.

    Getters treat an absent key and ``null`` alike: optional fields default, required ones
    raise ``UnknownSchema`` ("missing `run.run_id`"). A value of the wrong type always raises.
    """

    __slots__ = ("data", "path")

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def join(self, key: str) -> str:
        """The dotted path of a key of this object, as messages show it."""
        return f"{self.path}.{key}" if self.path else key

    def at(self, key: str) -> str:
        """The path of a key as ``PayloadError.path`` holds it."""
        return f"$.{self.join(key)}"

    def _raw(self, key: str, required: bool) -> object:
        value = self.data.get(key)
        if value is None and required:
            raise UnknownSchema(f"missing `{self.join(key)}`", self.at(key))
        return _MISSING if value is None else value

    def _wrong(self, key: str, expected: str, value: object) -> UnknownSchema:
        return UnknownSchema(
            f"`{self.join(key)}` must be {expected}, got {kind_of(value)}", self.at(key)
        )

    def get(self, key: str, kind: type, *, default: Any) -> Any:
        """A list or dict value, or ``default`` when absent."""
        value = self._raw(key, False)
        if value is _MISSING:
            return default
        if not isinstance(value, kind):
            raise self._wrong(key, "an array" if kind is list else "an object", value)
        return value

    def child(self, key: str, *, required: bool = False) -> _Node | None:
        """A nested object, or None when absent and optional."""
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            raise self._wrong(key, "an object", value)
        return _Node(value, self.join(key))

    def text(self, key: str, *, required: bool = False) -> str:
        """A string, stripped; "" when absent and optional; required ones must not be empty."""
        value = self._raw(key, required)
        if value is _MISSING:
            return ""
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        text = value.strip()
        if required and not text:
            raise UnknownSchema(f"`{self.join(key)}` must not be empty", self.at(key))
        return text

    def ident(self, key: str, *, required: bool = False) -> str:
        """An id that Databricks sends as a number or a string, always as a string."""
        value = self._raw(key, required)
        if value is _MISSING:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self._wrong(key, "a string or an integer", value)
        text = value.strip()
        if required and not text:
            raise UnknownSchema(f"`{self.join(key)}` must not be empty", self.at(key))
        return text

    def timestamp(self, key: str) -> tuple[int, datetime]:
        """Required milliseconds since the epoch: the integer as sent and as a UTC datetime."""
        value = self._raw(key, True)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(key, "an integer (milliseconds since the epoch)", value)
        try:
            return value, datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise UnknownSchema(
                f"`{self.join(key)}` is out of range for a time in milliseconds", self.at(key)
            ) from exc
