"""What ADF (and Synapse pipeline) error codes and messages hide, made explicit.

Two wrappers hide the real failure:

- a Copy activity's ``2200`` ("Failure happened on 'Source' side. ErrorCode=<inner>,...")
  carries the real code inside its message;
- a pipeline run's own message reads ``Operation on target <activity> failed: <inner>``
  and names the activity that failed.

The receivers use these helpers on the alert as received, and enrichment uses them again
on what ``queryActivityruns`` returns, so both agree on what "the most specific code" is.
Pure functions over strings: no I/O, nothing raised. They read the first ``TEXT_LIMIT``
characters of a message, as much as an event keeps, in time linear in that.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

from engine.text.patterns import TEXT_LIMIT
from engine.text.patterns import compile as compile_pattern

__all__ = [
    "CODE_ALIASES",
    "TargetFailure",
    "canonical_code",
    "innermost_target_failure",
    "split_target_failure",
    "unwrap_adf_error",
]

# `ErrorCode=UserErrorSourceBlobNotExist,` as ADF writes it, and `ErrorCode: 'X'` as
# storage services quote their own code deeper in the same message.
_INNER_CODE = compile_pattern(r"\bErrorCode\s*(?:=|:)\s*'?([A-Za-z][\w.\-]*)")
# `Operation on target <activity> failed: <inner>`, found with str.find (see _target_failure).
_TARGET = "Operation on target "
_FAILED = " failed:"

# Spellings seen in the wild for one and the same failure, mapped to Microsoft's code.
# The in-house test script writes `UserErrorSourceBlobNotExists` (seed/README.md).
CODE_ALIASES: Final[Mapping[str, str]] = MappingProxyType({
    "UserErrorSourceBlobNotExists": "UserErrorSourceBlobNotExist",
})


def unwrap_adf_error(code: str, message: str) -> tuple[str, tuple[str, ...]]:
    """Return the most specific error code and every code seen, the wrapper first.

    The codes named by ``ErrorCode=...`` inside ``message`` are more specific than
    ``code`` itself (``2200`` wraps ``UserErrorSourceBlobNotExist``); the first of them
    is the one ADF classified the failure by, so it wins over deeper ones (a storage
    service's ``ErrorCode: 'AuthorizationPermissionMismatch'``), which are still listed.
    Without an inner code, ``code`` is returned as it is; with neither, ``("", ())``.
    Codes are listed once each, in the order seen.
    """
    code = code.strip()
    inner = _INNER_CODE.findall(message[:TEXT_LIMIT])
    seen = tuple(dict.fromkeys(c for c in (code, *inner) if c))
    return (inner[0] if inner else code), seen


class TargetFailure(NamedTuple):
    """The activity named by ``Operation on target <activity> failed: <inner>``."""

    activity: str
    inner: str


def split_target_failure(message: str) -> TargetFailure | None:
    """Split a pipeline-level message into the failed activity and its own message.

    ``None`` when the message is not of that form (an activity's own message, say).
    Only the outermost level is split; see ``innermost_target_failure`` for nesting.
    """
    text = message[:TEXT_LIMIT].strip()
    found = _target_failure(text, 0) if text.startswith(_TARGET) else None
    return None if found is None else TargetFailure(found[0], text[found[1]:].strip())


def innermost_target_failure(message: str) -> TargetFailure | None:
    """Follow nested ``Operation on target`` messages down to the activity that failed.

    An Execute Pipeline or ForEach activity fails because an activity inside it did, and
    ADF nests the messages (``Operation on target ForEach1 failed: ... Operation on target
    Copy1 failed: <inner>``): the last activity named is the one to rerun from.
    """
    text = message[:TEXT_LIMIT].strip()
    found = _target_failure(text, 0) if text.startswith(_TARGET) else None
    if found is None:
        return None
    while (nested := _target_failure(text, text.find(_TARGET, found[1]))) is not None:
        found = nested
    return TargetFailure(found[0], text[found[1]:].strip())


def _target_failure(text: str, at: int) -> tuple[str, int] | None:
    """The activity named at ``at`` (where ``Operation on target`` begins; -1 for none) and
    where its inner message begins; None if no activity is named there.

    What the regex ``Operation on target (.+?) failed: ?(.*)`` matched there, found with
    ``find``: the first `` failed:`` after a name of one character or more. Following n
    nested levels reads the text once, forward, where a search per level read the rest of
    it again each time (quadratic in the depth).
    """
    if at < 0:
        return None
    name_at = at + len(_TARGET)
    failed = text.find(_FAILED, name_at + 1)
    if failed < 0:
        return None
    activity = text[name_at:failed].strip()
    if not activity:
        return None
    inner_at = failed + len(_FAILED)
    return activity, inner_at + 1 if text.startswith(" ", inner_at) else inner_at


def canonical_code(code: str) -> str:
    """Microsoft's spelling of a code known under another one; other codes unchanged."""
    return CODE_ALIASES.get(code, code)
