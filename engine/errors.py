"""The whole exception tree of Remediator.

::

    RemediatorError
    ├── ConfigError            a setting is missing or wrong; the message names it
    │   └── PlaybookError      a playbook does not load; carries every problem with file:line:col
    ├── PayloadError           a sender's body cannot be turned into events
    │   ├── MalformedPayload   not JSON at all (HTTP 400)
    │   └── UnknownSchema      JSON, but of no shape we know (HTTP 422)
    ├── StorageError           the database could not take the write (HTTP 503; senders retry)
    │   └── TransactionConflict    the server rolled the transaction back (deadlock): run it again
    ├── InvalidTransition      an incident move that its lifecycle does not have (a bug)
    ├── UnknownAuditKind       an audit record of a kind the log does not have (a bug)
    └── ActionError            a remediation call failed
        ├── RetryableActionError   worth trying again later (timeouts, 429, 5xx)
        └── PermanentActionError   trying again will not help (4xx, unknown ids)

Domain errors carry no HTTP codes: the receivers map them at their boundary.
"""

from __future__ import annotations

__all__ = [
    "ActionError",
    "ConfigError",
    "InvalidTransition",
    "MalformedPayload",
    "PayloadError",
    "PermanentActionError",
    "PlaybookError",
    "RemediatorError",
    "RetryableActionError",
    "StorageError",
    "TransactionConflict",
    "UnknownAuditKind",
    "UnknownSchema",
]


class RemediatorError(Exception):
    """Root of every error that Remediator raises on purpose."""


class ConfigError(RemediatorError):
    """A setting is missing or invalid; the message names the setting and what to do."""


class PlaybookError(ConfigError):
    """A playbook set does not load.

    ``problems`` holds every problem found, each already formatted as
    ``file:line:col: message``, so that one run reports them all.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems) or "invalid playbooks")


class PayloadError(RemediatorError):
    """A sender's body cannot be turned into events. ``path`` says where, if known."""

    def __init__(self, message: str, path: str = "$") -> None:
        self.message = message
        self.path = path
        super().__init__(f"{message} - at `{path}`" if path != "$" else message)


class MalformedPayload(PayloadError):
    """The body is not valid JSON (or not UTF-8)."""


class UnknownSchema(PayloadError):
    """The body is JSON but matches no schema that any receiver knows."""


class StorageError(RemediatorError):
    """The database could not take a write: locked, full or gone. Callers may retry."""


class TransactionConflict(StorageError):
    """The server chose this transaction as the loser of a conflict with another one (a
    deadlock, a serialization failure): the whole transaction is rolled back, and running it
    again from its start is safe (a batch rolls back instead of committing what it wrote)."""


class InvalidTransition(RemediatorError):
    """An incident was asked to move from a state to one its lifecycle does not lead to
    (engine/lifecycle.py, ``TRANSITIONS``); nothing was changed. A bug, never the input's
    fault: the message names the incident, both states and the states that lead there."""


class UnknownAuditKind(RemediatorError):
    """An audit record of a kind the log's vocabulary does not have (engine/audit.py,
    ``AuditKind``); nothing was written. A bug: every kind is declared before it is used."""


class ActionError(RemediatorError):
    """A remediation action failed; ``retryable`` tells the worker whether to try again."""

    retryable = False


class RetryableActionError(ActionError):
    """A failure that may pass: a timeout, 429, 5xx, a connection reset."""

    retryable = True


class PermanentActionError(ActionError):
    """A failure that will not pass by itself: 4xx, an unknown run or cluster."""
