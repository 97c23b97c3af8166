"""What enrichment adds is declared in engine/attributes.py for the event's source and kind.

The events are the parsers' own (documented and built samples), enriched through the real
SDK clients against the sandbox; the run that died with its cluster covers the cluster look-up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from engine.attributes import attributes_of
from engine.cloud.clients import Clients
from engine.cloud.enrich import enrich
from engine.events import ErrorEvent
from receivers.intake import normalize
from tests.engine.actions.conftest import dbx_task_event
from tests.engine.actions.test_enrich_cluster_cause import _run_died_with_cluster
from tests.fixtures.common import TESTDATA, load_sample


def _parsed(endpoint: str, relative: str, **over: Any) -> ErrorEvent:
    [event] = normalize(endpoint, json.dumps(load_sample(relative)).encode())
    return msgspec.structs.replace(event, **over)


def _undeclared(events: list[ErrorEvent]) -> list[tuple[str, str, str]]:
    return [(e.source, e.kind, name) for e in events for name in e.attributes
            if name not in attributes_of(e.source, e.kind)]


def test_every_attribute_enrichment_adds_is_declared(sandbox: Any, clients: Clients) -> None:
    now = datetime.now(UTC)
    metric = _parsed("azure-monitor",
                     "azure-monitor/azmon-common-metric-adf-pipelinefailed-nodescription.json")
    metric = msgspec.structs.replace(metric, attributes={  # a window the sandbox's runs are in
        **metric.attributes, "window_start": (now - timedelta(minutes=5)).isoformat(),
        "window_end": (now + timedelta(minutes=1)).isoformat()})
    workspace = (TESTDATA / "samples" / "azure-monitor"
                 / "azmon-common-logv2-adf-activityrun-workspace.json")
    [no_factory] = normalize("azure-monitor", workspace.read_bytes())
    _run_died_with_cluster(sandbox, "CLUSTER_ERROR")
    enriched = []
    for event in (
        dbx_task_event(),  # the run died with its cluster: clusters/get too
        dbx_task_event(kind="job_run", attributes={"event_type": "jobs.on_failure",
                                                   "job_id": "816305927331",
                                                   "workspace_id": "1234567890123456"}),
        _parsed("databricks-monitor", "seed/databricks-cluster-failed-to-start.json",
                error_code="LIBRARY_INSTALLATION_ERROR"),
        _parsed("azure-monitor",
                "azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json"),
        metric,
        no_factory,
        _parsed("synapse-monitor", "azure-monitor/azmon-common-metric-synapse-failed.json"),
    ):
        enriched += enrich(event, clients).events
    added = {name for e in enriched for name in e.attributes}
    assert {"error_trace", "failed_tasks", "cluster_termination_code", "cluster_tags",
            "failed_activities", "expanded_from", "factory_resolved_by"} <= added
    assert _undeclared(enriched) == []
