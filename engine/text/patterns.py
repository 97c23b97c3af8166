"""Every regular expression that sees event text, compiled one way: by RE2, in linear time.

Python's ``re`` backtracks, and holds the GIL while it does: ``\\w+Exception\\b`` takes
quadratic time on a long run of letters, so one webhook could stop every thread of the service
(issue 14). RE2 (``google-re2``) never backtracks: one search costs time linear in the text,
whatever the pattern, and it releases the GIL while it runs. It has no lookaround and no
backreferences: the product's patterns do without them (a capturing group and a check in
code), and a playbook pattern that needs them is refused at load, with the reason.

What reads differently from ``re``: ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII; ``$``
(without ``(?m)``) matches only at the very end of the text, not before a final newline;
``\\Z`` is written ``\\z``; ``a{,3}`` is literal text.

Each search is linear. ``sub``, ``finditer`` and ``findall`` search again from the end of each
match: the product's iterated patterns cannot look more than a few characters past the end of
their match, so their total stays linear too (playbooks only ever search once per value).
And no pattern sees more than :data:`TEXT_LIMIT` characters of an event's message.
"""

from __future__ import annotations

import functools
import re  # re: words a refused pattern's error, reads our own templates; never event text
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import re2

__all__ = [
    "SPACE", "TEXT_LIMIT", "WORD", "Match", "Pattern", "PatternError", "clip", "compile",
    "glob", "utf8",
]

TEXT_LIMIT = 65_536
"""The most characters of a text that matching and analysis look at: an event's message is
cut to this length (:func:`clip`), and a playbook ``regex`` or ``glob`` reads this much of a
value. A webhook body is at most 1 MiB (``body_limit``), so this bounds the work per value."""

SPACE = r"\t-\r\x1c-\x1f\x85\p{Z}"
"""Inside a class, the characters that ``str.isspace()`` (and ``re``'s ``\\s``) calls spaces:
``[{SPACE}]`` where the Unicode meaning of ``\\s`` matters (RE2's ``\\s`` is ASCII)."""
WORD = r"\pL\pN_"
"""Inside a class, ``re``'s Unicode ``\\w``: letters, digits and numbers, and "_"."""

Match = Any
"""A match: ``group``, ``groupdict``, ``start``, ``end``, ``span`` and ``m["name"]``, as in
``re`` (the binding's own class, or :class:`_AsciiMatch` for ASCII text)."""


