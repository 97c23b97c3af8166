"""Azure Data Factory through Azure Resource Manager: pipeline runs, reruns, activity runs.

Serves the ARM paths that ``azure-mgmt-datafactory``'s DataFactoryManagementClient calls
(``base_url=<adf_url>``), over https (ARM bearer auth refuses plain http). Any subscription,
resource group, factory, pipeline and run id exists; see sandbox/_pipelines.py for the run
model. Errors have the ARM shape ``{"error": {"code", "message"}}``. Operation names for
scripts: adf.createRun, adf.getPipelineRun, adf.queryPipelineRuns, adf.cancel,
adf.queryActivityruns, adf.getFactory, adf.getPipeline, aad.token, aad.openidConfiguration.
``POST /_sandbox/failures/pipeline-run`` makes a run that failed with a given error code.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox._aad import token_routes
from sandbox._failures import activity_error, fields
from sandbox._http import Emulator, Fault, Request, Response
from sandbox._pipelines import PipelineRuns, RunError, public

__all__ = ["AdfEmulator", "arm_error", "truthy"]

_FACTORY = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.DataFactory/factories/(?P<factory>[^/]+)"
)
_ARM_CODES = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "NotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def arm_error(status: int, code: str, message: str) -> Response:
    """An error in the ARM shape."""
    return Response(status, {"error": {"code": code, "message": message}})


def truthy(value: str | None) -> bool:
    """Query booleans as the Azure SDKs send them ("true"/"True")."""
    return (value or "").lower() == "true"


class AdfEmulator(Emulator):
    """Data Factory's pipeline-run API as ARM serves it."""

    service = "adf"
    ignore_case = True

    def new_state(self) -> PipelineRuns:
        return PipelineRuns()

    def error(self, status: int, code: str, message: str) -> Response:
        return arm_error(status, code, message)

    def scripted_error(self, fault: Fault) -> Response:
        if fault.body is not None:
            return Response(fault.status or 500, fault.body)
        status = fault.status or 500
        code = _ARM_CODES.get(status, "InternalServerError")
        return arm_error(status, code, f"Scripted failure {status} ({code}).")

    def failures(self) -> dict[str, Any]:
        return {"pipeline-run": self._failed_run, "given-run": self._given_run}

    def _failure_scope(self, body: dict[str, Any]) -> str:
        """Where a drilled run lives: its factory (and the factory's subscription and group)."""
        fields(body, ("pipeline", "error_code", "subscription", "resource_group", "factory"),
               ("message",))
        return f"{body['subscription']}/{body['resource_group']}/{body['factory']}".lower()

    def _failed_run(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sandbox/failures/pipeline-run``: a run of ``pipeline`` that has just
        failed with ``error_code`` (and ``message``, else the catalog's): the run as
        ``pipelineruns/{id}`` shows it and its failed activity."""
        scope = self._failure_scope(body)
        error = activity_error(str(body["error_code"]), str(body.get("message", "")))
        run = self.state.fail(scope, str(body["pipeline"]), error)
        return {"run": run, "activity": error._asdict()}

    def _given_run(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sandbox/failures/given-run``: the sample's failed run under ``run_id``, a
        run of ``pipeline`` (the first factory that reads it has it), for an alert that names
        a run of another pipeline than the default one."""
        fields(body, ("run_id", "pipeline"), ())
        run = self.state.seed("", str(body["run_id"]), str(body["pipeline"]))
        return {"run": public(run.record)}

    def routes(self) -> list[tuple[str, str, str, Any]]:
        return [
            ("POST", _FACTORY + r"/pipelines/(?P<pipeline>[^/]+)/createRun", "adf.createRun",
             self._create_run),
            ("GET", _FACTORY + r"/pipelineruns/(?P<run>[^/]+)", "adf.getPipelineRun",
             self._get_run),
            ("POST", _FACTORY + r"/queryPipelineRuns", "adf.queryPipelineRuns", self._query),
            ("POST", _FACTORY + r"/pipelineruns/(?P<run>[^/]+)/cancel", "adf.cancel",
             self._cancel),
            ("POST", _FACTORY + r"/pipelineruns/(?P<run>[^/]+)/queryActivityruns",
             "adf.queryActivityruns", self._activity_runs),
            ("GET", _FACTORY, "adf.getFactory", self._get_factory),
            ("GET", _FACTORY + r"/pipelines/(?P<pipeline>[^/]+)", "adf.getPipeline",
             self._get_pipeline),
            *token_routes(lambda: self.base_url),
        ]

    @staticmethod
    def _scope(match: re.Match[str]) -> str:
        return f"{match['sub']}/{match['rg']}/{match['factory']}".lower()

    @staticmethod
    def _needs_version(request: Request) -> Response | None:
        if "api-version" not in request.query:
            return arm_error(400, "MissingApiVersionParameter",
                             "The api-version query parameter (?api-version=) is required for "
                             "all requests.")
        return None

    def _create_run(self, request: Request, match: re.Match[str]) -> Response:
        if (refused := self._needs_version(request)) is not None:
            return refused
        query = request.query
        try:
            run_id = self.state.create(
                self._scope(match),
                match["pipeline"],
                request.body if isinstance(request.body, dict) else None,
                reference_run_id=query.get("referencePipelineRunId") or None,
                is_recovery=truthy(query.get("isRecovery")),
                start_activity=query.get("startActivityName") or None,
                start_from_failure=truthy(query.get("startFromFailure")),
                fail=request.fail_rerun,
            )
        except RunError as exc:
            return arm_error(exc.status, exc.code, exc.message)
        return Response(200, {"runId": run_id})

    def _get_run(self, request: Request, match: re.Match[str]) -> Response:
        if (refused := self._needs_version(request)) is not None:
            return refused
        run = self.state.get(self._scope(match), match["run"])
        scope_id = request.path.split("/pipelineruns/")[0]
        return Response(200, {**run, "id": f"{scope_id}/pipelineruns/{match['run']}"})

    def _query(self, request: Request, match: re.Match[str]) -> Response:
        if (refused := self._needs_version(request)) is not None:
            return refused
        body = request.json_body()
        for required in ("lastUpdatedAfter", "lastUpdatedBefore"):
            if not body.get(required):
                return arm_error(400, "BadRequest", f"The '{required}' field is required.")
        return Response(200, self.state.query(self._scope(match), body))

    def _cancel(self, request: Request, match: re.Match[str]) -> Response:
        if (refused := self._needs_version(request)) is not None:
            return refused
        self.state.cancel(self._scope(match), match["run"])
        return Response(200, {})

    def _activity_runs(self, request: Request, match: re.Match[str]) -> Response:
        if (refused := self._needs_version(request)) is not None:
            return refused
        return Response(200, self.state.activity_runs(self._scope(match), match["run"],
                                                      request.json_body()))

    def _get_factory(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {
            "id": request.path,
            "name": match["factory"],
            "type": "Microsoft.DataFactory/factories",
            "location": "westeurope",
            "properties": {"provisioningState": "Succeeded", "version": "2018-06-01"},
        })

    def _get_pipeline(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {
            "id": request.path,
            "name": match["pipeline"],
            "type": "Microsoft.DataFactory/factories/pipelines",
            "properties": {
                "activities": [
                    {"name": "Lookup_Watermark", "type": "Lookup", "typeProperties": {}},
                    {"name": "Copy_RawSales_To_Bronze", "type": "Copy", "typeProperties": {},
                     "dependsOn": [{"activity": "Lookup_Watermark",
                                    "dependencyConditions": ["Succeeded"]}]},
                ],
                "parameters": {"run_date": {"type": "String"}},
            },
        })
