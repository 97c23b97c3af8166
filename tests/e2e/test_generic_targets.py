"""Generic alerts (issue 15, item 3): unrelated alerts about one resource never share a target,
and so never a cooldown; repeats of one alert do.

Two documented Service Health samples on one subscription, posted through the shipped
playbooks (generic.yaml tells the on-call, with a 30-minute cooldown per target).
"""

from __future__ import annotations

import copy
from typing import Any

from engine.runtime.pipeline import target_of
from receivers.azure_monitor import parse
from tests.fixtures.common import ROOT
from tests.fixtures.documented import body, entries

SUBSCRIPTION = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"


def _sample(file: str) -> dict[str, Any]:
    [entry] = [e for e in entries() if e["file"] == file]
    return copy.deepcopy(body(entry))


def _maintenance() -> dict[str, Any]:
    """A planned maintenance notice (tracking id ``<GUID>``), firing."""
    return _sample("alerts-payload-samples/12-activity-log-servicehealth.json")


def _incident_notice() -> dict[str, Any]:
    """The portal's test Service Health incident (``TEST-TTT``), still active: the sample
    with its status and stage as the notice's first communication has them, and its own
    alert instance."""
    doc = _sample("alerts-payload-samples/26-test-action-service-health-alert.json")
    context = doc["data"]["alertContext"]
    context["status"] = "Active"
    context["properties"]["stage"] = "Active"
    doc["data"]["essentials"]["alertId"] = f"{SUBSCRIPTION}/providers/Microsoft.AlertsManagement" \
                                           "/alerts/5678efgh1234abcd"
    return doc


def _repeat(doc: dict[str, Any], alert: str) -> dict[str, Any]:
    """The same notice again, as a new alert instance (an update of the notice)."""
    again = copy.deepcopy(doc)
    again["data"]["essentials"]["alertId"] = f"{SUBSCRIPTION}/providers/" \
                                             f"Microsoft.AlertsManagement/alerts/{alert}"
    again["data"]["alertContext"]["eventDataId"] = alert
    return again


def _target(doc: dict[str, Any]) -> str:
    [event] = parse(doc, "azure-monitor")
    return target_of(event)


def test_two_service_health_notices_on_one_subscription_have_their_own_targets() -> None:
    maintenance, incident = _target(_maintenance()), _target(_incident_notice())
    assert maintenance != incident
    assert (maintenance, incident) == (f"generic:alert:{SUBSCRIPTION}#<guid>",
                                       f"generic:alert:{SUBSCRIPTION}#test-ttt")
    # the same notice in the other article (and an update of it) is the same target
    assert _target(_sample("alerts-common-schema/13-activity-log-servicehealth.json")) \
        == maintenance
    assert _target(_repeat(_maintenance(), "0f0f")) == maintenance


def test_a_generic_alert_without_a_notice_is_told_apart_by_its_alert_rule() -> None:
    metric = _sample("alerts-payload-samples/24-test-action-metric-alert-static-threshold.json")
    other = copy.deepcopy(metric)
    other["data"]["essentials"]["alertRule"] = "storage-egress-high"
    assert _target(metric).endswith("#test-metricalertrule")
    assert _target(other) == _target(metric).replace("#test-metricalertrule",
                                                     "#storage-egress-high")


def test_the_cooldown_of_one_notice_does_not_silence_another(service_rig: Any) -> None:
    rig = service_rig(live=True, playbooks_dir=ROOT / "playbooks")
    rig.post("azure-monitor", _maintenance())
    rig.post("azure-monitor", _incident_notice())
    assert rig.run() == 2
    told = [m["body"]["text"] for m in rig.sink.received if m["path"] == "/chat"]
    assert len(told) == 2  # in either order: two targets, two lanes
    assert sorted(["Azure Synapse Analytics Scheduled Maintenance Pending" in text
                   for text in told]) == [False, True]
    assert sorted(["TestActionGroup-TestServiceHealthAlert" in text
                   for text in told]) == [False, True]

    rig.tick(60)  # a repeat of the first notice within the 30-minute cooldown
    rig.post("azure-monitor", _repeat(_maintenance(), "0f0f"))
    assert rig.run() == 1
    assert len([m for m in rig.sink.received if m["path"] == "/chat"]) == 2
    ignored = [i for i in rig.incidents() if i.state == "ignored"]
    assert [i.reason.split(" acted on ")[0] for i in ignored] == [
        "cooldown: rule generic-azure-alert"]
