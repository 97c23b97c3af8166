"""An ADF log alert that names no factory (scoped to the Log Analytics workspace, split
without `_ResourceId`): enrichment finds the factory among the configured ones, or leaves it
unknown and says why; the workspace is never taken for the factory (issue 15, 4)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.cloud.clients import Clients
from engine.cloud.enrich import EnrichResult, LookupNote, enrich
from engine.events import ErrorEvent
from receivers.intake import normalize
from tests.engine.actions.conftest import ADF_RUN, FACTORY, RG, SUB, cloud_settings
from tests.fixtures.common import TESTDATA

WORKSPACE_ALERT = (
    TESTDATA / "samples" / "azure-monitor" / "azmon-common-logv2-adf-activityrun-workspace.json"
)
CALL = "adf factory of pipeline pl_ingest_sales_daily"
NO_FACTORY = "the alert names no factory (a log alert without the _ResourceId dimension); "


def _alert() -> ErrorEvent:
    [event] = normalize("azure-monitor", WORKSPACE_ALERT.read_bytes())
    assert "factory" not in event.attributes and event.resource_id == ""
    return event


def _clients(sandbox: Any, *factories: str) -> Clients:
    """[clouds.adf] with one entry, `prod`, naming ``factories``."""
    return Clients(cloud_settings(sandbox, adf={"prod": {
        "subscription_id": SUB, "resource_group": RG, "factories": list(factories),
        "base_url": sandbox.adf_url, "ca_file": sandbox.ca_file,
        "credential": {"type": "static", "token": "sandbox-token"}, "retries": 0}}))


def _enriched(sandbox: Any, *factories: str) -> tuple[ErrorEvent, EnrichResult]:
    """The workspace-scoped alert as parsed, and what enrichment makes of it."""
    clients = _clients(sandbox, *factories)
    try:
        original = _alert()
        return original, enrich(original, clients)
    finally:
        clients.close()


def _factories_called(sandbox: Any) -> set[str]:
    return {c["path"].split("/factories/")[1].split("/")[0].lower()
            for c in sandbox.calls("adf") if "/factories/" in c["path"]}


@pytest.fixture
def only_prod(sandbox: Any):
    built = _clients(sandbox, FACTORY)
    yield built
    built.close()


def test_the_only_configured_factory_is_the_factory(sandbox: Any, only_prod: Clients) -> None:
    result = enrich(_alert(), only_prod)
    [event] = result.events
    assert result.notes[0] == LookupNote(
        call=CALL, ok=True, detail=f"{FACTORY}: the only factory that [clouds.adf] names")
    assert event.attributes["factory"] == FACTORY
    assert event.attributes["factory_resolved_by"] == "configured"
    assert (event.attributes["subscription"], event.attributes["resource_group"]) == (SUB, RG)
    assert event.resource_id == (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
                                 f"Microsoft.DataFactory/factories/{FACTORY}")
    assert event.error_code == "UserErrorSourceBlobNotExist"  # the run's error, found there
    assert _factories_called(sandbox) == {FACTORY}  # never law-dataplatform-prod


def test_of_several_factories_the_one_that_knows_the_run(sandbox: Any) -> None:
    sandbox.script("adf", "adf.getPipelineRun", status=404)  # adf-contoso-dr: not there
    _, result = _enriched(sandbox, "adf-contoso-dr", FACTORY)
    [event] = result.events
    resolved = [n for n in result.notes if n.call == CALL]
    assert resolved == [LookupNote(call=CALL, ok=True, detail=(
        f"{FACTORY}: the configured factory that knows run {ADF_RUN}"))]
    assert event.attributes["factory"] == FACTORY
    assert [n.call for n in result.notes][:5] == [
        "adf client prod", f"adf run {ADF_RUN} in adf-contoso-dr",
        "adf client prod", f"adf run {ADF_RUN} in {FACTORY}", CALL]


def test_several_factories_that_know_the_run_leave_it_unknown(sandbox: Any) -> None:
    original, result = _enriched(sandbox, "adf-contoso-dr", FACTORY)
    assert result.events == [original.with_fingerprint()]
    assert result.notes[-1] == LookupNote(call=CALL, ok=False, detail=(
        NO_FACTORY + f"run {ADF_RUN} is in several configured factories "
        f"(adf-contoso-dr, {FACTORY}); left unknown"))


def test_without_a_named_factory_nothing_is_looked_up(sandbox: Any) -> None:
    original, result = _enriched(sandbox, "*")
    assert result.events == [original.with_fingerprint()]
    assert result.notes == [LookupNote(call=CALL, ok=False, detail=(
        NO_FACTORY + "[clouds.adf] names no factory to look in; left unknown"))]
    assert sandbox.calls("adf") == []  # no call to a factory named after the workspace
