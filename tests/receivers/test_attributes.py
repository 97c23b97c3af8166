"""The attribute declaration (engine/attributes.py) against what the parsers really produce.

Every sample of every sender goes through its parser: the documented samples, the samples of
tests/testdata/samples (webhooks and polled cluster-event pages) and the shipped playbooks'
test data. Every attribute of every event must be declared for the event's source and kind,
and every attribute declared as set by a receiver must show up on some sample of its source.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from engine.attributes import ATTRIBUTES, attributes_of, known_names
from engine.events import ErrorEvent
from receivers.databricks import parse_cluster_events_page
from receivers.intake import normalize
from tests.fixtures.common import ROOT, TESTDATA
from tests.fixtures.documented import body, entries

# Declared receiver attributes that no sample at hand carries (the parsers set them only when
# the sender fills the field in). Kept exact: a sample that shows one makes this test fail
# until it is taken off the list.
NOT_IN_ANY_SAMPLE = {
    ("adf", "activity_run_id"),
    ("adf", "sub_status"),
    ("functions", "caller"),
    ("functions", "correlation_id"),
    ("functions", "event_timestamp"),
    ("functions", "innermost_message"),
    ("functions", "legacy_status"),
    ("functions", "level"),
    ("functions", "log_workspace_id"),
    ("functions", "metric_namespace"),
    ("functions", "operation_name"),
    ("functions", "portal_link"),
    ("functions", "status"),
    ("functions", "sub_status"),
    ("functions", "timestamp"),
    ("generic", "sub_status"),
    ("synapse", "activity"),
    ("synapse", "activity_run_id"),
    ("synapse", "activity_type"),
    ("synapse", "caller"),
    ("synapse", "correlation_id"),
    ("synapse", "custom_properties"),
    ("synapse", "event_timestamp"),
    ("synapse", "legacy_status"),
    ("synapse", "level"),
    ("synapse", "log_workspace_id"),
    ("synapse", "operation_name"),
    ("synapse", "portal_link"),
    ("synapse", "resolved_at"),
    ("synapse", "row"),
    ("synapse", "status"),
    ("synapse", "sub_status"),
    ("synapse", "timestamp"),
    ("synapse", "trigger"),
}


def _webhook_endpoint(doc: dict) -> str:
    return "databricks-monitor" if "event" in doc or "event_type" in doc else "azure-monitor"


def _parsed() -> Iterator[tuple[str, ErrorEvent]]:
    """(sample, event) for every sample of every sender."""
    for entry in entries(definitions=True):
        endpoint = entry.get("endpoint", "azure-monitor")
        for event in normalize(endpoint, json.dumps(body(entry)).encode()):
            yield entry["file"], event
    files = sorted((TESTDATA / "samples").rglob("*.json")) + sorted(
        (ROOT / "playbooks" / "testdata").glob("*.json"))
    for path in files:
        doc = json.loads(path.read_text())
        name = str(path.relative_to(ROOT))
        if "cluster-events" in path.name:
            for event in parse_cluster_events_page(doc, cluster_name="c", workspace="w"):
                yield name, event
        elif path.parent.name != "cloud-api":
            for event in normalize(_webhook_endpoint(doc), path.read_bytes()):
                yield name, event


PARSED = list(_parsed())


def test_every_attribute_every_parser_produces_is_declared() -> None:
    undeclared = sorted(
        (sample, event.source, event.kind, name)
        for sample, event in PARSED
        for name in event.attributes
        if name not in attributes_of(event.source, event.kind)
    )
    assert undeclared == []
    assert len(PARSED) >= 140  # the samples were all read


def test_every_declared_receiver_attribute_is_on_some_sample() -> None:
    seen = {(event.source, name) for _, event in PARSED for name in event.attributes}
    declared = {
        (source, attribute.name)
        for (source, _kind), group in ATTRIBUTES.items()
        for attribute in group.values()
        if attribute.origin == "receiver"
    }
    assert declared - seen == NOT_IN_ANY_SAMPLE


def test_each_attribute_says_what_it_holds_and_who_sets_it() -> None:
    for group in ATTRIBUTES.values():
        for name, attribute in group.items():
            assert attribute.name == name
            assert attribute.meaning and attribute.origin in ("receiver", "enrichment", "poller")
    assert {"pipeline", "cluster_tags", "detected_by", "log_workspace_id"} <= known_names()
    assert "pipline" not in known_names()


def test_an_unknown_source_or_kind_is_the_callers_bug() -> None:
    assert dict(attributes_of("generic", "job_run")) == {}
    with pytest.raises(ValueError, match="unknown source or kind: 'adls', 'alert'"):
        attributes_of("adls", "alert")

