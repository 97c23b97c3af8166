"""The Databricks workspace REST API: jobs, runs, repairs, clusters, libraries, destinations.

Plain http, any bearer token. Any run, job or cluster id asked about exists: a first-sight run
is a three-task job run that FAILED with RUN_EXECUTION_ERROR (task ``transform_orders``, run id
+13, failed; ``publish_gold`` upstream-failed), a first-sight cluster is TERMINATED with
DRIVER_UNREACHABLE. Things move one step per read, never by wall-clock time: a repaired or new
run reads RUNNING, then TERMINATED SUCCESS (FAILED when scripted ``fail_rerun``); a started
cluster reads PENDING, then RUNNING. Errors have the real shape ``{"error_code", "message"}``.

Operation names for scripts are the path after ``/api/2.x/`` with ``/`` replaced by ``.``
(``jobs.runs.repair``, ``jobs.run-now``, ``clusters.start``, ``libraries.cluster-status``), and
``notification-destinations.list|create|get|update``. ``POST /_sandbox/failures/job-run`` and
``/_sandbox/failures/cluster`` make a run that failed, or a cluster that terminated, with a
given code (a drill).
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox import _databricks_data as data
from sandbox._failures import (
    RUN_TERMINATION_CODES,
    ClusterReason,
    cluster_reason,
    fields,
    run_message,
)
from sandbox._http import Emulator, Request, Response

__all__ = ["DatabricksEmulator"]

_API = r"/api/2\.[0-2]/"
_TERMINAL = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}
_BUSY_CLUSTER = {"PENDING", "RESTARTING", "RESIZING", "TERMINATING"}
_FAILED_TASK_OFFSET = 13


class ApiError(Exception):
    """A refusal in the Databricks shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _now_ms() -> int:
    return int(time.time() * 1000)


def _state(life: str, result: str | None = None, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"life_cycle_state": life, "state_message": message,
                             "user_cancelled_or_timedout": False}
    if result is not None:
        state["result_state"] = result
    return state


def _status(state: str, code: str | None = None, kind: str | None = None,
            message: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"state": state}
    if code is not None:
        status["termination_details"] = {"code": code, "type": kind, "message": message}
    return status


_TASK_OUTCOMES = {
    "SUCCESS": (_state("TERMINATED", "SUCCESS"), _status("TERMINATED", "SUCCESS", "SUCCESS")),
    "FAILED": (
        _state("TERMINATED", "FAILED", "Workload failed, see run output for details"),
        _status("TERMINATED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR",
                "Workload failed, see run output for details"),
    ),
    "UPSTREAM_FAILED": (
        _state("TERMINATED", "UPSTREAM_FAILED", "Upstream task failed."),
        _status("TERMINATED", "SKIPPED", "CLIENT_ERROR", "Upstream task failed."),
    ),
    "RUNNING": (_state("RUNNING", None, "In run"), _status("RUNNING")),
    "PENDING": (_state("PENDING", None, ""), _status("PENDING")),
    "CANCELED": (
        _state("TERMINATED", "CANCELED", "Run cancelled."),
        _status("TERMINATED", "CANCELED", "CLIENT_ERROR", "Run cancelled."),
    ),
}


@dataclass
class _State:
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    task_parent: dict[int, int] = field(default_factory=dict)
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, int] = field(default_factory=dict)
    next_id: int = 990000000000

    def new_id(self) -> int:
        self.next_id += 100
        return self.next_id