class PatternError(ValueError):
    """A pattern that cannot be compiled; the message says why, for a playbook author."""


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _options(ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is our error to report, not RE2's stderr
    options.case_sensitive = not ignore_case
    return options


def _encodable(text: str) -> str:
    """``text``, with lone surrogates (which UTF-8 cannot carry) replaced by "?"."""
    return text.encode("utf-8", "replace").decode("utf-8")


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, for :meth:`Pattern.scan` (lone surrogates become "?")."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


_UNANCHORED = re2._Anchor.UNANCHORED


class Pattern:
    """A compiled RE2 pattern: the only kind of pattern that runs on event text."""

    __slots__ = ("_raw", "_re", "_templates", "groupindex", "groups", "pattern")

    def __init__(self, pattern: str, *, ignore_case: bool = False) -> None:
        try:
            self._re = re2.compile(pattern, _options(ignore_case))
        except re2.error as exc:
            raise PatternError(_explain(pattern, exc)) from None
        self._raw = self._re._regexp
        self.pattern = pattern
        self.groupindex: dict[str, int] = self._re.groupindex
        self.groups: int = self._re.groups
        self._templates: dict[str, tuple[bytes | int, ...]] = {}

    def __repr__(self) -> str:
        return f"patterns.compile({self.pattern!r})"

    def search(self, text: str) -> Match | None:
        """The leftmost match anywhere in ``text``, or None."""
        if text.isascii():  # most text: offsets in bytes are offsets in characters
            data = text.encode("ascii")
            spans = self._raw.Match(_UNANCHORED, data, 0, len(data))
            return _AsciiMatch(text, spans, self.groupindex) if spans[0][0] >= 0 else None
        try:
            return self._re.search(text)
        except UnicodeEncodeError:
            return self._re.search(_encodable(text))

    def match(self, text: str) -> Match | None:
        """A match at the start of ``text``, or None."""
        try:
            return self._re.match(text)
        except UnicodeEncodeError:
            return self._re.match(_encodable(text))

    def fullmatch(self, text: str) -> Match | None:
        """A match of the whole of ``text``, or None."""
        try:
            return self._re.fullmatch(text)
        except UnicodeEncodeError:
            return self._re.fullmatch(_encodable(text))

    def finditer(self, text: str) -> Iterator[Match]:
        """Every non-overlapping match, left to right."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _encodable(text)
        return self._re.finditer(text)

    def findall(self, text: str) -> list[Any]:
        """As ``re``: the matches, or their one group, or tuples of their groups."""
        if not text.isascii():
            return self._re.findall(_encodable(text))
        found: list[Any] = []
        for spans in self._all_spans(text.encode("ascii")):
            if self.groups == 0:
                found.append(text[spans[0][0]:spans[0][1]])
                continue
            items = tuple("" if a < 0 else text[a:b] for a, b in spans[1:])
            found.append(items[0] if self.groups == 1 else items)
        return found

    def _all_spans(self, data: bytes) -> Iterator[list[tuple[int, int]]]:
        """The spans of every non-overlapping match in ``data``, as the binding finds them."""
        match_at = self._raw.Match
        size = len(data)
        pos = 0
        while True:
            spans = match_at(_UNANCHORED, data, pos, size)
            start, stop = spans[0]
            if start < 0:
                return
            yield spans
            if stop == pos:  # an empty match: step over one character
                if pos >= size:
                    return
                pos += 1
                while pos < size and data[pos] & 0xC0 == 0x80:
                    pos += 1
            else:
                pos = stop

    def scan(self, data: bytes, pos: int = 0) -> list[tuple[int, int]] | None:
        """The leftmost match in UTF-8 ``data`` (:func:`utf8`) at or after byte ``pos``: the
        byte spans of the match and of each group ((-1, -1) where a group took no part), or
        None. ``^`` and ``\\b`` still see what lies before ``pos``. For loops that need more
        than ``sub``: each call costs time linear in what it reads, and the text is encoded
        once, where ``search`` would encode it again per call."""
        spans = self._raw.Match(_UNANCHORED, data, pos, len(data))
        return spans if spans[0][0] >= 0 else None

    def sub(self, repl: str | Callable[[Match], str], text: str) -> str:
        """``text`` with every match replaced by ``repl``: a function of the match, or a
        template where ``\\1``..``\\9`` and ``\\g<name>`` stand for groups."""
        if callable(repl):
            pieces: list[str] = []
            end = 0
            for m in self.finditer(text):
                start, stop = m.span()
                pieces.append(text[end:start])
                pieces.append(repl(m))
                end = stop
            if not pieces:
                return text
            pieces.append(text[end:])
            return "".join(pieces)
        template = self._templates.get(repl)
        if template is None:
            template = self._templates[repl] = _template(repl, self.groupindex, self.groups)
        return self._sub_template(template, text)

    def _sub_template(self, template: tuple[bytes | int, ...], text: str) -> str:
        # On the UTF-8 bytes with the binding's own matcher: this runs on every webhook
        # (redaction, fingerprints), and the generic path costs ~5x more per match.
        data = utf8(text)
        last = 0
        out: list[bytes] = []
        for spans in self._all_spans(data):
            start, stop = spans[0]
            out.append(data[last:start])
            for piece in template:
                if piece.__class__ is int:
                    a, b = spans[piece]  # type: ignore[index]
                    if a >= 0:
                        out.append(data[a:b])
                else:
                    out.append(piece)  # type: ignore[arg-type]
            last = stop
        if not out:
            return text
        out.append(data[last:])
        return b"".join(out).decode("utf-8")


class _AsciiMatch:
    """A match in ASCII text, as ``re``'s reads: ``m[0]``, ``m["name"]``, ``group``,
    ``groupdict``, ``start``, ``end``, ``span``."""

    __slots__ = ("_names", "_spans", "_text")

    def __init__(self, text: str, spans: list[tuple[int, int]], names: dict[str, int]) -> None:
        self._text, self._spans, self._names = text, spans, names

    def __getitem__(self, group: int | str) -> str | None:
        a, b = self._spans[self._names[group] if isinstance(group, str) else group]
        return None if a < 0 else self._text[a:b]

    def group(self, *groups: int | str) -> Any:
        if len(groups) <= 1:
            return self[groups[0] if groups else 0]
        return tuple(self[g] for g in groups)

    def groups(self) -> tuple[str | None, ...]:
        return tuple(self[i] for i in range(1, len(self._spans)))

    def groupdict(self) -> dict[str, str | None]:
        return {name: self[index] for name, index in self._names.items()}

    def start(self, group: int = 0) -> int:
        return self._spans[group][0]

    def end(self, group: int = 0) -> int:
        return self._spans[group][1]

    def span(self, group: int = 0) -> tuple[int, int]:
        return self._spans[group]


_GROUP_REF = re.compile(r"\\(?:(\d)|g<(\w+)>)")  # re: on our own replacement templates only


def _template(repl: str, groupindex: dict[str, int], groups: int) -> tuple[bytes | int, ...]:
    pieces: list[bytes | int] = []
    end = 0
    for ref in _GROUP_REF.finditer(repl):
        pieces.append(repl[end:ref.start()].encode("utf-8"))
        name = ref[1] or ref[2]
        index = int(name) if name.isdigit() else groupindex[name]
        if not 0 <= index <= groups:
            raise ValueError(f"invalid group reference {ref[0]!r} in {repl!r}")
        pieces.append(index)
        end = ref.end()
    if "\\" in repl[end:] or any(isinstance(p, bytes) and b"\\" in p for p in pieces):
        raise ValueError(f"unsupported escape in replacement {repl!r}")
    pieces.append(repl[end:].encode("utf-8"))
    return tuple(p for p in pieces if p != b"")


def compile(pattern: str, *, ignore_case: bool = False) -> Pattern:
    """Compile ``pattern`` with RE2; :class:`PatternError` says why one cannot be."""
    return Pattern(pattern, ignore_case=ignore_case)


# What RE2 refuses because it needs backtracking, by the start of RE2's own error text.
_BACKTRACKING: tuple[tuple[str, str], ...] = (
    ("invalid perl operator: (?<!", "negative lookbehind `(?<!`"),
    ("invalid perl operator: (?<=", "lookbehind `(?<=`"),
    ("invalid perl operator: (?=", "lookahead `(?=`"),
    ("invalid perl operator: (?!", "negative lookahead `(?!`"),
    ("invalid perl operator: (?P=", "backreference `(?P=name)`"),
    ("invalid perl operator: (?>", "atomic group `(?>`"),
    ("invalid perl operator: (?(", "conditional `(?(`"),
    ("bad repetition operator: *+", "possessive `*+`"),
    ("bad repetition operator: ++", "possessive `++`"),
    ("bad repetition operator: ?+", "possessive `?+`"),
)


def _explain(pattern: str, error: re2.error) -> str:
    """Why RE2 refused ``pattern``: a construct that needs backtracking, by name; else the
    message ``re`` gives for it (authors know those); else RE2's own, with a hint."""
    raw = error.args[0] if error.args else ""
    reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if reason.startswith("invalid perl operator: (?P") and "(?P=" in pattern:
        reason = "invalid perl operator: (?P="
    if reason.startswith("invalid escape sequence: \\") and reason[-1:].isdigit():
        return (f"backreference `{reason.rpartition(' ')[2]}` is not supported: "
                "patterns run in linear time (RE2 syntax)")
    for prefix, construct in _BACKTRACKING:
        if reason.startswith(prefix):
            return f"{construct} is not supported: patterns run in linear time (RE2 syntax)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            re.compile(pattern)
        except re.error as exc:
            return str(exc)
    if reason.startswith("invalid repetition size"):
        return (f"repeat count {reason.partition(': ')[2]} is too large: RE2 allows at most "
                "1000, nested repeats multiplied (RE2 syntax)")
    if reason == "invalid escape sequence: \\Z":
        return "`\\Z` is not supported: write `\\z` (RE2 syntax)"
    if reason == "invalid perl operator: (?#":
        return "comments `(?#...)` are not supported (RE2 syntax)"
    if reason.startswith("invalid perl operator: (?"):
        return (f"`(?{reason.rpartition('(?')[2]}` is not supported: the inline flags are i, m, "
                "s and U (RE2 syntax)")
    if reason == "pattern too large - compile failed":
        return "the pattern is too large (RE2 syntax)"
    return f"{reason} (RE2 syntax)"


@functools.lru_cache(maxsize=1024)
def glob(pattern: str) -> Pattern:
    """``fnmatch``'s syntax (``*``, ``?``, ``[seq]``, ``[!seq]``), case-sensitive, matched
    against the whole text with ``fullmatch``. ``fnmatch.translate`` emits lookaheads and
    backreferences, which RE2 lacks; this translation means the same and runs in linear time."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = _class_end(pattern, i)
            if end < 0:
                out.append(re2.escape(c))
            else:
                out.append(_glob_class(pattern[i:end]))
                i = end + 1
        else:
            out.append(re2.escape(c))
    return compile("(?s)" + "".join(out))


def _class_end(pattern: str, i: int) -> int:
    """The index of the ``]`` that closes a set opened just before ``i``, or -1 (as fnmatch)."""
    j = i
    if j < len(pattern) and pattern[j] == "!":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    end = pattern.find("]", j)
    return end


def _glob_class(stuff: str) -> str:
    """The RE2 class for fnmatch's set ``[stuff]``, read exactly as ``fnmatch.translate`` reads
    it: a leading ``!`` negates, ``-`` between two characters is a range (at most one range per
    hyphen, a reversed range is empty), any other character is itself."""
    negate = stuff.startswith("!")
    if "-" not in stuff:
        chunks = [stuff]
    else:
        chunks = []
        i, k = 0, (2 if negate else 1)
        while True:
            k = stuff.find("-", k)
            if k < 0:
                break
            chunks.append(stuff[i:k])
            i, k = k + 1, k + 3
        if stuff[i:]:
            chunks.append(stuff[i:])
        else:
            chunks[-1] += "-"
        for k in range(len(chunks) - 1, 0, -1):
            if chunks[k - 1][-1] > chunks[k][0]:
                chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
                del chunks[k]
    first = chunks[0]
    if negate:
        chunks[0] = first[1:]
    members: list[str] = []
    for k, chunk in enumerate(chunks):
        inner = chunk
        if k > 0:  # its first character ends the range begun by the last of the previous one
            members.append(f"{_hex(chunks[k - 1][-1])}-{_hex(chunk[0])}")
            inner = inner[1:]
        if k < len(chunks) - 1:
            inner = inner[:-1]
        members.extend(_hex(ch) for ch in inner)
    if not members:
        return "." if negate else "[^\\x00-\\x{10FFFF}]"
    return ("[^" if negate else "[") + "".join(members) + "]"


def _hex(char: str) -> str:
    return f"\\x{{{ord(char):x}}}"
