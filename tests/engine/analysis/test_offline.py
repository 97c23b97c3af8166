"""The offline analysis: the shipped catalog (kept in step with its Markdown source) first,
then heuristics on the message."""

from __future__ import annotations

from pathlib import Path

from engine.analysis.catalog import build_catalog, catalog_json, load_catalog
from engine.analysis.offline import analyze_offline
from tests.engine.actions.conftest import adf_event, cluster_event, dbx_task_event

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "playbooks" / "testdata" / "error-catalog.md"


def test_the_shipped_catalog_is_generated_from_the_markdown() -> None:
    committed = (ROOT / "engine" / "analysis" / "catalog.json").read_bytes()
    assert committed == catalog_json(SOURCE.read_text()), (
        "regenerate: python -m engine.analysis.catalog playbooks/testdata/error-catalog.md "
        "> engine/analysis/catalog.json")


def test_catalog_entries() -> None:
    catalog = load_catalog()
    assert len(catalog) == len(build_catalog(SOURCE.read_text())) == 59
    blob = catalog["UserErrorSourceBlobNotExist"]
    assert (blob.family, blob.category, blob.retryable) == ("adf", "data_not_landed", True)
    assert (catalog["UserErrorFileNotFound"].remedy ==
            "wait for the upstream, then retry; ticket if still missing")
    assert (catalog["AZURE_QUOTA_EXCEEDED_EXCEPTION"].category,
            catalog["AZURE_QUOTA_EXCEEDED_EXCEPTION"].retryable) == ("capacity", False)
    assert catalog["MAX_CONCURRENT_RUNS_EXCEEDED"].category == "throttling"
    assert catalog["3200"].category == "permissions"
    assert catalog["2200"].klass == "wrapper"


def test_the_inner_code_wins_over_the_wrapper() -> None:
    event = adf_event(error_code="2200", error_codes=("2200",),
                      message="Failure happened on 'Sink' side. "
                              "ErrorCode=AzureStorageOperationFailedConcurrentWrite,'...'")
    result = analyze_offline(event, "why")
    assert result.notes == ["why", "matched the catalog entry "
                                   "AzureStorageOperationFailedConcurrentWrite"]
    assert (result.category, result.retryable, result.confidence) == (
        "transient_infra", True, 0.8)
    assert result.evidence == [event.message]
    assert result.engine == "offline"


def test_the_message_refines_a_catalog_code() -> None:
    denied = adf_event(error_code="AdlsGen2OperationFailed",
                       message="ADLS Gen2 operation failed for: Operation returned an invalid "
                               "status code 'Forbidden'.")
    assert (analyze_offline(denied, "x").category, analyze_offline(denied, "x").retryable) == (
        "permissions", False)
    drift = adf_event(error_code="SqlOperationFailed",
                      message="A database operation failed. Invalid column name 'region'.")
    assert analyze_offline(drift, "x").category == "code_or_data_bug"


def test_cluster_codes() -> None:
    result = analyze_offline(cluster_event(error_code="CLOUD_PROVIDER_RESOURCE_STOCKOUT"), "x")
    assert result.summary == ("etl-0601-182128-dcbte59m failed with "
                              "CLOUD_PROVIDER_RESOURCE_STOCKOUT, a known capacity failure.")
    assert result.next_steps == ["switch to a fallback node type, then start and repair"]


def test_heuristics_when_no_code_is_known() -> None:
    event = dbx_task_event(error_code="", message="org.apache.spark.sql.AnalysisException: "
                                                  "[UNRESOLVED_COLUMN] cannot resolve 'amount'")
    result = analyze_offline(event, "x")
    assert (result.category, result.retryable, result.confidence) == (
        "code_or_data_bug", False, 0.5)
    assert result.notes == ["x", "no catalog entry; classified by the message"]
    assert result.evidence == [event.message]
    throttled = analyze_offline(adf_event(error_code="", message="HTTP 429 Too Many Requests"),
                                "x")
    assert (throttled.category, throttled.retryable) == ("throttling", True)


def test_nothing_known() -> None:
    result = analyze_offline(adf_event(error_code="", message="Something odd happened"), "x")
    assert (result.category, result.confidence) == ("unknown", 0.2)
    assert result.summary == "pl_ingest_sales_daily failed with an unknown error; the cause is " \
                             "not known."
    assert result.evidence == ["Something odd happened"]
