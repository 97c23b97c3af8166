"""The clouds' naming rules (engine/cloud/names.py): what each kind of name accepts, the
exact refusal, and that every action's parameters refuse a bad name before any call."""

from __future__ import annotations

import re

import msgspec
import pytest

from engine.actions.registry import action_table
from engine.cloud import names
from engine.errors import PermanentActionError
from tests.engine.actions.conftest import adf_event, cluster_event, dbx_task_event, params_for

VALID = [
    ("factory", "adf-contoso-prod"), ("factory", "ADF01"),
    ("adf_pipeline", "pl_ingest_sales_daily"), ("adf_pipeline", "Sales Daily-Load (EU)"),
    ("adf_pipeline", "_x" + "y" * 258), ("activity", "Copy_RawSales_To_Bronze"),
    ("pipeline_run_id", "7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11"),
    ("resource_group", "rg-data.prod(eu)_1"), ("resource_group", "Ressourcengruppe-ä"),
    ("subscription", "5C1A8E2F-7d3b-4e9a-9f21-0b6d3c4a8e17"),
    ("synapse_workspace", "syn-contoso-prod"),
    ("cluster_id", "0314-020004-k3x9wq2e"), ("cluster_id", "1234-567890-abc123"),
    ("task_key", "transform_orders-2"), ("workspace_id", "1234567890123456"),
]

INVALID = [
    ("factory", "ab", "'ab' is not a valid Data Factory name (is shorter than 3 characters): "
                      "3-63 letters, digits and single hyphens between them"),
    ("factory", "adf--x", "'adf--x' is not a valid Data Factory name: "
                          "3-63 letters, digits and single hyphens between them"),
    ("adf_pipeline", ".", "'.' is not a valid Data Factory pipeline name: at most 260 "
     "characters, starting with a letter, a digit or '_', without . + ? / < > * % & : \\ # or "
     "control characters"),
    ("adf_pipeline", "a#b", "'a#b' is not a valid Data Factory pipeline name: at most 260 "
     "characters, starting with a letter, a digit or '_', without . + ? / < > * % & : \\ # or "
     "control characters"),
    ("adf_pipeline", "", "'' is not a valid Data Factory pipeline name (is empty): at most 260 "
     "characters, starting with a letter, a digit or '_', without . + ? / < > * % & : \\ # or "
     "control characters"),
    ("activity", "a" * 56, "'" + "a" * 56 + "' is not a valid activity name (is 56 characters "
     "long): at most 55 characters, starting with a letter, a digit or '_', without "
     ". + ? / < > * % & : \\ # or control characters"),
    ("pipeline_run_id", "../x", "'../x' is not a valid pipeline run id: a run id (a GUID): "
                                "letters, digits and single hyphens, at most 64 characters"),
    ("resource_group", "..", "'..' is not a valid resource group name: 1-90 letters, digits, "
                             "'_', '-', '.', '(' and ')', not ending with '.'"),
    ("resource_group", "rg/x", "'rg/x' is not a valid resource group name: 1-90 letters, "
                               "digits, '_', '-', '.', '(' and ')', not ending with '.'"),
    ("subscription", "x", "'x' is not a valid subscription id: a GUID"),
    ("synapse_workspace", "ws-ondemand", "'ws-ondemand' is not a valid Synapse workspace name "
     "(contains '-ondemand'): 1-50 letters, digits and single hyphens between them"),
    ("cluster_id", "%2e%2e", "'%2e%2e' is not a valid Databricks cluster id: MMDD-HHMMSS-suffix,"
                             " as Databricks issues them (e.g. 0314-020004-k3x9wq2e)"),
    ("task_key", "a b", "'a b' is not a valid Databricks task or job cluster key: 1-100 letters,"
                        " digits, '_' and '-'"),
    ("workspace_id", "12a", "'12a' is not a valid Databricks workspace id: digits only"),
]


@pytest.mark.parametrize(("kind", "value"), VALID)
def test_names_the_cloud_gives_pass(kind: str, value: str) -> None:
    assert names.problem(kind, value) is None


@pytest.mark.parametrize(("kind", "value", "message"), INVALID)
def test_names_the_cloud_never_gives_are_refused_with_the_rule(
        kind: str, value: str, message: str) -> None:
    assert names.problem(kind, value) == message
    with pytest.raises(names.InvalidName) as raised:
        names.require("field", kind, value)
    assert str(raised.value) == f"field {message}"
    assert isinstance(raised.value, PermanentActionError)  # escalates, never retried


def test_a_long_name_is_shown_cut_and_escaped() -> None:
    assert names.shown("\x1b[31m" + "x" * 100) == repr("\x1b[31m" + "x" * 58 + "…")


def test_databricks_ids_are_positive_64_bit() -> None:
    names.check_id("run_id", 1)
    names.check_id("run_id", 2**63 - 1)
    for bad in (0, -1, 2**63):
        with pytest.raises(names.InvalidName, match=f"^run_id {bad} is not a valid Databricks "
                                                    "id: a positive 64-bit integer$"):
            names.check_id("run_id", bad)


TABLE = action_table()
BAD = [
    ("adf.rerun_pipeline", adf_event(), {"pipeline": ".."}, "pipeline '..'"),
    ("adf.rerun_pipeline", adf_event(), {"factory": "a/b"}, "factory 'a/b'"),
    ("adf.rerun_pipeline", adf_event(), {"run_id": "%2e%2e"}, "run_id '%2e%2e'"),
    ("adf.rerun_pipeline", adf_event(), {"resource_group": "."}, "resource_group '.'"),
    ("adf.rerun_pipeline", adf_event(), {"start_from_failure": False,
                                         "start_activity_name": "a/b"},
     "start_activity_name 'a/b'"),
    ("adf.cancel_run", adf_event(), {"run_id": ".."}, "run_id '..'"),
    ("synapse.rerun_pipeline", adf_event(source="synapse", attributes={
        "workspace": "syn-contoso-prod", "pipeline": "a/../b"}), {}, "pipeline 'a/../b'"),
    ("databricks.repair_run", dbx_task_event(), {"rerun_all_failed_tasks": False,
                                                 "rerun_tasks": ["../x"]}, "rerun_tasks '../x'"),
    ("databricks.repair_run", dbx_task_event(), {"run_id": -5}, "run_id -5"),
    ("databricks.run_job", dbx_task_event(), {"only": ["a/b"]}, "only 'a/b'"),
    ("databricks.restart_cluster", cluster_event("0601-182128-dcbte59m/.."), {},
     "cluster_id '0601-182128-dcbte59m/..'"),
    ("databricks.start_cluster", cluster_event(), {"workspace_id": "../1"},
     "workspace_id '../1'"),
    ("databricks.set_node_type", dbx_task_event(attributes={
        "job_id": "816305927331", "job_cluster_key": "etl/..", "workspace_id": "1"}),
     {"fallbacks": ["Standard_DS5_v2"]}, "job_cluster_key 'etl/..'"),
]


@pytest.mark.parametrize(("action", "event", "with_", "start"), BAD,
                         ids=[f"{a}-{s}" for a, _, _, s in BAD])
def test_every_action_refuses_a_bad_name_in_its_parameters(
        action: str, event: object, with_: dict, start: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=f"^{re.escape(start)} is not a valid "):
        params_for(TABLE[action], event, **with_)

