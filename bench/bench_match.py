"""Matching throughput with 10 to 10,000 rules (prints a table; not a test).

    .venv/bin/python bench/bench_match.py

Rules are a realistic mix: per pipeline and error code (equality on source, error_code and
resource; a third with a message regex and a factory glob), per Databricks job and
termination code, and a few catch-alls per source with regexes at the end. Events are a mix
of known pipelines and codes, unknown pipelines that fall through to the catch-alls,
resolved notifications and Databricks events. Each event is matched with
``PlaybookSet.match`` exactly as the worker does; the figure is the best of five passes in
CPU time (``time.process_time``), steadier than wall-clock time on a shared machine.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.actions.registry import action_table
from engine.events import ErrorEvent
from engine.rules.load import load_playbooks

ADF_CODES = [
    "UserErrorSourceBlobNotExist", "UserErrorFileNotFound", "AdlsGen2OperationFailed",
    "AzureBlobOperationFailed", "SqlFailedToConnect", "SqlOperationFailed", "2108", "2010",
    "2003", "4502", "2001", "2011", "DF-Executor-OutOfMemoryError", "3203", "3208",
]
DBX_CODES = [
    "INSTANCE_UNREACHABLE", "DRIVER_UNREACHABLE", "CLOUD_PROVIDER_RESOURCE_STOCKOUT",
    "SPOT_INSTANCE_TERMINATION", "DRIVER_OUT_OF_MEMORY", "RUN_EXECUTION_ERROR",
    "LIBRARY_INSTALLATION_ERROR", "MAX_CONCURRENT_RUNS_EXCEEDED",
]
CATCH_ALLS: list[dict[str, Any]] = [
    {"source": "adf", "message": {"regex": r"ContainerName: (?P<container>\S+)"}},
    {"source": "adf", "message": {"regex": r"(?i)timeout|timed out"}},
    {"source": "adf", "failure_type": "SystemError"},
    {"source": "synapse", "message": {"regex": r"(?i)throttl"}},
    {"source": "databricks", "message": {"regex": r"(?P<exc>\w+Exception)"}},
    {"source": "databricks", "kind": "cluster"},
    {"source": ["adf", "synapse"], "severity": {"lte": 1}},
    {"any": [{"failure_type": "UserError"}, {"error_code": {"exists": False}}]},
]


def make_rules(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` rules: specific ones first, the same eight catch-alls last at every size (so
    that sizes differ only in the rules that an event cannot match)."""
    catch = CATCH_ALLS
    rules = []
    for i in range(count - len(catch)):
        if i % 4 == 3:
            match: dict[str, Any] = {
                "source": "databricks", "error_code": rng.choice(DBX_CODES),
                "resource": f"job_{i}",
            }
        else:
            match = {
                "source": rng.choice(["adf", "adf", "synapse"]),
                "error_code": rng.sample(ADF_CODES, rng.choice([1, 1, 2])),
                "resource": f"pl_{i}",
            }
            if i % 3 == 0:
                match["message"] = {"regex": rf"(?P<what>{rng.choice(['Blob', 'path', 'SQL'])})"}
                match["attributes.factory"] = {"glob": "adf-*-prod"}
        rules.append({"id": f"rule-{i}", "match": match, "actions": [{"action": "noop"}]})
    for j, match in enumerate(catch):
        rules.append({"id": f"catch-{j}", "match": match, "actions": [{"action": "noop"}]})
    return rules


def make_events(count: int, rules: int, rng: random.Random) -> list[ErrorEvent]:
    """A realistic stream: mostly known pipelines and codes, some unknown, some resolved."""
    events = []
    for n in range(count):
        roll = rng.random()
        i = rng.randrange(max(1, rules))
        if roll < 0.25:
            events.append(ErrorEvent(
                source="databricks", kind=rng.choice(["job_run", "cluster"]), status="firing",
                dedup_key=str(n), resource=f"job_{i}", error_code=rng.choice(DBX_CODES),
                message="org.apache.spark.SparkException: Job aborted due to stage failure",
                failure_type="CLOUD_FAILURE",
            ))
            continue
        events.append(ErrorEvent(
            source=rng.choice(["adf", "adf", "synapse"]), kind="activity_run",
            status="resolved" if roll > 0.9 else "firing", dedup_key=str(n),
            resource=f"pl_{i}" if roll < 0.75 else f"pl_unknown_{i}",
            error_code=rng.choice(ADF_CODES),
            message="The required Blob is missing. ContainerName: https://acct/raw, path: x.csv.",
            failure_type=rng.choice(["UserError", "SystemError"]),
            severity=rng.randrange(5),
            attributes={"factory": "adf-sales-prod", "pipeline": f"pl_{i}"},
        ))
    return events


PASSES = 5


def measure(rule_count: int, event_count: int = 50_000) -> dict[str, float]:
    rng = random.Random(rule_count)
    rules = make_rules(rule_count, rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(json.dumps({"name": "bench", "rules": rules}, indent=1))
        start = time.perf_counter()
        playbooks = load_playbooks([path], action_table())
        load_s = time.perf_counter() - start
    events = make_events(event_count, rule_count, rng)
    match = playbooks.match
    for e in events[:1000]:  # warm up
        match(e)
    # CPU time of this process, best of PASSES passes: the machine is shared, and wall-clock
    # time there measures the neighbours as much as the matcher
    elapsed = float("inf")
    for _ in range(PASSES):
        matched = 0
        start = time.process_time()
        for e in events:
            if match(e):
                matched += 1
        elapsed = min(elapsed, time.process_time() - start)
    return {
        "rules": rule_count, "load_s": load_s, "events_per_s": event_count / elapsed,
        "us_per_event": elapsed / event_count * 1e6, "matched": matched / event_count,
    }


def main() -> None:
    rows = [measure(n) for n in (10, 100, 1_000, 10_000)]
    print(f"{'rules':>7} {'load (s)':>9} {'events/s':>10} {'µs/event':>9} {'matched':>8}")
    for r in rows:
        print(f"{r['rules']:>7,} {r['load_s']:>9.2f} {r['events_per_s']:>10,.0f}"
              f" {r['us_per_event']:>9.1f} {r['matched']:>8.0%}")
    ratio = rows[-1]["events_per_s"] / rows[0]["events_per_s"]
    print(f"10,000 rules run at {ratio:.0%} of the throughput at 10 rules")


if __name__ == "__main__":
    main()
