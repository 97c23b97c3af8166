"""The links from an incident to its run in the cloud's console: the documented URL forms,
built from the events the receivers make, and no link at all from ids a cloud could never
have given (another host, another path, a script URL)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.events import ErrorEvent
from receivers.run_links import (
    RunLink,
    Workspace,
    action_link,
    adf_run_url,
    databricks_run_url,
    event_link,
    portal_resource_url,
    synapse_run_url,
)
from tests.engine.actions.conftest import (
    ADF_RUN,
    FACTORY,
    RG,
    SUB,
    WORKSPACE_ID,
    adf_event,
    cluster_event,
    dbx_task_event,
)

HOST = "https://adb-1234567890123456.7.azuredatabricks.net"
SPACES = (Workspace("prod", WORKSPACE_ID, HOST + "/"),)
FACTORY_ID = (f"%2Fsubscriptions%2F{SUB}%2FresourceGroups%2F{RG}%2Fproviders%2F"
              f"Microsoft.DataFactory%2Ffactories%2F{FACTORY}")
APPI = (f"/subscriptions/{SUB}/resourcegroups/rg-orders-prod/providers/"
        "microsoft.insights/components/appi-orders-prod")
"""The ARM id as Azure Monitor sends it (lower case)."""
APPI_PAGE = ("https://portal.azure.com/#@/resource/subscriptions/"
             f"{SUB}/resourceGroups/rg-orders-prod/providers/microsoft.insights/components/"
             "appi-orders-prod")


def synapse_event(**over: Any) -> ErrorEvent:
    """A Synapse pipeline run failure, as the log alert sample normalises."""
    fields: dict[str, Any] = {
        "source": "synapse", "kind": "pipeline_run", "status": "firing", "dedup_key": "k",
        "resource": "pl_load_dw_sales", "run_id": "3f2b9c1d-5e6a-4b7c-8d9e-0a1b2c3d4e5f",
        "resource_id": f"/subscriptions/{SUB}/resourcegroups/{RG}/providers/"
                       "microsoft.synapse/workspaces/syn-contoso-prod",
        "attributes": {"subscription": SUB, "resource_group": RG,
                       "workspace": "syn-contoso-prod", "pipeline": "pl_load_dw_sales"}}
    fields.update(over)
    return ErrorEvent(**fields)


def functions_event(**attributes: Any) -> ErrorEvent:
    return ErrorEvent(source="functions", kind="function", status="firing", dedup_key="k",
                      resource="func-orders-prod", resource_id=APPI,
                      attributes={"app_insights": "appi-orders-prod", **attributes})


def test_the_documented_url_of_each_console() -> None:
    assert event_link(adf_event(), SPACES) == RunLink(
        "ADF run 7b1e4c52…",
        f"https://adf.azure.com/en/monitoring/pipelineruns/{ADF_RUN}?factory={FACTORY_ID}")
    assert event_link(synapse_event(), SPACES) == RunLink(
        "Synapse run 3f2b9c1d…",
        "https://web.azuresynapse.net/en/monitoring/pipelineruns/"
        f"3f2b9c1d-5e6a-4b7c-8d9e-0a1b2c3d4e5f?workspace=%2Fsubscriptions%2F{SUB}"
        f"%2FresourceGroups%2F{RG}%2Fproviders%2FMicrosoft.Synapse%2Fworkspaces%2F"
        "syn-contoso-prod")
    # the workspace by the event's id, the host as configured (its trailing / dropped)
    assert event_link(dbx_task_event(), SPACES) == RunLink(
        "Databricks run 447120411", f"{HOST}/#job/816305927331/run/447120411")
    assert event_link(cluster_event(), SPACES) == RunLink(
        "Databricks cluster 0601-182128-dcbte59m",
        f"{HOST}/#setting/clusters/0601-182128-dcbte59m/configuration")
    assert event_link(functions_event(), SPACES) == RunLink(
        "Azure portal: appi-orders-prod", APPI_PAGE)


def test_what_each_link_is_built_from() -> None:
    # names from the ARM id when the attributes lack them
    assert event_link(adf_event(attributes={}), ()) == event_link(adf_event(), ())
    # no run id: the factory's runs
    assert event_link(adf_event(run_id=""), ()) == RunLink(
        f"ADF pipeline runs of {FACTORY}",
        f"https://adf.azure.com/en/monitoring/pipelineruns?factory={FACTORY_ID}")
    # the alert's own portal link, when it is one
    legacy = "https://portal.azure.com/#resource/subscriptions/x/overview"
    assert event_link(functions_event(portal_link=legacy), ()) == RunLink(
        "Azure portal: appi-orders-prod", legacy)
    # no configured workspace: the run page the event carries, if it is one
    carried = "https://adb-1.2.azuredatabricks.net/?o=1#job/816305927331/run/447120411"
    assert event_link(dbx_task_event(attributes={"run_page_url": carried}), ()) == RunLink(
        "Databricks run 447120411", carried)
    assert event_link(dbx_task_event(), ()) is None  # nowhere to point at
    # the run an action started: its new run, in the factory of its answer
    ref = {"cloud": "prod", "factory": FACTORY, "resource_group": RG,
           "run_id": "228ba806-46dd-4798-8f19-6896afb136c9"}
    assert action_link(adf_event(), ref, ()) == RunLink(
        "ADF run 228ba806…", "https://adf.azure.com/en/monitoring/pipelineruns/"
        f"228ba806-46dd-4798-8f19-6896afb136c9?factory={FACTORY_ID}")
    # a repair: the run's page, in the workspace the action used
    assert action_link(dbx_task_event(attributes={}), {"cloud": "prod", "run_id": "447120398",
                                                       "repair_id": "9"}, SPACES) == RunLink(
        "Databricks run 447120398", f"{HOST}/#job/816305927331/run/447120398")
    assert action_link(adf_event(), {}, ()) is None


HOSTILE_ADF: list[dict[str, Any]] = [
    {"run_id": "../../evil"}, {"run_id": "7b1e?x=1"}, {"run_id": "a" * 65},
]


@pytest.mark.parametrize("attributes", [
    {"factory": "evil.example/x"}, {"factory": "a#b"}, {"subscription": "not-a-guid"},
    {"resource_group": "rg/../../x"}, {"factory": "javascript:alert(1)"},
])
def test_a_name_the_cloud_never_gave_makes_no_link(attributes: dict[str, Any]) -> None:
    event = adf_event(attributes={**adf_event().attributes, **attributes}, resource_id="")
    assert event_link(event, ()) is None
    assert adf_run_url(ADF_RUN, attributes.get("subscription", SUB),
                       attributes.get("resource_group", RG),
                       attributes.get("factory", FACTORY)) is None


@pytest.mark.parametrize("run_id", ["../../evil", "7b1e?x=1", "a" * 65, "x y", "<b>"])
def test_a_bad_run_id_is_never_put_in_a_url(run_id: str) -> None:
    link = event_link(adf_event(run_id=run_id), ())
    assert link is not None and run_id not in link.url  # the factory's runs instead
    assert adf_run_url(run_id, SUB, RG, FACTORY) is None
    assert synapse_run_url(run_id, SUB, RG, "syn-contoso-prod") is None


@pytest.mark.parametrize("url", [
    "javascript:alert(1)//#job/1/run/2",
    "https://evil.example/#job/1/run/2",
    "https://evil.example/.azuredatabricks.net/#job/1/run/2",
    "https://adb-1.azuredatabricks.net.evil.example/#job/1/run/2",
    "https://user:pw@adb-1.azuredatabricks.net/#job/1/run/2",
    "https://adb-1.azuredatabricks.net:8443/#job/1/run/2",
    "http://adb-1.azuredatabricks.net/#job/1/run/2",
    "https://adb-1.azuredatabricks.net/login?next=https://evil.example",
    "https://adb-1.azuredatabricks.net/#job/1/run/2\n",
    "https://adb-1.azuredatabricks.net/#job/1/run/2" + "0" * 2000,
    12345,
])
def test_a_run_page_url_that_is_not_a_databricks_run_page_is_dropped(url: Any) -> None:
    assert event_link(dbx_task_event(attributes={"run_page_url": url}), ()) is None


@pytest.mark.parametrize(("job", "run"), [("1; drop", "2"), ("1", "-2"), ("1", "2" * 20),
                                          ("", "2"), (True, "2")])
def test_databricks_ids_are_numbers(job: Any, run: Any) -> None:
    assert databricks_run_url(HOST, job, run) is None


@pytest.mark.parametrize("host", ["javascript:alert(1)", "ftp://x", "https://u:p@x", "//x",
                                  "https://x:99999"])
def test_a_workspace_host_that_is_not_a_web_address_gives_no_link(host: str) -> None:
    assert databricks_run_url(host, "1", "2") is None


@pytest.mark.parametrize("resource_id", [
    f"/subscriptions/{SUB}/resourcegroups/rg/providers/microsoft.storage/storageAccounts/x",
    f"/subscriptions/{SUB}/resourcegroups/rg/providers/microsoft.insights/components/a b",
    "/subscriptions/x/resourcegroups/rg/providers/microsoft.insights/components/appi",
    f"{APPI}/../../evil",
])
def test_the_portal_link_is_made_for_function_apps_and_components_only(
        resource_id: str) -> None:
    assert portal_resource_url(resource_id) is None


@pytest.mark.parametrize("link", [
    "https://portal.azure.com.evil.example/#x", "https://evil.example/?portal.azure.com",
    "javascript:alert('portal.azure.com')", "https://portal.azure.com:444/#x",
])
def test_a_portal_link_elsewhere_is_not_taken(link: str) -> None:
    # not the alert's link: the component's own page instead
    assert event_link(functions_event(portal_link=link), ()) == RunLink(
        "Azure portal: appi-orders-prod", APPI_PAGE)
