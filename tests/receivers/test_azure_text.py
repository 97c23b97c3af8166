"""The one-line messages of alerts without words of their own (issue 15, 7)."""

from __future__ import annotations

import pytest

from receivers import azure_text as text


@pytest.mark.parametrize(
    ("duration", "expected"),
    [("PT5M", ", 5 min window"), ("PT1H", ", 1 h window"), ("PT90M", ", 90 min window"),
     ("P1D", ", 1 day window"), ("PT30S", ", 30 s window"), ("P2DT0H", ", 2 days window"),
     ("", ""), (None, ""), ("5 minutes", ""), ("P", ""), ("PT0M", "")],
)
def test_window(duration: str | None, expected: str) -> None:
    assert text.window(duration) == expected


def test_window_in_minutes() -> None:
    assert (text.window(minutes=15), text.window(minutes=1440), text.window(minutes=0)) == (
        ", 15 min window", ", 1 day window", "")


def test_a_metric_criterion_in_one_line() -> None:
    line = text.criterion_line(
        metric="PipelineFailedRuns", aggregation="Total", column="", value=1.0,
        operator="GreaterThan", threshold="0",
        dimensions={"Name": "pl_copy_sales", "FailureType": "UserError"})
    assert line + text.window("PT5M") == (
        "PipelineFailedRuns = 1 > 0 (Name=pl_copy_sales, FailureType=UserError), 5 min window")


@pytest.mark.parametrize(
    ("operator", "shown"),
    [("GreaterThanOrEqual", ">="), ("LessThan", "<"), ("LowerThan", "<"), ("Equals", "="),
     ("Greater Than", ">"), ("GreaterOrLessThan", "<>"), ("Sideways", "Sideways")],
)
def test_operators(operator: str, shown: str) -> None:
    assert text.criterion_line(metric="m", aggregation="", column="", value=7.727,
                               operator=operator, threshold=2, dimensions={}) == (
        f"m = 7.727 {shown} 2")


def test_a_log_criterion_names_its_aggregation() -> None:
    assert text.criterion_line(metric="", aggregation="Count", column="CounterValue", value=0.0,
                               operator="LowerThan", threshold="1",
                               dimensions={"Computer": "web-01"}) == (
        "Count(CounterValue) = 0 < 1 (Computer=web-01)")
    assert text.criterion_line(metric="", aggregation="", column="", value=None, operator="",
                               threshold=None, dimensions={}) == ""


def test_results_health_budget_activity_lines() -> None:
    assert text.results_line(1, {}, "") == "1 result"
    assert text.results_line(None, {"a": "b"}, "") == ""
    assert text.health_line("ServiceHealth", {"title": "VMs - East US", "incidentType": "Incident",
                                              "stage": "Active"}) == (
        "Service Health Incident: VMs - East US (Active)")
    resource = {"title": "Rebooted", "currentHealthStatus": "Available"}
    assert text.health_line("ResourceHealth", resource) == "Resource Health: Rebooted (Available)"
    assert text.health_line("ServiceHealth", {"title": 5}) == ""
    assert text.budget_line({"BudgetName": "b", "SpendingAmount": "12.5", "Budget": 100,
                             "Unit": "EUR"}) == "Budget b: spent 12.5 of 100 EUR"
    assert text.budget_line({"Budget": 100}) == ""
    assert text.activity_line("Microsoft.Insights/actionGroups/write", "Started", "") == (
        "Microsoft.Insights/actionGroups/write: Started")
    assert text.smart_detection_line("A rise", "50%", "") == "A rise: 50%"