class DatabricksEmulator(Emulator):
    """A Databricks workspace as the databricks-sdk WorkspaceClient sees it."""

    service = "databricks"

    def new_state(self) -> _State:
        return _State()

    def error(self, status: int, code: str, message: str) -> Response:
        return Response(status, {"error_code": code, "message": message})

    # -- drills: POST /_sandbox/failures/job-run | cluster | given-run ------------------------
    def failures(self) -> dict[str, Any]:
        return {"job-run": self._drill_run, "cluster": self._drill_cluster,
                "given-run": self._given_run}

    def _given_run(self, body: dict[str, Any]) -> dict[str, Any]:
        """The sample's failed run under ``run_id``, a run of job ``job_id``, for an alert
        that names a run of another job than the default one."""
        fields(body, ("run_id", "job_id"), ())
        run_id, job_id = _number(body, "run_id"), _number(body, "job_id")
        return {"run": self._public(self._failed_run(run_id, job_id), False)}

    def _drill_run(self, body: dict[str, Any]) -> dict[str, Any]:
        """A run of job ``job_id`` (``job_name``) that has just failed with
        ``termination_code``: its own code, or a cluster's (the run then ends CLUSTER_ERROR and
        its cluster is terminated with that reason). ``message``: the failed task's error."""
        fields(body, ("termination_code",), ("job_id", "job_name", "message"))
        code = str(body["termination_code"])
        job_id = _number(body, "job_id") if "job_id" in body else self.state.new_id()
        job = self._job(job_id)
        if body.get("job_name"):
            job["settings"]["name"] = str(body["job_name"])
        run = self._failed_run(self.state.new_id())
        self._retarget(run, job_id)
        cluster_id = _new_cluster_id()
        for holder in (run, *run["tasks"]):
            if "cluster_instance" in holder:
                holder["cluster_instance"]["cluster_id"] = cluster_id
        cluster_code = None if code in RUN_TERMINATION_CODES else code
        run_code = "CLUSTER_ERROR" if cluster_code else code
        cluster = self._cluster(cluster_id)
        if cluster_code is not None:
            self._terminate(cluster, cluster_reason(cluster_code, cluster_id), "")
        text, kind = run_message(run_code, cluster_code or "")
        failed = run["tasks"][1]  # transform_orders, as in the sample
        error = str(body.get("message", "")) or (
            data.TASK_ERROR if run_code == "RUN_EXECUTION_ERROR" else text)
        if run_code != "RUN_EXECUTION_ERROR" or "message" in body:
            run["_outputs"][failed["run_id"]] = {"error": error, "error_trace": ""}
        task_text = "Workload failed, see run output for details" \
            if run_code == "RUN_EXECUTION_ERROR" else text
        failed["status"] = _status("TERMINATED", run_code, kind, task_text)
        failed["state"]["state_message"] = task_text
        run["status"] = _status(
            "TERMINATED", run_code, kind,
            f"Task {failed['task_key']} failed with message: {task_text}. This caused all "
            "downstream tasks to get skipped.")
        return {"job_id": job_id, "job_name": job["settings"]["name"], "run_id": run["run_id"],
                "task_key": failed["task_key"], "task_run_id": failed["run_id"],
                "cluster_id": cluster_id, "termination_code": run_code,
                "cluster_termination_code": cluster_code, "message": error,
                "run_page_url": run["run_page_url"]}

    def _drill_cluster(self, body: dict[str, Any]) -> dict[str, Any]:
        """A cluster that has just terminated with ``termination_code`` (its type and
        parameters as Databricks reports that code; ``parameters`` adds to them)."""
        fields(body, ("termination_code",), ("cluster_id", "cluster_name", "message",
                                             "parameters"))
        cluster_id = str(body.get("cluster_id") or _new_cluster_id())
        cluster = self._cluster(cluster_id)
        if body.get("cluster_name"):
            cluster["cluster_name"] = str(body["cluster_name"])
        params = {str(k): str(v) for k, v in (body.get("parameters") or {}).items()}
        reason = cluster_reason(str(body["termination_code"]), cluster_id, params)
        self._terminate(cluster, reason, str(body.get("message", "")))
        return {"cluster": self._cluster_view(cluster)}

    def _terminate(self, cluster: dict[str, Any], reason: ClusterReason, message: str) -> None:
        params = reason.parameters
        cluster.update(
            state="TERMINATED", _phases=[], terminated_time=_now_ms(),
            state_message=message or params.get("databricks_error_message")
            or params.get("azure_error_message") or f"Cluster terminated: {reason.code}",
            termination_reason={"code": reason.code, "type": reason.type,
                                "parameters": dict(params)})
        self._event(cluster["cluster_id"], "TERMINATING",
                    {"reason": copy.deepcopy(cluster["termination_reason"])})

    def routes(self) -> list[tuple[str, str, str, Any]]:
        api = [
            ("GET", "jobs/runs/get", self._runs_get),
            ("GET", "jobs/runs/get-output", self._runs_get_output),
            ("GET", "jobs/runs/list", self._runs_list),
            ("POST", "jobs/runs/repair", self._runs_repair),
            ("POST", "jobs/run-now", self._run_now),
            ("POST", "jobs/runs/cancel", self._runs_cancel),
            ("GET", "jobs/get", self._jobs_get),
            ("POST", "jobs/update", self._jobs_update),
            ("POST", "jobs/reset", self._jobs_reset),
            ("GET", "jobs/list", self._jobs_list),
            ("GET", "clusters/get", self._clusters_get),
            ("POST", "clusters/start", self._clusters_start),
            ("POST", "clusters/restart", self._clusters_restart),
            ("POST", "clusters/edit", self._clusters_edit),
            ("POST", "clusters/events", self._clusters_events),
            ("GET", "clusters/list", self._clusters_list),
            ("GET", "clusters/list-node-types", self._node_types),
            ("GET", "libraries/cluster-status", self._library_status),
        ]
        dest = _API + "notification-destinations"
        return [
            ("GET", r"/\.well-known/databricks-config", "well-known.databricks-config",
             self._host_metadata),
            ("GET", r"/oidc/\.well-known/oauth-authorization-server", "oidc.well-known",
             self._oidc),
            *[(m, _API + re.escape(p), p.replace("/", "."), self._guard(h)) for m, p, h in api],
            ("GET", dest, "notification-destinations.list", self._guard(self._dest_list)),
            ("POST", dest, "notification-destinations.create", self._guard(self._dest_create)),
            ("GET", dest + "/(?P<id>[^/]+)", "notification-destinations.get",
             self._guard(self._dest_get)),
            ("PATCH", dest + "/(?P<id>[^/]+)", "notification-destinations.update",
             self._guard(self._dest_update)),
        ]

    def _guard(self, handler: Any) -> Any:
        """Turn an ApiError raised by a handler into its JSON answer."""

        def run(request: Request, match: re.Match[str]) -> Response:
            try:
                return handler(request, match)
            except ApiError as exc:
                return self.error(exc.status, exc.code, exc.message)

        return run

    # -- discovery ----------------------------------------------------------------------------
    def _host_metadata(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {"oidc_endpoint": f"{self.base_url}/oidc"})

    def _oidc(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {
            "authorization_endpoint": f"{self.base_url}/oidc/v1/authorize",
            "token_endpoint": f"{self.base_url}/oidc/v1/token",
        })

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _int(value: Any, name: str) -> int:
        if value is None or value == "":
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {name}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           f"Invalid value '{value}' for parameter {name}") from None
        if number <= 0:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           f"Invalid value '{value}' for parameter {name}")
        return number

    def _job(self, job_id: int) -> dict[str, Any]:
        job = self.state.jobs.get(job_id)
        if job is None:
            name = "sales_bronze_to_silver" if job_id == data.DEFAULT_JOB_ID else f"job_{job_id}"
            job = {
                "job_id": job_id,
                "creator_user_name": data.CREATOR,
                "run_as_user_name": data.CREATOR,
                "created_time": 1735689600000,
                "settings": data.job_settings(name),
            }
            self.state.jobs[job_id] = job
        return job

    def _new_run(self, run_id: int, job_id: int, task_ids: list[int]) -> dict[str, Any]:
        job = self._job(job_id)
        settings = job["settings"]
        tasks = []
        for task_id, spec in zip(task_ids, settings.get("tasks", []), strict=False):
            task = copy.deepcopy(spec)
            task.pop("email_notifications", None)
            task.pop("timeout_seconds", None)
            task.update({"run_id": task_id, "attempt_number": 0,
                         "run_page_url": f"{data.URL}#job/{job_id}/run/{task_id}",
                         "cluster_instance": {"cluster_id": "0314-020004-k3x9wq2e",
                                              "spark_context_id": "5571220981460395523"}})
            tasks.append(task)
            self.state.task_parent[task_id] = run_id
        run = {
            "job_id": job_id,
            "run_id": run_id,
            "number_in_job": run_id,
            "original_attempt_run_id": run_id,
            "job_run_id": run_id,
            "creator_user_name": data.CREATOR,
            "run_name": settings.get("name", f"job_{job_id}"),
            "schedule": copy.deepcopy(settings.get("schedule")),
            "tasks": tasks,
            "job_clusters": copy.deepcopy(settings.get("job_clusters", [])),
            "cluster_instance": {"cluster_id": "0314-020004-k3x9wq2e",
                                 "spark_context_id": "5571220981460395523"},
            "job_parameters": [{"name": p["name"], "default": p.get("default", ""),
                                "value": p.get("default", "")}
                               for p in settings.get("parameters", [])],
            "setup_duration": 0,
            "execution_duration": 0,
            "cleanup_duration": 0,
            "queue_duration": 0,
            "trigger": "PERIODIC",
            "run_type": "JOB_RUN",
            "run_page_url": f"{data.URL}#job/{job_id}/run/{run_id}",
            "attempt_number": 0,
            "_phases": [],
            "_repairs": [],
            "_outputs": {},
        }
        self.state.runs[run_id] = run
        return run

    def _failed_run(self, run_id: int, job_id: int = data.DEFAULT_JOB_ID) -> dict[str, Any]:
        """The sample's failed run, under the id asked for (of job ``job_id``)."""
        ids = [run_id + 7, run_id + _FAILED_TASK_OFFSET, run_id + 19]
        run = self._new_run(run_id, job_id, ids)
        start = 1741917600000
        for task, outcome, (begin, took) in zip(
            run["tasks"], ("SUCCESS", "FAILED", "UPSTREAM_FAILED"),
            ((start, 192000), (start + 192000, 689000), (0, 0)), strict=False,
        ):
            self._set_task(task, outcome)
            task.update({"start_time": begin, "end_time": begin + took if begin else 0,
                         "run_duration": took, "setup_duration": 0, "execution_duration": took,
                         "cleanup_duration": 0})
            task["notebook_task"]["base_parameters"] = {"run_date": "2025-03-14"}
            if outcome == "UPSTREAM_FAILED":
                task.pop("cluster_instance", None)
        run["_outputs"][ids[1]] = {"error": data.TASK_ERROR,
                                   "error_trace": data.TASK_ERROR_TRACE}
        run["job_parameters"] = [{"name": "run_date", "default": "", "value": "2025-03-14"}]
        run.update({"start_time": start, "end_time": start + 898000, "run_duration": 898000,
                    "state": _state("TERMINATED", "FAILED"),
                    "status": _status(
                        "TERMINATED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR",
                        "Task transform_orders failed with message: Workload failed, see run "
                        "output for details. This caused all downstream tasks to get skipped.")})
        return run

    @staticmethod
    def _set_task(task: dict[str, Any], outcome: str) -> None:
        state, status = _TASK_OUTCOMES[outcome]
        task["state"] = copy.deepcopy(state)
        task["status"] = copy.deepcopy(status)

    def _run(self, run_id: int) -> dict[str, Any]:
        run = self.state.runs.get(run_id)
        return run if run is not None else self._failed_run(run_id)

    def _advance(self, run: dict[str, Any]) -> None:
        """One read moves a started run one phase: RUNNING, then its outcome."""
        phases = run["_phases"]
        if not phases:
            return
        phase = phases.pop(0) if len(phases) > 1 else phases[0]
        self._apply(run, phase)

    def _apply(self, run: dict[str, Any], phase: str) -> None:
        active = run.get("_active", [])
        now = _now_ms()
        if phase == "RUNNING":
            run["state"] = _state("RUNNING", None, "In run")
            run["status"] = _status("RUNNING")
            for task in run["tasks"]:
                if task["task_key"] in active:
                    self._set_task(task, "RUNNING")
            return
        run["_phases"] = []
        failing = None
        if phase == "FAILED":
            failing = "transform_orders" if "transform_orders" in active else active[0]
        seen_failure = False
        for task in run["tasks"]:
            if task["task_key"] not in active:
                continue
            if task["task_key"] == failing:
                self._set_task(task, "FAILED")
                run["_outputs"][task["run_id"]] = {"error": data.TASK_ERROR,
                                                   "error_trace": data.TASK_ERROR_TRACE}
                seen_failure = True
            elif seen_failure:
                self._set_task(task, "UPSTREAM_FAILED")
            else:
                self._set_task(task, "SUCCESS")
                run["_outputs"].pop(task["run_id"], None)
            task["end_time"] = now
        run["end_time"] = now
        if phase == "FAILED":
            run["state"] = _state("TERMINATED", "FAILED")
            run["status"] = _status(
                "TERMINATED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR",
                f"Task {failing} failed with message: Workload failed, see run output for "
                "details. This caused all downstream tasks to get skipped.")
        else:
            run["state"] = _state("TERMINATED", "SUCCESS")
            run["status"] = _status("TERMINATED", "SUCCESS", "SUCCESS")
        if run["_repairs"]:
            last = run["_repairs"][-1]
            last["state"] = copy.deepcopy(run["state"])
            last["status"] = copy.deepcopy(run["status"])
            last["end_time"] = now

    def _public(self, run: dict[str, Any], include_history: bool) -> dict[str, Any]:
        view = {k: copy.deepcopy(v) for k, v in run.items() if not k.startswith("_")}
        if include_history:
            original = {
                "type": "ORIGINAL",
                "start_time": run.get("start_time", 0),
                "end_time": run.get("_original_end", run.get("end_time", 0)),
                "state": copy.deepcopy(run.get("_original_state", run["state"])),
                "status": copy.deepcopy(run.get("_original_status", run["status"])),
                "task_run_ids": run.get("_original_tasks", [t["run_id"] for t in run["tasks"]]),
            }
            view["repair_history"] = [original, *copy.deepcopy(run["_repairs"])]
        return view

    # -- runs ---------------------------------------------------------------------------------
    def _runs_get(self, request: Request, match: re.Match[str]) -> Response:
        run_id = self._int(request.query.get("run_id"), "run_id")
        parent = self.state.task_parent.get(run_id)
        if parent is not None and run_id not in self.state.runs:
            return Response(200, self._task_as_run(run_id, parent))
        run = self._run(run_id)
        self._advance(run)
        history = request.query.get("include_history", "").lower() == "true"
        return Response(200, self._public(run, history))

    def _task_as_run(self, task_id: int, parent_id: int) -> dict[str, Any]:
        parent = self.state.runs[parent_id]
        task = next(t for t in parent["tasks"] if t["run_id"] == task_id)
        view = copy.deepcopy(task)
        view.update({
            "job_id": parent["job_id"],
            "job_run_id": parent_id,
            "number_in_job": task_id,
            "original_attempt_run_id": task_id,
            "creator_user_name": parent["creator_user_name"],
            "run_name": task["task_key"],
            "trigger": parent["trigger"],
            "run_type": "JOB_RUN",
            "description": "",
        })
        return view

    def _runs_get_output(self, request: Request, match: re.Match[str]) -> Response:
        run_id = self._int(request.query.get("run_id"), "run_id")
        if run_id not in self.state.runs and run_id not in self.state.task_parent:
            guess = run_id - _FAILED_TASK_OFFSET
            if guess > 0 and guess not in self.state.runs:
                self._failed_run(guess)
        parent_id = self.state.task_parent.get(run_id)
        if parent_id is None:
            run = self.state.runs.get(run_id)
            if run is None:
                raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Run {run_id} does not exist.")
            if len(run["tasks"]) > 1:
                raise ApiError(
                    400, "INVALID_PARAMETER_VALUE",
                    "Retrieving the output of runs with multiple tasks is not supported. Please "
                    "retrieve the output of each individual task run instead.")
            parent_id, run_id = run_id, run["tasks"][0]["run_id"]
        parent = self.state.runs[parent_id]
        answer: dict[str, Any] = {"metadata": self._task_as_run(run_id, parent_id)}
        output = parent["_outputs"].get(run_id)
        if output:
            answer.update(output)
            answer["notebook_output"] = {}
        else:
            answer["notebook_output"] = {"result": "", "truncated": False}
        return Response(200, answer)

    def _runs_list(self, request: Request, match: re.Match[str]) -> Response:
        query = request.query
        job_id = self._int(query["job_id"], "job_id") if query.get("job_id") else None
        if job_id is not None and not any(r["job_id"] == job_id
                                          for r in self.state.runs.values()):
            run = self._failed_run(self.state.new_id())
            self._retarget(run, job_id)
        runs = list(self.state.runs.values())
        if job_id is not None:
            runs = [r for r in runs if r["job_id"] == job_id]
        if query.get("completed_only", "").lower() == "true":
            runs = [r for r in runs if r["state"]["life_cycle_state"] in _TERMINAL]
        if query.get("active_only", "").lower() == "true":
            runs = [r for r in runs if r["state"]["life_cycle_state"] not in _TERMINAL]
        if query.get("start_time_from"):
            runs = [r for r in runs if r.get("start_time", 0) >= int(query["start_time_from"])]
        if query.get("start_time_to"):
            runs = [r for r in runs if r.get("start_time", 0) <= int(query["start_time_to"])]
        runs.sort(key=lambda r: (r.get("start_time", 0), r["run_id"]), reverse=True)
        expand = query.get("expand_tasks", "").lower() == "true"
        views = []
        for run in runs:
            view = self._public(run, False)
            if not expand:
                view.pop("tasks", None)
                view.pop("job_clusters", None)
            views.append(view)
        page, token = _page(views, query, default_limit=20, max_limit=25)
        answer: dict[str, Any] = {"runs": page, "has_more": token is not None}
        if token is not None:
            answer["next_page_token"] = token
        return Response(200, answer)

    def _retarget(self, run: dict[str, Any], job_id: int) -> None:
        job = self._job(job_id)
        run["job_id"] = job_id
        run["run_name"] = job["settings"].get("name", f"job_{job_id}")
        run["start_time"] = _now_ms() - 898000
        run["end_time"] = run["start_time"] + 898000
        run["run_page_url"] = f"{data.URL}#job/{job_id}/run/{run['run_id']}"

    def _runs_repair(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json_body()
        run_id = self._int(body.get("run_id"), "run_id")
        run = self._run(run_id)
        if run["state"]["life_cycle_state"] not in _TERMINAL:
            raise ApiError(400, "INVALID_STATE",
                           f"Run {run_id} is not in a terminal state and cannot be repaired.")
        if run["_repairs"]:
            latest = run["_repairs"][-1]["id"]
            if body.get("latest_repair_id") != latest:
                raise ApiError(
                    400, "INVALID_PARAMETER_VALUE",
                    f"The latest repair ID {body.get('latest_repair_id')} does not match the "
                    f"latest repair ID {latest} of run {run_id}. Retry with the latest repair ID.")
        keys = [t["task_key"] for t in run["tasks"]]
        if body.get("rerun_all_failed_tasks"):
            rerun = [t["task_key"] for t in run["tasks"]
                     if t["state"].get("result_state") not in (None, "SUCCESS")]
        elif body.get("rerun_tasks"):
            rerun = list(body["rerun_tasks"])
            unknown = [k for k in rerun if k not in keys]
            if unknown:
                raise ApiError(400, "INVALID_PARAMETER_VALUE",
                               f"Task {unknown[0]} does not exist in run {run_id}.")
            if body.get("rerun_dependent_tasks"):
                rerun = self._with_dependents(run, rerun)
        else:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           "Either rerun_tasks or rerun_all_failed_tasks must be specified.")
        if not rerun:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           f"Run {run_id} has no failed tasks to repair.")
        if not run["_repairs"]:
            run["_original_state"] = copy.deepcopy(run["state"])
            run["_original_status"] = copy.deepcopy(run["status"])
            run["_original_end"] = run.get("end_time", 0)
            run["_original_tasks"] = [t["run_id"] for t in run["tasks"]]
        repair_id = self.state.new_id() + 1
        new_ids = []
        for task in run["tasks"]:
            if task["task_key"] in rerun:
                self.state.task_parent.pop(task["run_id"], None)
                task["run_id"] = self.state.new_id()
                task["attempt_number"] = task.get("attempt_number", 0) + 1
                task["start_time"] = _now_ms()
                self._set_task(task, "PENDING")
                self.state.task_parent[task["run_id"]] = run_id
                new_ids.append(task["run_id"])
        run["_active"] = rerun
        run["_phases"] = ["RUNNING", "FAILED" if request.fail_rerun else "SUCCESS"]
        run["state"] = _state("PENDING", None, "")
        run["status"] = _status("PENDING")
        run["_repairs"].append({
            "type": "REPAIR",
            "id": repair_id,
            "start_time": _now_ms(),
            "end_time": 0,
            "state": _state("PENDING"),
            "status": _status("PENDING"),
            "task_run_ids": new_ids,
        })
        return Response(200, {"repair_id": repair_id})

    @staticmethod
    def _with_dependents(run: dict[str, Any], keys: list[str]) -> list[str]:
        chosen = list(keys)
        changed = True
        while changed:
            changed = False
            for task in run["tasks"]:
                ups = [d["task_key"] for d in task.get("depends_on", [])]
                if task["task_key"] not in chosen and any(u in chosen for u in ups):
                    chosen.append(task["task_key"])
                    changed = True
        return chosen

    def _run_now(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json_body()
        job_id = self._int(body.get("job_id"), "job_id")
        token = body.get("idempotency_token")
        if token and token in self.state.idempotency:
            run_id = self.state.idempotency[token]
            return Response(200, {"run_id": run_id, "number_in_job": run_id})
        job = self._job(job_id)
        run_id = self.state.new_id()
        ids = [run_id + i + 1 for i in range(len(job["settings"].get("tasks", [])))]
        run = self._new_run(run_id, job_id, ids)
        for task in run["tasks"]:
            self._set_task(task, "PENDING")
        params = body.get("job_parameters") or {}
        for param in run["job_parameters"]:
            if param["name"] in params:
                param["value"] = params[param["name"]]
        run.update({"trigger": "ONE_TIME", "start_time": _now_ms(),
                    "state": _state("PENDING", None, ""), "status": _status("PENDING"),
                    "_active": [t["task_key"] for t in run["tasks"]],
                    "_phases": ["RUNNING", "FAILED" if request.fail_rerun else "SUCCESS"]})
        if token:
            self.state.idempotency[token] = run_id
        return Response(200, {"run_id": run_id, "number_in_job": run_id})

    def _runs_cancel(self, request: Request, match: re.Match[str]) -> Response:
        run_id = self._int(request.json_body().get("run_id"), "run_id")
        run = self._run(run_id)
        if run["state"]["life_cycle_state"] not in _TERMINAL:
            run["_phases"] = []
            run["state"] = copy.deepcopy(_TASK_OUTCOMES["CANCELED"][0])
            run["status"] = copy.deepcopy(_TASK_OUTCOMES["CANCELED"][1])
            for task in run["tasks"]:
                if task["state"]["life_cycle_state"] not in _TERMINAL:
                    self._set_task(task, "CANCELED")
        return Response(200, {})

    # -- jobs ---------------------------------------------------------------------------------
    def _jobs_get(self, request: Request, match: re.Match[str]) -> Response:
        job_id = self._int(request.query.get("job_id"), "job_id")
        return Response(200, copy.deepcopy(self._job(job_id)))

    def _jobs_update(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json_body()
        job = self._job(self._int(body.get("job_id"), "job_id"))
        settings = job["settings"]
        for key, value in (body.get("new_settings") or {}).items():
            if key in {"tasks", "job_clusters"}:
                ident = "task_key" if key == "tasks" else "job_cluster_key"
                current = {item[ident]: item for item in settings.get(key, [])}
                for item in value:
                    current[item[ident]] = item
                settings[key] = list(current.values())
            else:
                settings[key] = value
        for path in body.get("fields_to_remove") or []:
            settings.pop(path, None)
        return Response(200, {})

    def _jobs_reset(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json_body()
        job = self._job(self._int(body.get("job_id"), "job_id"))
        if not isinstance(body.get("new_settings"), dict):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "Missing required field: new_settings")
        job["settings"] = body["new_settings"]
        return Response(200, {})

    def _jobs_list(self, request: Request, match: re.Match[str]) -> Response:
        jobs = sorted(self.state.jobs.values(), key=lambda j: j["job_id"])
        name = request.query.get("name")
        if name:
            jobs = [j for j in jobs if j["settings"].get("name") == name]
        expand = request.query.get("expand_tasks", "").lower() == "true"
        views = []
        for job in jobs:
            view = copy.deepcopy(job)
            if not expand:
                view["settings"].pop("tasks", None)
                view["settings"].pop("job_clusters", None)
            views.append(view)
        page, token = _page(views, request.query, default_limit=20, max_limit=100)
        answer: dict[str, Any] = {"jobs": page, "has_more": token is not None}
        if token is not None:
            answer["next_page_token"] = token
        return Response(200, answer)

    # -- clusters -----------------------------------------------------------------------------
    def _cluster(self, cluster_id: Any) -> dict[str, Any]:
        if not cluster_id or not isinstance(cluster_id, str):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "Missing required field: cluster_id")
        cluster = self.state.clusters.get(cluster_id)
        if cluster is None:
            cluster = data.cluster_record(cluster_id)
            cluster["_phases"] = []
            self.state.clusters[cluster_id] = cluster
            self.state.events[cluster_id] = data.cluster_events(cluster_id)
        return cluster

    def _event(self, cluster_id: str, kind: str, details: dict[str, Any]) -> None:
        events = self.state.events[cluster_id]
        stamp = max(_now_ms(), events[-1]["timestamp"] + 1 if events else 0)
        events.append({"cluster_id": cluster_id, "timestamp": stamp, "type": kind,
                       "details": details})

    def _cluster_view(self, cluster: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in cluster.items() if not k.startswith("_")}

    def _clusters_get(self, request: Request, match: re.Match[str]) -> Response:
        cluster = self._cluster(request.query.get("cluster_id"))
        phases = cluster["_phases"]
        if phases:
            phase = phases.pop(0) if len(phases) > 1 else phases[0]
            self._cluster_phase(cluster, phase)
        return Response(200, self._cluster_view(cluster))

    def _cluster_phase(self, cluster: dict[str, Any], phase: str) -> None:
        cid = cluster["cluster_id"]
        previous = cluster["state"]
        cluster["state"] = phase
        if phase == "RUNNING":
            cluster["_phases"] = []
            cluster["state_message"] = ""
            cluster.pop("termination_reason", None)
            cluster.pop("terminated_time", None)
            if previous != "RUNNING":
                self._event(cid, "RUNNING", {"current_num_workers": cluster.get("num_workers", 0),
                                             "target_num_workers": cluster.get("num_workers", 0)})
        elif phase == "TERMINATED":
            cluster["_phases"] = []
            message = "Azure error: the requested VM size is currently not available."
            cluster["state_message"] = message
            cluster["terminated_time"] = _now_ms()
            cluster["termination_reason"] = {
                "code": "CLOUD_PROVIDER_LAUNCH_FAILURE", "type": "CLOUD_FAILURE",
                "parameters": {"azure_error_code": "SkuNotAvailable",
                               "azure_error_message": message}}
            if previous != "TERMINATED":
                self._event(cid, "TERMINATING", {"reason": cluster["termination_reason"]})
        else:
            cluster["state_message"] = {"PENDING": "Finding instances for new nodes, acquiring "
                                        "more instances if necessary",
                                        "RESTARTING": "Restarting Spark"}.get(phase, "")

    def _launch(self, cluster: dict[str, Any], first: str, fail: bool) -> None:
        cluster["state"] = first
        cluster["state_message"] = ""
        cluster["_phases"] = [first, "TERMINATED" if fail else "RUNNING"]
        cluster["start_time"] = _now_ms()
        self._event(cluster["cluster_id"], "RESTARTING" if first == "RESTARTING" else "STARTING",
                    {"user": data.CREATOR})

    @staticmethod
    def _invalid_state(cluster: dict[str, Any]) -> ApiError:
        return ApiError(400, "INVALID_STATE",
                        f"Cluster {cluster['cluster_id']} is in unexpected state "
                        f"{cluster['state'].capitalize()}.")

    def _clusters_start(self, request: Request, match: re.Match[str]) -> Response:
        cluster = self._cluster(request.json_body().get("cluster_id"))
        if cluster["state"] not in {"TERMINATED", "ERROR"}:
            raise self._invalid_state(cluster)
        self._launch(cluster, "PENDING", request.fail_rerun)
        return Response(200, {})

    def _clusters_restart(self, request: Request, match: re.Match[str]) -> Response:
        cluster = self._cluster(request.json_body().get("cluster_id"))
        if cluster["state"] in _BUSY_CLUSTER:
            raise self._invalid_state(cluster)
        first = "RESTARTING" if cluster["state"] == "RUNNING" else "PENDING"
        self._launch(cluster, first, request.fail_rerun)
        return Response(200, {})

    def _clusters_edit(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json_body()
        cluster = self._cluster(body.get("cluster_id"))
        if not body.get("spark_version"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "Missing required field: spark_version")
        for key in ("node_type_id", "driver_node_type_id"):
            node = body.get(key)
            if node is not None and node not in data.NODE_TYPES:
                raise ApiError(400, "INVALID_PARAMETER_VALUE",
                               f"Node type {node} is not supported. Supported node types: "
                               f"{', '.join(data.NODE_TYPES)}")
        if cluster["state"] in _BUSY_CLUSTER:
            raise self._invalid_state(cluster)
        previous = {k: cluster.get(k) for k in body if k != "cluster_id"}
        for key, value in body.items():
            cluster[key] = value
        if body.get("node_type_id") and not body.get("driver_node_type_id"):
            cluster["driver_node_type_id"] = body["node_type_id"]
        self._event(cluster["cluster_id"], "EDITED", {
            "user": data.CREATOR,
            "previous_attributes": previous,
            "attributes": {k: v for k, v in body.items() if k != "cluster_id"},
        })
        if cluster["state"] == "RUNNING":
            self._launch(cluster, "RESTARTING", request.fail_rerun)
        return Response(200, {})

    def _clusters_events(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json_body()
        cluster = self._cluster(body.get("cluster_id"))
        events = list(self.state.events[cluster["cluster_id"]])
        if body.get("start_time"):
            events = [e for e in events if e["timestamp"] >= int(body["start_time"])]
        if body.get("end_time"):
            events = [e for e in events if e["timestamp"] <= int(body["end_time"])]
        if body.get("event_types"):
            events = [e for e in events if e["type"] in body["event_types"]]
        events.sort(key=lambda e: e["timestamp"], reverse=body.get("order", "DESC") == "DESC")
        limit = int(body.get("limit") or body.get("page_size") or 50)
        page, token = _page(events, {**body, "limit": limit}, default_limit=50, max_limit=500)
        answer: dict[str, Any] = {"events": copy.deepcopy(page), "total_count": len(events)}
        if token is not None:
            answer["next_page"] = {**{k: v for k, v in body.items() if k != "page_token"},
                                   "offset": _decode_token(token), "limit": limit}
            answer["next_page_token"] = token
        return Response(200, answer)

    def _clusters_list(self, request: Request, match: re.Match[str]) -> Response:
        views = [self._cluster_view(c) for c in self.state.clusters.values()]
        query = dict(request.query)
        if "page_size" in query:
            query["limit"] = query["page_size"]
        page, token = _page(views, query, default_limit=100, max_limit=100)
        answer: dict[str, Any] = {"clusters": page}
        if token is not None:
            answer["next_page_token"] = token
        return Response(200, answer)

    def _node_types(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, {"node_types": [
            {"node_type_id": n, "memory_mb": 28672, "num_cores": 8.0, "description": n,
             "instance_type_id": n, "category": "General Purpose"} for n in data.NODE_TYPES]})

    def _library_status(self, request: Request, match: re.Match[str]) -> Response:
        cluster = self._cluster(request.query.get("cluster_id"))
        return Response(200, data.library_statuses(cluster["cluster_id"]))

    # -- notification destinations ------------------------------------------------------------
    def _dest_view(self, dest: dict[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(dest)
        for conf in view.get("config", {}).values():
            if isinstance(conf, dict):
                for secret in ("url", "password", "integration_key"):
                    if secret in conf:
                        conf.pop(secret)
                        conf[f"{secret}_set"] = True
        return view

    def _dest_list(self, request: Request, match: re.Match[str]) -> Response:
        results = [{"id": d["id"], "display_name": d["display_name"],
                    "destination_type": d["destination_type"]}
                   for d in self.state.destinations.values()]
        page, token = _page(results, request.query, default_limit=100, max_limit=100)
        answer: dict[str, Any] = {"results": page}
        if token is not None:
            answer["next_page_token"] = token
        return Response(200, answer)

    def _dest_create(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json_body()
        config = body.get("config") or {}
        if len(config) != 1:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           "Exactly one destination config must be set.")
        kind = next(iter(config))
        dest = {"id": str(uuid.uuid4()), "display_name": body.get("display_name", ""),
                "destination_type": kind.upper(), "config": config}
        self.state.destinations[dest["id"]] = dest
        return Response(200, self._dest_view(dest))

    def _dest(self, match: re.Match[str]) -> dict[str, Any]:
        dest = self.state.destinations.get(match["id"])
        if dest is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST",
                           f"Notification destination {match['id']} does not exist.")
        return dest

    def _dest_get(self, request: Request, match: re.Match[str]) -> Response:
        return Response(200, self._dest_view(self._dest(match)))

    def _dest_update(self, request: Request, match: re.Match[str]) -> Response:
        dest = self._dest(match)
        body = request.json_body()
        if "display_name" in body:
            dest["display_name"] = body["display_name"]
        if body.get("config"):
            dest["config"] = body["config"]
        return Response(200, self._dest_view(dest))


def _new_cluster_id() -> str:
    """An id of the form Databricks gives (``0314-020004-k3x9wq2e``), never seen before."""
    moment = time.gmtime()
    return f"{time.strftime('%m%d', moment)}-{time.strftime('%H%M%S', moment)}-" \
           f"{uuid.uuid4().hex[:8]}"


def _encode_token(offset: int) -> str:
    return f"offset-{offset}"


def _decode_token(token: str) -> int:
    if not token.startswith("offset-") or not token[7:].isdigit():
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid page token: {token}")
    return int(token[7:])


def _page(items: list[Any], query: dict[str, Any], *, default_limit: int,
          max_limit: int) -> tuple[list[Any], str | None]:
    """Offset/limit or page_token paging; returns the page and the next token (or None)."""
    limit = int(query.get("limit") or default_limit)
    if not 1 <= limit <= max_limit:
        raise ApiError(400, "INVALID_PARAMETER_VALUE",
                       f"limit must be between 1 and {max_limit}, got {limit}")
    offset = int(query.get("offset") or 0)
    if query.get("page_token"):
        offset = _decode_token(query["page_token"])
    page = items[offset : offset + limit]
    token = _encode_token(offset + limit) if offset + limit < len(items) else None
    return page, token


def _number(body: dict[str, Any], name: str) -> int:
    """``body[name]``, a whole number (JSON number or digits); ValueError naming it else."""
    if not str(body[name]).isdigit():
        raise ValueError(f"{name}: expected a number, got {body[name]!r}")
    return int(body[name])
