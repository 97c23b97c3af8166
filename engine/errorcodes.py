"""What ADF (and Synapse pipeline) error codes and messages hide, made explicit.

Two wrappers hide the real failure:

- a Copy activity's ``2200`` ("Failure happened on 'Source' side. ErrorCode=<inner>,...")
  carries the real code inside its message;
- a pipeline run's own message reads ``Operation on target <activity> failed: <inner>``
  and names the activity that failed.

The receivers use these helpers on the alert as received, and enrichment uses them again
on what ``queryActivityruns`` returns, so both agree on what "the most specific code" is.
Pure functions over strings: no I/O, nothing raised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

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
_INNER_CODE = re.compile(r"\bErrorCode\s*(?:=|:)\s*'?([A-Za-z][\w.\-]*)")
_TARGET_FAILURE = re.compile(r"Operation on target (.+?) failed: ?(.*)", re.DOTALL)

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
    inner = _INNER_CODE.findall(message)
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
    match = _TARGET_FAILURE.match(message.strip())
    if match is None or not match.group(1).strip():
        return None
    return TargetFailure(match.group(1).strip(), match.group(2).strip())


def innermost_target_failure(message: str) -> TargetFailure | None:
    """Follow nested ``Operation on target`` messages down to the activity that failed.

    An Execute Pipeline or ForEach activity fails because an activity inside it did, and
    ADF nests the messages (``Operation on target ForEach1 failed: ... Operation on target
    Copy1 failed: <inner>``): the last activity named is the one to rerun from.
    """
    found = split_target_failure(message)
    while found is not None:
        nested = _TARGET_FAILURE.search(found.inner)
        if nested is None or not nested.group(1).strip():
            break
        found = TargetFailure(nested.group(1).strip(), nested.group(2).strip())
    return found


def canonical_code(code: str) -> str:
    """Microsoft's spelling of a code known under another one; other codes unchanged."""
    return CODE_ALIASES.get(code, code)
