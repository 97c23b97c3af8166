"""The Synapse workspace development endpoint: pipeline runs (api-version 2020-12-01).

What ``azure-synapse-artifacts``' ArtifactsClient(endpoint=<synapse_url>) calls for pipelines
and pipeline runs, over https. Same run model as Data Factory (sandbox/_pipelines.py). Operation
names: synapse.createRun, synapse.getPipelineRun, synapse.queryPipelineRuns, synapse.cancel,
synapse.queryActivityruns, plus aad.token / aad.openidConfiguration.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox._aad import token_routes
from sandbox._failures import fields
from sandbox._http import Request, Response
from sandbox._pipelines import RunError
from sandbox.adf import AdfEmulator, arm_error, truthy

__all__ = ["SynapseEmulator"]

_SCOPE = "workspace"


class SynapseEmulator(AdfEmulator):
    """Synapse's pipeline-run data plane: Data Factory's run model, errors and scripted
    failures (inherited) behind Synapse's own routes."""

    service = "synapse"

    def routes(self) -> list[tuple[str, str, str, Any]]:
        return [
            ("POST", r"/pipelines/(?P<pipeline>[^/]+)/createRun", "synapse.createRun",
             self._create_run),
            ("GET", r"/pipelineruns/(?P<run>[^/]+)", "synapse.getPipelineRun", self._get_run),
            ("POST", r"/queryPipelineRuns", "synapse.queryPipelineRuns", self._query),
            ("POST", r"/pipelineruns/(?P<run>[^/]+)/cancel", "synapse.cancel", self._cancel),
            ("POST", r"/pipelines/(?P<pipeline>[^/]+)/pipelineruns/(?P<run>[^/]+)"
             r"/queryActivityruns", "synapse.queryActivityruns", self._activity_runs),
            *token_routes(lambda: self.base_url),
        ]

    def _failure_scope(self, body: dict[str, Any]) -> str:
        """A drilled run lives in the one workspace this endpoint serves."""
        fields(body, ("pipeline", "error_code"), ("message",))
        return _SCOPE

    def _create_run(self, request: Request, match: re.Match[str]) -> Response:
        query = request.query
        try:
            run_id = self.state.create(
                _SCOPE,
                match["pipeline"],
                request.body if isinstance(request.body, dict) else None,
                reference_run_id=query.get("referencePipelineRunId") or None,
                is_recovery=truthy(query.get("isRecovery")),
                start_activity=query.get("startActivityName") or None,
                start_from_failure=False,
                fail=request.fail_rerun,
            )
        except RunError as exc:
            return arm_error(exc.status, exc.code, exc.message)
        return Response(202, {"runId": run_id})

    def _get_run(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, self.state.get(_SCOPE, match["run"]))

    def _query(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, self.state.query(_SCOPE, request.json_body()))

    def _cancel(self, request: Request, match: re.Match[str]) -> Response:
        self.state.cancel(_SCOPE, match["run"])
        return Response(200, {})

    def _activity_runs(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, self.state.activity_runs(_SCOPE, match["run"], request.json_body()))
