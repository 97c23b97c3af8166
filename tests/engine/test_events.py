"""The fingerprint groups one failure across runs and days; severities parse from Azure's forms."""

from __future__ import annotations

import pytest

from engine.events import ErrorEvent, fingerprint, mask_message, parse_severity

BLOB = (
    "ErrorCode=UserErrorSourceBlobNotExist,Message=The required Blob is missing. "
    "ContainerName: https://stsales.blob.core.windows.net/raw?sv=2022-11-02&sig=abc{sig}, "
    "path: sales/{year}/{month}/{day}/sales_{stamp}.csv. Run {run} at {ts}, "
    "activity run {guid}, attempt {n}."
)


def _blob(**values: str) -> str:
    defaults = dict(
        sig="AAA", year="2025", month="03", day="14", stamp="20250314", run="20514",
        ts="2025-03-14T02:21:37.4127823Z", guid="9d3a6f10-2b7c-4e58-a1d4-6c8e0f2b5a77", n="1",
    )
    return BLOB.format(**{**defaults, **values})


def test_same_failure_other_ids_dates_and_query_strings_same_fingerprint() -> None:
    today = fingerprint("adf", "pl_ingest_sales_daily", "UserErrorSourceBlobNotExist", _blob())
    tomorrow = fingerprint(
        "adf",
        "PL_Ingest_Sales_Daily",  # the resource name compares case-insensitively
        "UserErrorSourceBlobNotExist",
        _blob(
            sig="ZZZ9", year="2025", month="03", day="15", stamp="20250315", run="1234567",
            ts="2025-03-15T02:20:01Z", guid="0f6c2b7e-3a41-4d8e-9b5a-71c2d4e8f903", n="3",
        ),
    )
    assert today == tomorrow
    assert len(today) == 16


def test_other_error_code_other_fingerprint() -> None:
    base = fingerprint("adf", "pl", "UserErrorSourceBlobNotExist", _blob())
    assert fingerprint("adf", "pl", "UserErrorFileNotFound", _blob()) != base
    assert fingerprint("adf", "other_pipeline", "UserErrorSourceBlobNotExist", _blob()) != base
    assert fingerprint("synapse", "pl", "UserErrorSourceBlobNotExist", _blob()) != base


def test_with_fingerprint_uses_the_events_own_fields() -> None:
    event = ErrorEvent(
        source="adf", kind="pipeline_run", status="firing", dedup_key="k",
        resource="pl", error_code="2200", message="Run 42 failed",
    ).with_fingerprint()
    assert event.fingerprint == fingerprint("adf", "pl", "2200", "Run 43 failed")


def test_mask_message() -> None:
    assert mask_message(
        "Run 42 of   9d3a6f10-2b7c-4e58-a1d4-6c8e0f2b5a77 at 2025-03-14T02:21:37Z "
        "read https://x.blob.core.windows.net/c/2025/03/14/f.csv?sig=abc"
    ) == "Run <n> of <id> at <ts> read https://x.blob.core.windows.net/c/<date>/f.csv?<q>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sev0", 0), ("Sev4", 4), ("sev2", 2), ("SEV3", 3), ("Sev 1", 1), ("0", 0), ("4", 4),
        (" 2 ", 2), (3, 3), ("Sev5", None), ("5", None), (5, None), (-1, None), ("", None),
        (None, None), (True, None), (2.0, None), ("Critical", None),
    ],
)
def test_parse_severity(value: object, expected: int | None) -> None:
    assert parse_severity(value) == expected
