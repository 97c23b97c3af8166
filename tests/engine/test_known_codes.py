"""The declaration of error codes (engine/known_codes.py) against the SDK's lists and against
every code the parsers take from every sample."""

from __future__ import annotations

from databricks.sdk.service import compute, jobs

from engine.known_codes import (
    DATABRICKS_RUN_CODES,
    DATABRICKS_TERMINATION_CODES,
    is_plausible,
    known_codes,
)
from tests.receivers.test_attributes import PARSED


def test_the_databricks_codes_are_the_sdks() -> None:
    # if this fails after an SDK upgrade, copy the new enum values into engine/known_codes.py
    assert {c.value for c in compute.TerminationReasonCode} == DATABRICKS_TERMINATION_CODES
    assert {c.value for c in jobs.TerminationCodeCode} == DATABRICKS_RUN_CODES


def test_every_code_of_every_sample_is_plausible_for_its_source() -> None:
    codes = {(event.source, code) for _, event in PARSED
             for code in (event.error_code, *event.error_codes) if code}
    assert len(codes) >= 40
    assert sorted(c for c in codes if not is_plausible(*c)) == []


def test_catalog_aliases_and_storage_codes_are_known() -> None:
    adf = known_codes("adf")
    assert {"UserErrorSourceBlobNotExist", "UserErrorSourceBlobNotExists", "2200",
            "AuthorizationPermissionMismatch", "PathNotFound"} <= adf
    assert known_codes("synapse") == adf
    assert {"DRIVER_UNREACHABLE", "RUN_EXECUTION_ERROR", "SkuNotAvailable"} <= \
        known_codes("databricks")
    assert "DRIVER_UNREACHABE" not in known_codes("databricks")
    assert known_codes("functions") == known_codes("generic") == frozenset()


def test_functions_codes_are_exception_types_and_generic_codes_anything() -> None:
    assert is_plausible("functions", "Microsoft.Data.SqlClient.SqlException")
    assert is_plausible("functions", "System.InvalidOperationException")
    assert is_plausible("functions", "KeyError")
    assert not is_plausible("functions", "SqlTimeout")
    assert is_plausible("generic", "whatever-a-query-says")
    assert not is_plausible("databricks", "2200")
