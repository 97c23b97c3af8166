"""The known-failures catalog, generated from its Markdown source and shipped as package data.

``python -m engine.analysis.catalog playbooks/testdata/error-catalog.md`` prints the JSON that
is committed as ``engine/analysis/catalog.json`` (a test checks that it is up to date). The
category and retryability of each code are derived from its class and usual remedy, so that the
Markdown stays the one source.
"""

from __future__ import annotations

import re  # re: the shipped catalog's Markdown and codes, at build time; never event text
import sys
from functools import cache
from importlib import resources

import msgspec

from engine.analysis.model import Category

__all__ = ["CatalogEntry", "build_catalog", "catalog_json", "load_catalog"]


class CatalogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One known failure: its code, where it comes from, what it means and what to do."""

    code: str
    family: str
    message: str
    klass: str
    remedy: str
    category: Category
    retryable: bool


_FAMILIES = (("Azure Data Factory", "adf"), ("Databricks clusters", "databricks-cluster"),
             ("Databricks runs", "databricks-run"))
# The ADF table's class column, as a category.
_CLASSES: dict[str, Category] = {
    "data not landed": "data_not_landed", "storage": "dependency",
    "concurrency": "transient_infra", "connectivity": "dependency", "depends": "unknown",
    "endpoint": "dependency", "runtime down": "dependency", "throttling": "throttling",
    "design": "code_or_data_bug", "configuration": "configuration", "capacity": "capacity",
    "data/config": "configuration", "credentials": "permissions", "cluster down": "dependency",
    "network": "transient_infra", "wrapper": "unknown",
}
# For the Databricks codes (no class column): checked in order over the code.
_CODE_RULES: tuple[tuple[str, Category], ...] = (
    (r"THROTTL|LIMIT_EXCEEDED|CONCURRENT_RUNS", "throttling"),
    (r"QUOTA|STOCKOUT|CLOUD_PROVIDER_LAUNCH|OUT_OF_MEMORY", "capacity"),
    (r"UNAUTHORIZED|STORAGE_ACCESS", "permissions"),
    (r"SECRET|SUBNET|IP_EXHAUSTION|NETWORK_CONFIG|INIT_SCRIPT|INVALID_|NOT_FOUND",
     "configuration"),
    (r"EXECUTION_ERROR", "code_or_data_bug"),
    (r"LIBRARY", "dependency"),
    (r"UNREACHABLE|COMMUNICATION|SPOT|STARTUP|BOOTSTRAP|LAUNCH|UNRESPONSIVE|CLUSTER_ERROR|"
     r"DRIVER_ERROR|CLOUD_FAILURE", "transient_infra"),
)
_NO_RETRY = re.compile(r"no (blind )?retry|^none|no action|^ticket", re.I)
_RETRY = re.compile(r"retry|repair|start again|restart|run again|rerun|start the cluster|"
                    r"start and repair", re.I)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _category(code: str, klass: str) -> Category:
    if klass in _CLASSES:
        return _CLASSES[klass]
    for pattern, category in _CODE_RULES:
        if re.search(pattern, code):
            return category
    return "unknown"


def build_catalog(markdown: str) -> list[CatalogEntry]:
    """Every code of every table of the Markdown catalog, in order."""
    entries: list[CatalogEntry] = []
    family = ""
    header: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("## "):
            family = next((f for title, f in _FAMILIES if title in line), "")
            header = []
            continue
        if not family or not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = _cells(line)
        if not header:
            header = [c.lower() for c in cells]
            continue
        row = dict(zip(header, cells, strict=False))
        remedy = row.get("usual remedy", "")
        if remedy == "same as above" and entries:
            remedy = entries[-1].remedy
        klass = row.get("class") or row.get("type", "")
        message = row.get("message (placeholders as documented)", "").replace("`", "")
        for code in re.findall(r"`([\w-]+)`", row.get("code", "")):
            retryable = bool(_RETRY.search(remedy)) and not _NO_RETRY.search(remedy)
            entries.append(CatalogEntry(code=code, family=family, message=message, klass=klass,
                                        remedy=remedy.replace("`", ""),
                                        category=_category(code, klass), retryable=retryable))
    return entries


def catalog_json(markdown: str) -> bytes:
    """The committed form: indented JSON, one entry per code, with a trailing newline."""
    return msgspec.json.format(msgspec.json.encode(build_catalog(markdown)), indent=1) + b"\n"


@cache
def load_catalog() -> dict[str, CatalogEntry]:
    """The shipped catalog by code (read once; immutable entries)."""
    raw = resources.files("engine.analysis").joinpath("catalog.json").read_bytes()
    return {e.code: e for e in msgspec.json.decode(raw, type=list[CatalogEntry])}


if __name__ == "__main__":  # pragma: no cover - the generator's command line
    with open(sys.argv[1], encoding="utf-8") as source:
        sys.stdout.buffer.write(catalog_json(source.read()))
