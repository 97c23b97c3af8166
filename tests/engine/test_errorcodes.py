"""unwrap_adf_error and the "Operation on target" helpers, on ADF's real message shapes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.text.errorcodes import (
    TargetFailure,
    canonical_code,
    innermost_target_failure,
    split_target_failure,
    unwrap_adf_error,
)

SOURCE_2200 = (
    "Failure happened on 'Source' side. ErrorCode=UserErrorSourceBlobNotExist,"
    "'Type=Microsoft.DataTransfer.Common.Shared.HybridDeliveryException,"
    "Message=The required Blob is missing. ContainerName: https://stsales.blob.core.windows.net/raw,"
    " path: sales/2025/03/14/sales.csv.,Source=Microsoft.DataTransfer.ClientLibrary,'"
)
SINK_2200 = (
    "Failure happened on 'Sink' side. ErrorCode=AdlsGen2OperationFailed,"
    "'Type=Microsoft.DataTransfer.Common.Shared.HybridDeliveryException,"
    "Message=ADLS Gen2 operation failed for: Operation returned an invalid status code "
    "'Forbidden'. Account: 'stlake'. ErrorCode: 'AuthorizationPermissionMismatch'. "
    "Message: 'This request is not authorized to perform this operation using this "
    "permission.'.,Source=Microsoft.DataTransfer.ClientLibrary,'"
)


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (
            "2200",
            SOURCE_2200,
            ("UserErrorSourceBlobNotExist", ("2200", "UserErrorSourceBlobNotExist")),
        ),
        (
            "2200",
            SINK_2200,
            (
                "AdlsGen2OperationFailed",
                ("2200", "AdlsGen2OperationFailed", "AuthorizationPermissionMismatch"),
            ),
        ),
        ("2200", "Failure happened on 'Source' side.", ("2200", ("2200",))),
        ("SqlFailedToConnect", "Cannot connect to SQL Database: 'sql-prod'.",
         ("SqlFailedToConnect", ("SqlFailedToConnect",))),
        (" 2108 ", "", ("2108", ("2108",))),
        ("", "", ("", ())),
        ("", SOURCE_2200, ("UserErrorSourceBlobNotExist", ("UserErrorSourceBlobNotExist",))),
        # The inner code repeated as the outer one is listed once.
        ("UserErrorSourceBlobNotExist", SOURCE_2200,
         ("UserErrorSourceBlobNotExist", ("UserErrorSourceBlobNotExist",))),
    ],
    ids=["source-2200", "sink-2200-nested", "2200-no-inner", "plain", "stripped", "empty",
         "message-only", "same-code"],
)
def test_unwrap_adf_error(code: str, message: str, expected: tuple[str, tuple[str, ...]]) -> None:
    assert unwrap_adf_error(code, message) == expected


def test_unwrap_a_pipeline_level_message() -> None:
    message = f"Operation on target Copy_RawSales_To_Bronze failed: {SOURCE_2200}"
    assert unwrap_adf_error("2200", message) == (
        "UserErrorSourceBlobNotExist", ("2200", "UserErrorSourceBlobNotExist")
    )


def test_split_target_failure() -> None:
    message = f"Operation on target Copy_RawSales_To_Bronze failed: {SOURCE_2200}"
    assert split_target_failure(message) == TargetFailure("Copy_RawSales_To_Bronze", SOURCE_2200)


@pytest.mark.parametrize(
    "message",
    [SOURCE_2200, "", "Operation on target  failed: x", "The pipeline failed: Operation on"],
)
def test_split_target_failure_other_messages(message: str) -> None:
    assert split_target_failure(message) is None


def test_innermost_target_failure_follows_nesting() -> None:
    message = (
        "Operation on target ForEach_Region failed: Activity failed because an inner activity "
        "failed; Inner activity name: Copy_Region, Error: Operation on target Copy_Region "
        "failed: The required Blob is missing."
    )
    assert split_target_failure(message).activity == "ForEach_Region"
    assert innermost_target_failure(message) == TargetFailure(
        "Copy_Region", "The required Blob is missing."
    )


def test_innermost_target_failure_without_nesting() -> None:
    assert innermost_target_failure("Operation on target A failed: boom") == TargetFailure(
        "A", "boom"
    )
    assert innermost_target_failure("boom") is None


def test_canonical_code() -> None:
    assert canonical_code("UserErrorSourceBlobNotExists") == "UserErrorSourceBlobNotExist"
    assert canonical_code("UserErrorSourceBlobNotExist") == "UserErrorSourceBlobNotExist"
    assert canonical_code("2200") == "2200"



_OLD_TARGET_FAILURE = re.compile(r"Operation on target (.+?) failed: ?(.*)", re.DOTALL)


def _old_split(message: str) -> TargetFailure | None:
    """What split_target_failure returned when it matched with a regex."""
    match = _OLD_TARGET_FAILURE.match(message.strip())
    if match is None or not match.group(1).strip():
        return None
    return TargetFailure(match.group(1).strip(), match.group(2).strip())


def _old_innermost(message: str) -> TargetFailure | None:
    """What innermost_target_failure returned when it searched with a regex per level."""
    found = _old_split(message)
    while found is not None:
        nested = _OLD_TARGET_FAILURE.search(found.inner)
        if nested is None or not nested.group(1).strip():
            break
        found = TargetFailure(nested.group(1).strip(), nested.group(2).strip())
    return found


@settings(max_examples=2000)
@given(st.lists(st.sampled_from(["Operation on target ", "Operation on target", " failed:",
                                 " failed: ", "failed:", "Copy1", " ", "\n", ":", "x y"]),
                max_size=10).map("".join))
def test_target_failures_are_found_as_the_regex_found_them(message: str) -> None:
    assert split_target_failure(message) == _old_split(message)
    assert innermost_target_failure(message) == _old_innermost(message)


def test_deep_nesting_is_followed_to_the_last_activity_within_the_bound() -> None:
    # 36 characters a level: the first TEXT_LIMIT (65,536) hold 1,820 whole levels
    message = "".join(f"Operation on target F{i:06d} failed: " for i in range(100_000))
    assert innermost_target_failure(message) == TargetFailure("F001819", "Operation on tar")
