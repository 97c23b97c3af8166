"""Pipeline runs as Azure Data Factory and Synapse keep them (both speak the same run model).

Any run id asked about exists: first sight creates a Failed run shaped like
tests/testdata/samples/cloud-api/adf-rest-pipelinerun-failed.json. A new run (createRun)
advances one phase per read — InProgress, then Succeeded (or Failed when scripted) — so tests
are deterministic without clocks. A recovery run shares the runGroupId of its reference run and
takes over ``isLatest``.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox._failures import ActivityError

__all__ = ["PAGE_SIZE", "PipelineRuns", "RunError"]

#: Runs per page of queryPipelineRuns: small, so that clients exercise continuationToken.
PAGE_SIZE = 5

_DEFAULT_PIPELINE = "pl_ingest_sales_daily"
_BLOB_MISSING = (
    "Failure happened on 'Source' side. ErrorCode=UserErrorSourceBlobNotExist,"
    "'Type=Microsoft.DataTransfer.Common.Shared.HybridDeliveryException,Message=The required "
    "Blob is missing. ContainerName: https://stcontosoraw.blob.core.windows.net/raw, path: "
    "sales/2025/03/14/sales_20250314.csv.,Source=Microsoft.DataTransfer.ClientLibrary,'"
)
_COPY = "Copy_RawSales_To_Bronze"
_LOOKUP = "Lookup_Watermark"


class RunError(Exception):
    """A request the real service refuses: carries the HTTP status and the ARM error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def iso(moment: datetime) -> str:
    """ADF's timestamp format: seven fractional digits and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_iso(text: str) -> datetime:
    """Read ADF/ISO timestamps (any number of fractional digits, Z or offset)."""
    text = text.strip().replace("Z", "+00:00")
    head, plus, tail = text.partition("+")
    if "." in head:
        main, frac = head.split(".", 1)
        head = f"{main}.{frac[:6]}"
    moment = datetime.fromisoformat(head + plus + tail)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _Run:
    record: dict[str, Any]
    scope: str
    phases: list[str] = field(default_factory=list)
    start_from_failure: bool = False
    error: ActivityError | None = None
    """The failed activity of a run made by :meth:`PipelineRuns.fail` (and of its reruns);
    None: the sample's missing blob."""


