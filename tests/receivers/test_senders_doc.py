"""docs/SENDERS.md's generated parts agree with their sources.

Two parts of the document are generated: the documented payloads and the events they become
(from tests/testdata/docs/manifest.json, whose expectations test_documented_samples.py holds
the parser to), and the event attribute reference (from engine/attributes.py). Refresh both
after a change with ``python -m tests.receivers.test_senders_doc``.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from engine.attributes import ATTRIBUTES
from engine.events import SOURCES
from tests.fixtures.common import ROOT
from tests.fixtures.documented import entries

SENDERS = ROOT / "docs" / "SENDERS.md"
_BLOCK = re.compile(
    r"(<!-- BEGIN generated: (?P<name>[a-z]+) .*? -->\n)(?P<body>.*?)(<!-- END generated -->)",
    re.DOTALL,
)


def _cell(value: Any) -> str:
    text = str(value) if value not in (None, "") else ""
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _code(value: str) -> str:
    return f"`{value}`" if value else ""


def samples_table() -> str:
    """One table per article: each documented sample, where it is posted, its event."""
    out: list[str] = []
    article = None
    head = ("| sample | documented as | endpoint | source, kind, status | resource | run id "
            "| error code | message |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    for entry in entries():
        if entry["article"] != article:
            article = entry["article"]
            name = article.rsplit("/", 1)[-1] if article.startswith("articles/") else article
            out.append(f"\n**{name}**\n\n{head}")
        e = entry["expect"]
        path = f"../tests/testdata/docs/{entry['file']}".replace("docs/../", "")
        label = entry["file"].rsplit("/", 1)[-1]
        out.append(
            f"| [{label}]({path}) | {_cell(entry['heading'])} | `/{entry['endpoint']}` "
            f"| `{e['source']}` `{e['kind']}` `{e['status']}` | {_cell(e['resource'])} "
            f"| {_code(e['run_id'])} | {_code(e['error_code'])} | {_cell(e['message'])} |"
        )
    return "\n".join(out).lstrip("\n") + "\n"


def attributes_reference() -> str:
    """Per source: each attribute, the kinds that carry it, who sets it, what it holds."""
    out: list[str] = []
    for source in SOURCES:
        rows: dict[str, tuple[list[str], str, str]] = {}
        for (src, kind), group in ATTRIBUTES.items():
            if src != source:
                continue
            for name, attribute in group.items():
                kinds, _, _ = rows.setdefault(name, ([], attribute.origin, attribute.meaning))
                kinds.append(kind)
        out.append(f"\n**{source}**\n\n| attribute | kinds | set by | holds |\n"
                   "| --- | --- | --- | --- |")
        for name, (kinds, origin, meaning) in rows.items():
            out.append(f"| `{name}` | {', '.join(kinds)} | {origin} | {_cell(meaning)} |")
    return "\n".join(out).lstrip("\n") + "\n"


GENERATED = {"samples": samples_table, "attributes": attributes_reference}


def _regenerated(text: str) -> str:
    return _BLOCK.sub(lambda m: m[1] + GENERATED[m["name"]]() + m[4], text)


def test_the_generated_parts_of_senders_md_are_up_to_date() -> None:
    text = SENDERS.read_text()
    assert {m["name"] for m in _BLOCK.finditer(text)} == set(GENERATED)
    assert _regenerated(text) == text, (
        "docs/SENDERS.md is out of date: run python -m tests.receivers.test_senders_doc")


def test_every_documented_sample_is_listed() -> None:
    text = SENDERS.read_text()
    for entry in entries():
        assert f"]({('../tests/testdata/docs/' + entry['file']).replace('docs/../', '')})" in text


if __name__ == "__main__":
    SENDERS.write_text(_regenerated(SENDERS.read_text()))
    sys.exit(0)
