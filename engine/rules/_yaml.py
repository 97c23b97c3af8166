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
from ruamel.yaml.scalarbool import ScalarBoolean

Path_ = tuple[str | int, ...]
Pos = tuple[int, int]


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line``/``col`` are 1-based."""

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
