"""Event-supplied text in a channel's markup: marked where it enters a message, escaped for the
channel where it leaves.

Whoever can make a pipeline fail or post a webhook writes resource names, messages and
attributes; placed verbatim into Slack mrkdwn or a Teams card, ``<!channel>`` pages a whole
channel and ``<https://evil|Open incident>`` is a link in Remediator's name. The playbook
author's own text must stay markup (their links must work), so the two are told apart: every
value a template's ``{{ }}`` puts in (and every event field a message is built from) is
wrapped in two private-use characters (:func:`untrusted`); the literal text around it is the
author's. When the message is shaped for a channel, the wrapped spans are cleaned (control
and invisible format characters removed, line breaks made spaces) and escaped for that
channel (:func:`slack`, :func:`teams`), and the marks dropped; plain-text destinations (JSON
webhooks, tickets) get :func:`plain`. Every result is bounded by a length given by the caller.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["CLOSE", "OPEN", "plain", "plain_data", "slack", "strip", "strip_data", "teams",
           "untrusted"]

OPEN = "\ue000"
CLOSE = "\ue001"
"""Private-use characters around an untrusted span; removed from every value first (private
use, like control and format characters, never survives cleaning), so a value cannot forge
them."""

_MARKS = str.maketrans("", "", OPEN + CLOSE)
_DROP = frozenset({"Cc", "Cf", "Co", "Cs"})  # control, format (zero-width, bidi), private use,
#                                               and surrogate characters
_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_SLACK = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_TEAMS = frozenset("\\*`~[]()<>")
_TEAMS_LINE_START = frozenset("#-+=|")


def untrusted(value: object) -> str:
    """``value`` as text marked as event-supplied (Jinja's ``finalize`` for every ``{{ }}``)."""
    return OPEN + str(value).translate(_MARKS) + CLOSE


def strip(text: str) -> str:
    """``text`` without marks: the author's text and the values as they were."""
    return text.translate(_MARKS)


def strip_data(value: Any) -> Any:
    """:func:`strip` on every string inside ``value`` (dicts and lists)."""
    if isinstance(value, str):
        return strip(value)
    if isinstance(value, dict):
        return {k: strip_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strip_data(v) for v in value]
    return value


def _spans(text: str) -> Iterator[tuple[bool, str]]:
    """(trusted, piece) in order; marks may nest (a marked value rendered again); a mark
    left open makes the rest untrusted, a stray close mark is dropped."""
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch not in (OPEN, CLOSE):
            continue
        if i > start:
            yield depth == 0, text[start:i]
        depth = depth + 1 if ch == OPEN else max(depth - 1, 0)
        start = i + 1
    if start < len(text):
        yield depth == 0, text[start:]


def _kept(ch: str, *, newlines: bool) -> str:
    """What cleaning makes of one character: itself, a line break or space, or nothing."""
    if ch in _BREAKS:
        return "\n" if newlines else " "
    if ch == "\t":
        return "\t" if newlines else " "
    return "" if unicodedata.category(ch) in _DROP else ch


Escape = Callable[[str, str, str, "str | None"], str]
"""``escape(ch, before, after, head)``: one cleaned character of an untrusted span as the
channel must see it. ``before`` is the last character output, ``after`` the next input
character, ``head`` what the span has output so far if it began a line (else None)."""


def _shape(text: str, escape: Escape, limit: int) -> str:
    """The author's text as written and the untrusted spans cleaned (one line each) and
    escaped, at most ``limit`` characters (never cutting an escape in two)."""
    out: list[str] = []
    size = 0
    for trusted, piece in _spans(text.replace("\r\n", "\n")):
        if trusted:
            take = piece[: limit - size]
            out.append(take)
            size += len(take)
            continue
        head: str | None = "" if size == 0 or out[-1].endswith("\n") else None
        for i, raw in enumerate(piece):
            ch = _kept(raw, newlines=False)
            if not ch:
                continue
            token = escape(ch, out[-1][-1:] if out else "", piece[i + 1: i + 2], head)
            if size + len(token) > limit:
                return "".join(out)
            out.append(token)
            size += len(token)
            head = head + ch if head is not None else None
        if size >= limit:
            break
    return "".join(out)


def _slack_char(ch: str, before: str, after: str, head: str | None) -> str:
    return _SLACK.get(ch, ch)


def slack(text: str, *, limit: int) -> str:
    """For Slack ``mrkdwn`` and ``plain_text``: ``&``, ``<`` and ``>`` of untrusted spans as
    Slack's entities (so ``<!channel>``, ``<@U..>``, ``<url|text>`` stay text)."""
    return _shape(text, _slack_char, limit)


def _teams_char(ch: str, before: str, after: str, head: str | None) -> str:
    if ch in _TEAMS:
        return "\\" + ch
    if ch == "_" and not (before.isalnum() and after.isalnum()):  # intraword: never emphasis
        return "\\_"
    if head is not None:  # a list or heading marker that would begin a line
        lead = head.lstrip(" ")
        if (not lead and ch in _TEAMS_LINE_START) or (lead.isdigit() and ch in ".)"):
            return "\\" + ch
    return ch


def teams(text: str, *, limit: int) -> str:
    """For a Teams Adaptive Card TextBlock or fact (CommonMark subset): markdown punctuation of
    untrusted spans backslash-escaped (emphasis, code, links, HTML and ``<at>`` mentions), and
    a list or heading marker that would begin a line."""
    return _shape(text, _teams_char, limit)


def plain(text: str, *, limit: int, newlines: bool = True) -> str:
    """For plain-text destinations (JSON webhooks, tickets): no marks, no control, format or
    private-use characters (``newlines`` keeps line breaks and tabs, else spaces), at most
    ``limit`` characters."""
    out: list[str] = []
    for raw in strip(text).replace("\r\n", "\n"):
        ch = _kept(raw, newlines=newlines)
        if ch:
            out.append(ch)
            if len(out) >= limit:
                break
    return "".join(out)


def plain_data(value: Any, *, limit: int) -> Any:
    """:func:`plain` on every string inside ``value`` (dicts and lists, keys too)."""
    if isinstance(value, str):
        return plain(value, limit=limit)
    if isinstance(value, dict):
        return {plain(str(k), limit=limit, newlines=False): plain_data(v, limit=limit)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v, limit=limit) for v in value]
    return value
