"""Fuzz every webhook and poller parser with structured mutations of the real samples.

Usage: .venv/bin/python scripts/fuzz_parsers.py [--cases 10000] [--seed 1]

For each parser (receivers.azure_monitor.parse per endpoint, receivers.databricks.parse,
receivers.databricks.parse_cluster_events_page) it runs ``--cases`` inputs made from the
samples in tests/testdata/samples: a third as documents with a random field deleted, retyped
(null, bool, huge int, 1e308, NaN-free float, long/odd strings, nested lists/objects) or
duplicated, a third as the JSON bytes with bytes flipped, cut or inserted, a third as random
JSON-ish values. The contract checked: a parser returns a list of ErrorEvent that msgspec can
encode, or raises a PayloadError subclass; anything else is a failure (printed with its input).
Seeded and bounded: the same seed gives the same cases.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.errors import PayloadError  # noqa: E402
from engine.events import ErrorEvent  # noqa: E402
from receivers import azure_monitor, databricks  # noqa: E402

SAMPLES = ROOT / "tests" / "testdata" / "samples"


def _load(*names: str) -> list[Any]:
    return [json.loads((SAMPLES / n).read_text()) for n in names]


AZURE = [*sorted(str(p.relative_to(SAMPLES))
                 for p in (SAMPLES / "azure-monitor").glob("*.json")),
         "seed/adf-action-group-alert.json", "seed/adf-test-alert.json"]
DBX = [*sorted(str(p.relative_to(SAMPLES)) for p in (SAMPLES / "databricks").glob("*.json")),
       "seed/databricks-cluster-failed-to-start.json",
       "seed/databricks-cluster-terminated.json", "seed/databricks-job-failure.json"]
PAGES = ["cloud-api/databricks-cluster-events-instance-unreachable.json",
         "cloud-api/databricks-cluster-events-terminated-inactivity.json"]

ODD_STRINGS = ["", " ", "\u0000", "\ud7ff", "é" * 3, "💥", "x" * 10_000, "null", "0", "-1",
               "2024-13-45T99:99:99Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59.9999999Z",
               "/subscriptions//resourceGroups/", "/" * 50, "TERMINATING", "Failed",
               "azureMonitorCommonAlertSchema", "AzureMonitorMetricAlert", "{}", "[]"]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(10 if depth < 3 else 7)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63 - 1, -(2**63), 2**64 - 1,
                           rng.randrange(-10**6, 10**6)])
    if pick == 3:
        return rng.choice([0.0, -0.0, 1e308, -1e308, 5e-324, rng.random() * 1e12])
    if pick in (4, 5, 6):
        return rng.choice(ODD_STRINGS)
    if pick in (7, 8):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [*ODD_STRINGS[:8], "data", "essentials", "events", "type", "details", "reason",
            "run", "job"]
    return {rng.choice(keys): _random_value(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value, the root (``()``) included."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += json_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += json_paths(value, (*prefix, index))
    return found


def json_parent(doc: Any, path: tuple[Any, ...]) -> Any:
    """The object or list that holds the value at ``path`` (not the root's: ``path`` is not
    ``()``)."""
    for step in path[:-1]:
        doc = doc[step]
    return doc


def _mutate_doc(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randrange(1, 4)):
        paths = [p for p in json_paths(doc) if p]
        if not paths:
            return doc
        path = rng.choice(paths)
        parent = json_parent(doc, path)
        last = path[-1]
        action = rng.randrange(3)
        if action == 0:
            del parent[last]
        elif action == 1:
            parent[last] = _random_value(rng)
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        else:
            parent[f"{last}_"] = copy.deepcopy(parent[last])
    return doc


def _mutate_bytes(doc: Any, rng: random.Random) -> bytes:
    data = bytearray(json.dumps(doc).encode())
    for _ in range(rng.randrange(1, 6)):
        if not data:
            break
        at = rng.randrange(len(data))
        choice = rng.randrange(4)
        if choice == 0:
            data[at] = rng.randrange(256)
        elif choice == 1:
            del data[at:at + rng.randrange(1, 20)]
        elif choice == 2:
            data[at:at] = rng.choice([b"{", b"[", b'"', b"\\", b"\xff", b"\x00", b"1e999", b","])
        else:
            data = data[:at]
    return bytes(data)


def _case(samples: list[Any], rng: random.Random, *, bytes_ok: bool) -> Any:
    kind = rng.randrange(3)
    if kind == 0:
        return _mutate_doc(rng.choice(samples), rng)
    if kind == 1 and bytes_ok:
        return _mutate_bytes(rng.choice(samples), rng)
    return _random_value(rng) if rng.random() < 0.3 else {
        **rng.choice(samples), **({} if rng.random() < 0.5 else {"data": _random_value(rng)})}


def fuzz(name: str, parse: Callable[[Any], Any], samples: list[Any], cases: int,
         rng: random.Random, *, bytes_ok: bool) -> dict[str, Any]:
    """Run ``cases`` inputs through ``parse``; count accepted, refused and failed."""
    accepted = refused = 0
    failures: list[str] = []
    started = time.perf_counter()
    for _ in range(cases):
        value = _case(samples, rng, bytes_ok=bytes_ok)
        try:
            events = parse(value)
            assert isinstance(events, list) and all(isinstance(e, ErrorEvent) for e in events)
            msgspec.json.encode(events)
            accepted += 1
        except PayloadError:
            refused += 1
        except Exception as exc:  # the fuzzer exists to catch anything else
            if len(failures) < 5:
                shown = repr(value)[:300]
                failures.append(f"{type(exc).__name__}: {exc} <- {shown}\n"
                                f"{traceback.format_exc(limit=3)}")
            else:
                failures.append("")
    return {"parser": name, "cases": cases, "accepted": accepted, "refused": refused,
            "failures": len(failures), "seconds": round(time.perf_counter() - started, 1),
            "examples": [f for f in failures if f]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    azure = _load(*AZURE)
    targets: list[tuple[str, Callable[[Any], Any], list[Any], bool]] = [
        (f"azure_monitor.parse[{endpoint}]",
         lambda body, e=endpoint: azure_monitor.parse(body, e), azure, True)
        for endpoint in azure_monitor.ENDPOINT_SOURCES]
    targets.append(("databricks.parse", databricks.parse, _load(*DBX), True))
    targets.append(("databricks.parse_cluster_events_page",
                    databricks.parse_cluster_events_page, _load(*PAGES), False))
    failed = 0
    print(f"{'parser':50} {'cases':>7} {'accepted':>9} {'refused':>8} {'failures':>9} {'s':>6}")
    for name, parse, samples, bytes_ok in targets:
        result = fuzz(name, parse, samples, args.cases, rng, bytes_ok=bytes_ok)
        failed += result["failures"]
        print(f"{name:50} {result['cases']:>7} {result['accepted']:>9} {result['refused']:>8} "
              f"{result['failures']:>9} {result['seconds']:>6}")
        for example in result["examples"]:
            print("  FAIL", example)
    print(f"total failures: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