class PipelineRuns:
    """The runs of every factory (``scope``) one emulator has seen."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._order: list[str] = []

    # -- creation -----------------------------------------------------------------------------
    def _add(self, run: _Run) -> _Run:
        if run.record["runId"] not in self._runs:
            self._order.append(run.record["runId"])
        self._runs[run.record["runId"]] = run
        return run

    def _failed(self, scope: str, run_id: str, pipeline: str, ended: datetime) -> _Run:
        started = ended - timedelta(milliseconds=55128)
        return self._add(
            _Run(
                {
                    "runId": run_id,
                    "runGroupId": run_id,
                    "pipelineName": pipeline,
                    "parameters": {"run_date": started.strftime("%Y-%m-%d")},
                    "invokedBy": {
                        "id": "08584689117233459601404286574CU12",
                        "name": "tr_daily_0200",
                        "invokedByType": "ScheduleTrigger",
                    },
                    "runStart": iso(started),
                    "runEnd": iso(ended),
                    "durationInMs": 55128,
                    "status": "Failed",
                    "message": f"Operation on target {_COPY} failed: {_BLOB_MISSING}",
                    "lastUpdated": iso(ended),
                    "annotations": [],
                    "runDimensions": {},
                    "isLatest": True,
                },
                scope,
            )
        )

    def fail(self, scope: str, pipeline: str, error: ActivityError) -> dict[str, Any]:
        """A run of ``pipeline`` that has just failed with ``error`` (a drill); its record."""
        run_id = str(uuid.uuid4())
        run = self._failed(scope, run_id, pipeline, datetime.now(UTC))
        run.error = error
        run.record["message"] = _run_message(error)
        run.record["invokedBy"] = {"id": uuid.uuid4().hex, "name": "tr_daily_0200",
                                   "invokedByType": "ScheduleTrigger"}
        return public(run.record)

    def lookup(self, scope: str, run_id: str) -> _Run:
        """The run with this id, created Failed (as in the sample) on first sight."""
        run = self._runs.get(run_id)
        if run is None:
            run = self.seed(scope, run_id, _DEFAULT_PIPELINE)
        elif not run.scope:
            run.scope = scope  # seeded without a factory: the first one to ask has it
        return run

    def seed(self, scope: str, run_id: str, pipeline: str) -> _Run:
        """A Failed run of ``pipeline`` under ``run_id`` (as in the sample); ``scope`` ""
        lets the first factory that reads it have it."""
        return self._failed(scope, run_id, pipeline,
                            datetime(2025, 3, 14, 2, 14, 44, 120338, tzinfo=UTC))

    def create(
        self,
        scope: str,
        pipeline: str,
        parameters: dict[str, Any] | None,
        *,
        reference_run_id: str | None,
        is_recovery: bool,
        start_activity: str | None,
        start_from_failure: bool,
        fail: bool,
    ) -> str:
        """Start a run (a rerun when ``reference_run_id``); returns its runId."""
        if is_recovery and not reference_run_id:
            raise RunError(400, "BadRequest",
                           "referencePipelineRunId is required when isRecovery is true.")
        now = datetime.now(UTC)
        run_id = str(uuid.uuid4())
        group = run_id
        params = dict(parameters or {})
        error = None
        if reference_run_id:
            reference = self.lookup(scope, reference_run_id)
            error = reference.error
            if not parameters:
                params = dict(reference.record.get("parameters") or {})
            if is_recovery:
                group = reference.record["runGroupId"]
                for other in self._runs.values():
                    if other.record["runGroupId"] == group:
                        other.record["isLatest"] = False
        record = {
            "runId": run_id,
            "runGroupId": group,
            "pipelineName": pipeline,
            "parameters": params,
            "invokedBy": {
                "id": uuid.uuid4().hex,
                "name": "Manual",
                "invokedByType": "Manual",
            },
            "runStart": iso(now),
            "runEnd": None,
            "durationInMs": None,
            "status": "InProgress",
            "message": "",
            "lastUpdated": iso(now),
            "annotations": [],
            "runDimensions": {},
            "isLatest": True,
        }
        if is_recovery:
            record["invokedBy"]["invokedByType"] = "Rerun" if start_activity is None else "Manual"
        run = self._add(_Run(record, scope, ["InProgress", "Failed" if fail else "Succeeded"],
                             start_from_failure, error))
        run.record["_startActivity"] = start_activity
        return run_id

    def seed_for_pipeline(self, scope: str, pipeline: str) -> None:
        """First sight of a pipeline in a query: one recent Failed run of it."""
        if any(r.record["pipelineName"] == pipeline and r.scope == scope
               for r in self._runs.values()):
            return
        run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}/{pipeline}"))
        self._failed(scope, run_id, pipeline, datetime.now(UTC) - timedelta(minutes=1))

    # -- reading ------------------------------------------------------------------------------
    def _advance(self, run: _Run) -> None:
        """One read moves a run to its next phase; the last phase stays."""
        if not run.phases:
            return
        status = run.phases.pop(0) if len(run.phases) > 1 else run.phases[0]
        self._set_status(run, status)

    def _set_status(self, run: _Run, status: str) -> None:
        record = run.record
        record["status"] = status
        now = datetime.now(UTC)
        record["lastUpdated"] = iso(now)
        if status in {"Succeeded", "Failed", "Cancelled"}:
            run.phases = []
            record["runEnd"] = iso(now)
            start = parse_iso(record["runStart"])
            record["durationInMs"] = int((now - start).total_seconds() * 1000)
            if status == "Failed":
                record["message"] = _run_message(run.error)

    def get(self, scope: str, run_id: str) -> dict[str, Any]:
        """GET pipelineruns/{runId}: the public view after advancing one phase."""
        run = self.lookup(scope, run_id)
        self._advance(run)
        return public(run.record)

    def cancel(self, scope: str, run_id: str) -> None:
        """Cancel an in-progress run; a finished run stays as it is."""
        run = self.lookup(scope, run_id)
        if run.record["status"] in {"InProgress", "Queued"}:
            self._set_status(run, "Cancelled")
            run.record["message"] = "Pipeline run cancelled by user."

    def query(self, scope: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """queryPipelineRuns: filters, time window, ordering and continuation."""
        filters = body.get("filters") or []
        for flt in filters:
            if flt.get("operand") == "PipelineName" and flt.get("operator") in {"Equals", "In"}:
                for name in flt.get("values") or []:
                    self.seed_for_pipeline(scope or "", name)
        after = parse_iso(body["lastUpdatedAfter"]) if body.get("lastUpdatedAfter") else None
        before = parse_iso(body["lastUpdatedBefore"]) if body.get("lastUpdatedBefore") else None
        found = []
        for run_id in self._order:
            run = self._runs[run_id]
            if scope is not None and run.scope not in ("", scope):  # "": given, not yet read
                continue
            updated = parse_iso(run.record["lastUpdated"])
            if (after and updated < after) or (before and updated > before):
                continue
            if all(_matches(run.record, flt) for flt in filters):
                found.append(run.record)
        order = (body.get("orderBy") or [{"orderBy": "RunStart", "order": "DESC"}])[0]
        key = {"RunStart": "runStart", "RunEnd": "runEnd", "PipelineName": "pipelineName",
               "Status": "status"}.get(order.get("orderBy", "RunStart"), "runStart")
        found.sort(key=lambda r: r.get(key) or "", reverse=order.get("order") == "DESC")
        start = int(body.get("continuationToken") or 0)
        page = found[start : start + PAGE_SIZE]
        answer: dict[str, Any] = {"value": [public(r) for r in page]}
        if start + PAGE_SIZE < len(found):
            answer["continuationToken"] = str(start + PAGE_SIZE)
        return answer

    def activity_runs(self, scope: str, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """queryActivityruns: the sample's Lookup and Copy activities in the run's status."""
        run = self.lookup(scope, run_id)
        record = run.record
        activities = []
        status = record["status"]
        copy_status = {"Succeeded": "Succeeded", "Failed": "Failed", "Cancelled": "Cancelled"}.get(
            status, "InProgress"
        )
        failing = run.error or ActivityError(_COPY, "Copy", "2200", _BLOB_MISSING, "UserError")
        if not run.start_from_failure and record.get("_startActivity") in (None, _LOOKUP) \
                and failing.activity != _LOOKUP:
            activities.append(_activity(record, _LOOKUP, "Lookup", "Succeeded", failing))
        activities.append(_activity(record, failing.activity, failing.activity_type,
                                    copy_status, failing))
        filters = body.get("filters") or []
        value = [a for a in activities if all(_matches(a, flt) for flt in filters)]
        return {"value": value}


def _run_message(error: ActivityError | None) -> str:
    """A failed pipeline run's own message: the failed activity's, behind its name."""
    if error is None:
        return f"Operation on target {_COPY} failed: {_BLOB_MISSING}"
    return f"Operation on target {error.activity} failed: {error.message}"


def _activity(run: dict[str, Any], name: str, kind: str, status: str,
              error: ActivityError) -> dict[str, Any]:
    failed = status == "Failed"
    return {
        "activityRunEnd": run.get("runEnd"),
        "activityName": name,
        "activityRunStart": run["runStart"],
        "activityType": kind,
        "durationInMs": 43434 if kind == "Copy" else 6595,
        "retryAttempt": None,
        "error": {
            "errorCode": error.error_code if failed else "",
            "message": error.message if failed else "",
            "failureType": error.failure_type if failed else "",
            "target": name,
            "details": [],
        },
        "activityRunId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run['runId']}/{name}")),
        "input": {},
        "linkedServiceName": "",
        "output": {"firstRow": {"last_loaded": "2025-03-13"}} if kind == "Lookup" else {
            "dataRead": 0, "dataWritten": 0, "filesRead": 0, "filesWritten": 0,
            "errors": [], "effectiveIntegrationRuntime":
            "AutoResolveIntegrationRuntime (West Europe)",
        },
        "userProperties": {},
        "pipelineName": run["pipelineName"],
        "pipelineRunId": run["runId"],
        "status": status,
    }


_OPERANDS = {
    "PipelineName": "pipelineName",
    "Status": "status",
    "RunGroupId": "runGroupId",
    "ActivityName": "activityName",
    "ActivityType": "activityType",
    "RunStart": "runStart",
    "RunEnd": "runEnd",
}


def _matches(record: dict[str, Any], flt: dict[str, Any]) -> bool:
    operand = flt.get("operand", "")
    values = [str(v) for v in flt.get("values") or []]
    if operand == "LatestOnly":
        return not values or values[0].lower() != "true" or bool(record.get("isLatest"))
    value = str(record.get(_OPERANDS.get(operand, operand)))
    operator = flt.get("operator", "Equals")
    if operator in {"Equals", "In"}:
        return value in values
    if operator in {"NotEquals", "NotIn"}:
        return value not in values
    return True


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A copy without the emulator's private keys."""
    return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}
