"""YAML to plain data, with the 1-based line and column of every key and value.

ruamel.yaml's round-trip loader keeps positions on its containers; we copy them into two
tables keyed by the path of the node (``("rules", 0, "match")``) and hand on plain dicts,
lists and scalars, so that nothing downstream sees ruamel's types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
)
from ruamel.yaml.scalarbool import ScalarBoolean

Path_ = tuple[str | int, ...]
Pos = tuple[int, int]

MAX_NODES = 100_000
"""Values (scalars and collections) a file may expand to, its aliases expanded: the largest
shipped playbook has under 2,000; nine anchors of ten aliases each would make 10^9."""
MAX_DEPTH = 64
"""Nesting levels a file may have (a playbook needs about ten; ruamel's composer recurses)."""


class YamlSyntaxError(Exception):
    """The text is not YAML, or YAML past a bound (aliases that expand past
    :data:`MAX_NODES`, nesting past :data:`MAX_DEPTH`); ``line``/``col`` are 1-based."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


@dataclass
class Document:
    """A parsed file: plain ``data`` and the positions of its keys and values."""

    data: Any
    keys: dict[Path_, Pos] = field(default_factory=dict)
    values: dict[Path_, Pos] = field(default_factory=dict)

    def position(self, path: Path_, at_key: bool = False) -> Pos:
        """Where ``path`` was written: its key or its value; the nearest parent if unknown."""
        while True:
            table = self.keys if at_key else self.values
            if path in table:
                return table[path]
            if at_key and path in self.values:
                return self.values[path]
            if not path:
                return (1, 1)
            path, at_key = path[:-1], False


def parse(text: str) -> Document:
    """Parse one YAML document; raise YamlSyntaxError with its position."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        _bounded(YAML(typ="rt").parse(text))
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or "").split("\n")[0]
        message = f"{exc.context}: {problem}" if exc.context else problem
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlSyntaxError(f"YAML syntax error: {message}", line, col) from exc
    except YAMLError as exc:
        raise YamlSyntaxError(f"YAML syntax error: {exc}", 1, 1) from exc
    doc = Document(None)
    doc.values[()] = (1, 1)
    doc.data = _plain(root, (), doc)
    return doc


def _bounded(events: Any) -> None:
    """Refuse, at the alias or node where it happens, a file whose aliases expand past
    :data:`MAX_NODES` values (a "billion laughs": each anchor repeats the one before) or that
    nests past :data:`MAX_DEPTH`, and an alias inside the node it names. One pass over the
    parser's events, before anything is built: each anchor's expanded size is known when its
    node ends, and an alias adds that size."""
    sizes: dict[str, int] = {}  # anchor -> values its node expands to
    open_: list[tuple[str | None, int]] = []  # (anchor, total when it started) per level
    total = 0
    for event in events:
        if not isinstance(event, NodeEvent | CollectionEndEvent):
            continue
        mark = event.start_mark
        if isinstance(event, AliasEvent):
            name = str(event.anchor)
            if any(anchor == name for anchor, _ in open_):
                raise YamlSyntaxError(f"YAML alias *{name} is inside the node it names (a "
                                      "cycle)", mark.line + 1, mark.column + 1)
            total += sizes.get(name, 1)
            if total > MAX_NODES:
                raise YamlSyntaxError(
                    f"YAML alias *{name} expands the file past {MAX_NODES:,} values "
                    "(anchors that repeat anchors): write the values out", mark.line + 1,
                    mark.column + 1)
            continue
        if isinstance(event, CollectionEndEvent):
            anchor, start = open_.pop()
            if anchor is not None:
                sizes[anchor] = total - start
            continue
        total += 1
        if total > MAX_NODES:
            raise YamlSyntaxError(f"YAML file has more than {MAX_NODES:,} values",
                                  mark.line + 1, mark.column + 1)
        anchor = None if event.anchor is None else str(event.anchor)
        if isinstance(event, CollectionStartEvent):
            if len(open_) >= MAX_DEPTH:
                raise YamlSyntaxError(f"YAML nested deeper than {MAX_DEPTH} levels",
                                      mark.line + 1, mark.column + 1)
            open_.append((anchor, total - 1))
        elif anchor is not None:
            sizes[anchor] = 1


def _plain(node: Any, path: Path_, doc: Document) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key in node:
            plain_key = _scalar(key)
            where = (*path, plain_key)
            try:
                kline, kcol = node.lc.key(key)
                vline, vcol = node.lc.value(key)
            except (KeyError, TypeError):  # merged (<<) keys carry no position of their own
                kline, kcol = vline, vcol = node.lc.line, node.lc.col
            doc.keys[where] = (kline + 1, kcol + 1)
            doc.values[where] = (vline + 1, vcol + 1)
            value = node[key]
            if isinstance(value, CommentedMap | CommentedSeq) and value.lc.line is not None:
                doc.values[where] = (value.lc.line + 1, value.lc.col + 1)
            out[plain_key] = _plain(value, where, doc)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, item in enumerate(node):
            line, col = node.lc.item(i)
            doc.values[(*path, i)] = (line + 1, col + 1)
            items.append(_plain(item, (*path, i), doc))
        return items
    return _scalar(node)


def _scalar(node: Any) -> Any:
    if node is None or node.__class__ in (bool, int, float, str):
        return node
    if isinstance(node, ScalarBoolean | bool):
        return bool(node)
    for plain in (int, float, str):  # ruamel's ScalarInt, ScalarFloat, quoted strings
        if isinstance(node, plain):
            return plain(node)
    if isinstance(node, date):
        return node
    value = getattr(node, "value", None)  # a tagged scalar (!tag x): keep its text
    return str(value) if value is not None else str(node)
