"""The demo's scenario: real-shaped failures delivered over HTTP, the engine driven by hand,
and each step's outcome read back from real state (the database, the sandbox's call log, the
webhook sink), never from what the step meant to do.

The payloads are the shipped samples (``cli.samples``) with fresh ids and, where a
step needs another pipeline, job or cluster, those names changed; Databricks faults are
scripted on the sandbox over HTTP (``POST /_sandbox/script``): the engine never imports it.
"""

from __future__ import annotations

import copy
import json
import secrets
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from cli.drive import Drive
from cli.send_test import fresh_payload, load_sample
from engine.clock import WarpClock
from engine.store import incidents as incidents_store
from engine.store.db import Database

__all__ = ["STEP_NAMES", "Harness", "Step", "resume_after", "run_steps"]

DBX_API = "/api/2.2"
DBX_CLUSTERS = "/api/2.1"
WORKSPACE_ID = "1234567890123456"
TOKEN = {"Authorization": "Bearer dapi-sandbox-token"}


class Step(msgspec.Struct, frozen=True):
    """One step of the scenario: what should happen and what the real state shows."""

    name: str
    expected: str
    actual: str
    ok: bool


@dataclass(kw_only=True)
class Harness(Drive):
    """What the steps use besides the driver: the sandbox (its URLs and CA) and its log."""

    sandbox: dict[str, str]
    tls: httpx.Client | None = None

    def __post_init__(self) -> None:
        # ADF and Synapse are https with the sandbox's own CA.
        context = ssl.create_default_context(cafile=self.sandbox["ca_file"])
        self.tls = httpx.Client(timeout=30.0, verify=context)

    def calls(self, service: str) -> list[dict[str, Any]]:
        """The sandbox's log of requests to ``service`` (adf, databricks, openai, ...)."""
        base = self.sandbox[f"{service}_url"].removesuffix("/v1")
        response = self._client(service).get(f"{base}/_sandbox/calls",
                                             params={"service": service})
        response.raise_for_status()
        return list(response.json()["calls"])

    def posts_to(self, service: str, suffix: str,
                 where: Callable[[dict[str, Any]], bool] = lambda c: True) -> list[dict[str, Any]]:
        """The sandbox's POSTs to ``service`` whose path ends with ``suffix``."""
        return [c for c in self.calls(service)
                if c["method"] == "POST" and c["path"].endswith(suffix) and where(c)]

    # -- scripting the sandbox -----------------------------------------------------------------
    def failure(self, service: str, kind: str, **body: Any) -> dict[str, Any]:
        """Make a failure in the sandbox (``POST /_sandbox/failures/<kind>``): ``given-run``
        gives the cloud the failed run a step's alert is about (``run_id`` and ``pipeline`` or
        ``job_id``), as the engine checks that a run is of the pipeline or job the alert names
        before it acts."""
        base = self.sandbox[f"{service}_url"]
        response = self._client(service).post(f"{base}/_sandbox/failures/{kind}", json=body)
        response.raise_for_status()
        return dict(response.json())

    def script(self, service: str, operation: str, **fields: Any) -> None:
        base = self.sandbox[f"{service}_url"].removesuffix("/v1")
        response = self._client(service).post(f"{base}/_sandbox/script",
                                              json={"operation": operation, **fields})
        response.raise_for_status()

    def dbx_get(self, path: str, **params: Any) -> dict[str, Any]:
        """A Databricks read from the sandbox, as the API answers it."""
        response = self.http.get(f"{self.sandbox['databricks_url']}{path}", params=params,
                                 headers=TOKEN)
        response.raise_for_status()
        return dict(response.json())

    def _client(self, service: str) -> httpx.Client:
        url = self.sandbox[f"{service}_url"]
        return self.tls if url.startswith("https:") and self.tls is not None else self.http

    def close(self) -> None:
        self.http.close()
        if self.tls is not None:
            self.tls.close()


# -- payloads ------------------------------------------------------------------------------


def adf_alert(h: Harness, pipeline: str) -> tuple[dict[str, Any], str]:
    """The ADF log alert sample for ``pipeline`` with fresh ids, its run a failed run of
    ``pipeline`` in the sandbox; returns it and its run id."""
    payload = fresh_payload("adf", "log", h.clock.now())  # the engine's time: not "old"
    context = payload["data"]["alertContext"]
    context["properties"]["PipelineName"] = pipeline
    for condition in context["condition"]["allOf"]:
        for dimension in condition["dimensions"]:
            if dimension["name"] == "PipelineName":
                dimension["value"] = pipeline
    run_id = context["properties"]["PipelineRunId"]
    h.failure("adf", "given-run", run_id=run_id, pipeline=pipeline)
    return payload, run_id


def dbx_job_failure(h: Harness, job_id: int, name: str) -> tuple[dict[str, Any], int]:
    """The Databricks job notification sample for job ``job_id`` with a fresh run id, a
    failed run of that job in the sandbox."""
    payload = fresh_payload("databricks", "job", h.clock.now())
    payload["job"] = {"job_id": str(job_id), "name": name}
    run_id = int(payload["run"]["run_id"])
    h.failure("databricks", "given-run", run_id=run_id, job_id=job_id)
    return payload, run_id


def cluster_failed_to_start(cluster_id: str, name: str, code: str, kind: str,
                            parameters: dict[str, str], now_ms: int) -> dict[str, Any]:
    """The in-house ``cluster.failed_to_start`` body (the seed sample's shape) at ``now_ms``."""
    payload = copy.deepcopy(load_sample("databricks", "seed"))
    del payload["job"], payload["run"]
    payload.update(event="cluster.failed_to_start", event_type="cluster.failed_to_start",
                   timestamp=now_ms)
    payload["cluster"] = {"cluster_id": cluster_id, "cluster_name": name, "state": "TERMINATED",
                          "state_message": "",
                          "termination_reason": {"code": code, "type": kind,
                                                 "parameters": parameters}}
    return payload


def _run_on_failed_cluster(h: Harness, run_id: int, job_id: int, cluster_id: str,
                           *, all_purpose: bool) -> None:
    """Script the next runs/get and get-output: the sandbox's own run ``run_id``, whose
    ``transform_orders`` task ended CLUSTER_ERROR because its cluster went away."""
    run = h.dbx_get(f"{DBX_API}/jobs/runs/get", run_id=run_id, include_history="true")
    message = (f"Cluster {cluster_id} was terminated during the run. Check the cluster's "
               "termination reason.")
    details = {"code": "CLUSTER_ERROR", "type": "CLOUD_FAILURE", "message": message}
    run["job_id"] = job_id
    run["status"]["termination_details"] = details
    failed = None
    for task in run["tasks"]:
        if "cluster_instance" in task:
            task["cluster_instance"]["cluster_id"] = cluster_id
        if all_purpose:
            task.pop("job_cluster_key", None)
            task["existing_cluster_id"] = cluster_id
        if task["task_key"] == "transform_orders":
            task["status"]["termination_details"] = details
            task["state"]["state_message"] = message
            failed = task["run_id"]
    if all_purpose:
        run.pop("job_clusters", None)
    run["cluster_instance"]["cluster_id"] = cluster_id
    output = h.dbx_get(f"{DBX_API}/jobs/runs/get-output", run_id=failed)
    output["error"] = message
    output.pop("error_trace", None)
    h.script("databricks", "jobs.runs.get", body=run)
    h.script("databricks", "jobs.runs.get-output", body=output)


def _cluster_terminated(h: Harness, cluster_id: str, code: str,
                        parameters: dict[str, str]) -> None:
    """Script the next clusters/get: the sandbox's cluster, terminated with ``code``."""
    cluster = h.dbx_get(f"{DBX_CLUSTERS}/clusters/get", cluster_id=cluster_id)
    cluster["state"] = "TERMINATED"
    cluster["termination_reason"] = {"code": code, "type": "CLOUD_FAILURE",
                                     "parameters": parameters}
    h.script("databricks", "clusters.get", body=cluster)


def _fresh_id(base: int) -> int:
    return base + secrets.randbelow(10_000_000) * 100


def _state(incident: incidents_store.Incident | None) -> str:
    if incident is None:
        return "no incident"
    reason = incident.reason if len(incident.reason) <= 90 else \
        incident.reason[:40] + " ... " + incident.reason[-45:]
    return f"{incident.rule_id or 'no rule'}: {incident.state} ({reason})"


def resume_after(db: Database, clock: WarpClock) -> None:
    """On a database that already holds a demo's incidents, start a day after the last one,
    so that the earlier run's cooldowns and 24-hour budgets do not hold this one back."""
    latest = max((i.updated_ms for i in incidents_store.list_incidents(db, limit=100)),
                 default=0)
    ahead_ms = latest - int(clock.now().timestamp() * 1000)
    if latest:
        clock.advance(max(0, ahead_ms) / 1000 + 25 * 3600)


def _query(call: dict[str, Any], name: str) -> str:
    return str(call.get("query", {}).get(name, ""))


def _body(call: dict[str, Any], name: str) -> str:
    body = call.get("body")
    return str(body.get(name, "")) if isinstance(body, dict) else ""


# -- steps ---------------------------------------------------------------------------------


def blob_missing(h: Harness) -> Step:
    pipeline = "pl_ingest_sales_daily"
    payload, run_id = adf_alert(h, pipeline)
    event_id = h.post("azure-monitor", payload)["event_id"]

    def reruns() -> list[dict[str, Any]]:
        return h.posts_to("adf", "/createRun",
                          lambda c: _query(c, "referencePipelineRunId") == run_id)

    h.run()
    h.tick(60)
    early = len(reruns())

    def resolved() -> bool:
        found = h.incident(event_id)
        return found is not None and found.state in ("resolved", "escalated", "ignored")

    h.settle(resolved, step_s=120)
    incident = h.incident(event_id)
    calls = reruns()
    waited = ""
    if incident is not None:
        rows = [r for r in h.actions(incident.id) if r.action == "adf.rerun_pipeline"]
        if rows and rows[0].started_ms:
            waited = f", started {(rows[0].started_ms - rows[0].created_ms) // 60000} min " \
                     "after the alert"
    from_failure = [c for c in calls if _query(c, "startFromFailure") == "true"
                    and _query(c, "isRecovery") == "true"]
    ok = (early == 0 and len(calls) == 1 and len(from_failure) == 1 and incident is not None
          and (incident.state, incident.reason) == ("resolved", "verified"))
    return Step(
        "blob-missing",
        f"{pipeline}: UserErrorSourceBlobNotExist -> wait 15 min, rerun from the failed "
        "activity, verified",
        f"reruns after 1 min: {early}; reruns: {len(calls)} (from failure: "
        f"{len(from_failure)}){waited}; {_state(incident)}",
        ok)


def duplicate_webhook(h: Harness) -> Step:
    pipeline = "pl_ingest_customers_daily"
    payload, run_id = adf_alert(h, pipeline)
    since = h.now_ms()
    first = h.post("azure-monitor", payload)
    second = h.post("azure-monitor", payload)

    def done() -> bool:
        found = h.incident(first["event_id"])
        return found is not None and found.state in ("resolved", "escalated")

    h.settle(done, step_s=120)
    calls = h.posts_to("adf", "/createRun",
                       lambda c: _query(c, "referencePipelineRunId") == run_id)
    incidents = incidents_store.list_incidents(h.db, resource=pipeline, since_ms=since,
                                               limit=10)
    ok = (second["duplicate"] is True and second["event_id"] == first["event_id"]
          and len(calls) == 1 and len(incidents) == 1)
    return Step(
        "duplicate-webhook",
        f"{pipeline}: the same alert delivered twice -> one event, one incident, one rerun",
        f"second delivery duplicate={second['duplicate']}, same event: "
        f"{second['event_id'] == first['event_id']}; incidents: {len(incidents)}; "
        f"reruns in the sandbox: {len(calls)}",
        ok)


def resolved_cancels(h: Harness) -> Step:
    pipeline = "pl_ingest_returns_daily"
    firing, run_id = adf_alert(h, pipeline)
    event_id = h.post("azure-monitor", firing)["event_id"]
    h.run()
    resolved = copy.deepcopy(firing)
    resolved["data"]["essentials"]["monitorCondition"] = "Resolved"
    resolved["data"]["essentials"]["resolvedDateTime"] = \
        firing["data"]["essentials"]["firedDateTime"]
    h.post("azure-monitor", resolved)
    h.run()
    for _ in range(9):  # well past the rule's 15-minute delay
        h.tick(120)
        h.run()
    incident = h.incident(event_id)
    calls = h.posts_to("adf", "/createRun",
                       lambda c: _query(c, "referencePipelineRunId") == run_id)
    cancelled = h.records(incident.id, "action_cancelled") if incident else []
    ok = (incident is not None and incident.state == "resolved" and len(cancelled) == 1
          and not calls)
    return Step(
        "resolved-cancels-rerun",
        f"{pipeline}: the alert resolves before the delayed rerun -> rerun cancelled, none sent",
        f"{_state(incident)}; actions cancelled: "
        f"{', '.join(c['action'] for c in cancelled) or 'none'}; reruns in the sandbox: "
        f"{len(calls)} (18 min later)",
        ok)


def _run_lost_its_cluster(h: Harness, job_id: int, name: str, cluster_id: str, code: str,
                          parameters: dict[str, str], *, all_purpose: bool,
                          ) -> tuple[incidents_store.Incident | None, list[dict[str, Any]]]:
    """Post job ``name``'s run that failed because its cluster terminated with ``code``,
    settle, and return the incident and the sandbox's repairs of that run."""
    payload, run_id = dbx_job_failure(h, job_id, name)
    _run_on_failed_cluster(h, run_id, job_id, cluster_id, all_purpose=all_purpose)
    _cluster_terminated(h, cluster_id, code, parameters)
    event_id = h.post("databricks-monitor", payload)["event_id"]

    def done() -> bool:
        found = h.incident(event_id)
        return found is not None and found.state in ("resolved", "escalated", "ignored")

    h.settle(done, step_s=60)
    repairs = h.posts_to("databricks", "/jobs/runs/repair",
                         lambda c: _body(c, "run_id") == str(run_id))
    return h.incident(event_id), repairs


def instance_unreachable(h: Harness) -> Step:
    job_id, name = _fresh_id(816305900000), "orders_gold_hourly"
    cluster_id = "0314-020004-unr34chb"
    incident, repairs = _run_lost_its_cluster(
        h, job_id, name, cluster_id, "INSTANCE_UNREACHABLE",
        {"instance_id": "e4a1c0f9a3c44d3e9c1f2b7d8a6e5c4b",
         "databricks_error_message": "Instance became unreachable."}, all_purpose=True)
    restarts = h.posts_to("databricks", "/clusters/restart",
                          lambda c: _body(c, "cluster_id") == cluster_id)
    ok = (incident is not None and incident.rule_id == "dbx-run-node-lost-all-purpose"
          and (incident.state, incident.reason) == ("resolved", "verified")
          and len(restarts) == 1 and len(repairs) == 1)
    return Step(
        "instance-unreachable",
        f"job {name} on an all-purpose cluster that lost an instance (INSTANCE_UNREACHABLE) "
        "-> restart the cluster, repair the run, verified",
        f"cluster restarts: {len(restarts)}; run repairs: {len(repairs)}; {_state(incident)}",
        ok)


def instance_type_unavailable(h: Harness) -> Step:
    job_id, name = _fresh_id(816305800000), "features_daily"
    cluster_id = "0314-020004-st0ck0ut"
    incident, repairs = _run_lost_its_cluster(
        h, job_id, name, cluster_id, "CLOUD_PROVIDER_RESOURCE_STOCKOUT",
        {"azure_error_code": "SkuNotAvailable",
         "azure_error_message": "The requested VM size Standard_DS4_v2 is currently not "
                                "available in location 'westeurope'."}, all_purpose=False)
    updates = h.posts_to("databricks", "/jobs/update",
                         lambda c: _body(c, "job_id") == str(job_id))
    job = h.dbx_get(f"{DBX_API}/jobs/get", job_id=job_id)
    nodes = [c["new_cluster"]["node_type_id"] for c in job["settings"].get("job_clusters", [])]
    ok = (incident is not None and incident.rule_id == "dbx-run-instance-type-unavailable"
          and (incident.state, incident.reason) == ("resolved", "verified")
          and len(updates) == 1 and len(repairs) == 1 and nodes == ["Standard_D4ds_v5"])
    return Step(
        "instance-type-unavailable",
        f"job {name}: node type out of stock (CLOUD_PROVIDER_RESOURCE_STOCKOUT) -> job cluster "
        "moved to the fallback Standard_D4ds_v5, run repaired, verified",
        f"job settings updates: {len(updates)}; job cluster node type now: "
        f"{', '.join(nodes) or '?'}; run repairs: {len(repairs)}; {_state(incident)}",
        ok)


def quota_notify(h: Harness) -> Step:
    cluster_id, name = "0314-020004-qu0t4ex1", "Shared Analytics"
    payload = cluster_failed_to_start(
        cluster_id, name, "AZURE_QUOTA_EXCEEDED_EXCEPTION", "CLIENT_ERROR",
        {"azure_error_code": "QuotaExceeded",
         "azure_error_message": "Operation could not be completed as it results in exceeding "
                                "approved standardDSv2Family Cores quota. Current Limit: 100, "
                                "Current Usage: 96, Additional Required: 8."},
        h.now_ms())
    before = len(h.sink.posts("/chat"))
    event_id = h.post("databricks-monitor", payload)["event_id"]
    h.settle(lambda: len(h.sink.posts("/chat")) > before, step_s=60, rounds=5)
    incident = h.incident(event_id)
    posted = [p for p in h.sink.posts("/chat")[before:] if name in json.dumps(p)]
    mutating = h.posts_to("databricks", "", lambda c: _body(c, "cluster_id") == cluster_id)
    ok = (incident is not None and incident.rule_id == "dbx-cluster-quota-exceeded"
          and len(posted) == 1 and not mutating)
    return Step(
        "quota-notify",
        f"cluster {name}: Azure vCPU quota exceeded -> the on-call channel is told, nothing "
        "is retried",
        f"messages received by the channel: {len(posted)}; cluster calls that change "
        f"something: {len(mutating)}; {_state(incident)}",
        ok)


def budget_ticket(h: Harness) -> Step:
    pipeline = "pl_load_finance_monthly"
    payload, run_id = adf_alert(h, pipeline)
    h.script("adf", "adf.createRun", fail_rerun=True, times=3)
    before = len(h.sink.posts("/tickets"))
    event_id = h.post("azure-monitor", payload)["event_id"]

    def done() -> bool:
        found = h.incident(event_id)
        return found is not None and found.state == "escalated" \
            and len(h.sink.posts("/tickets")) > before

    h.settle(done, step_s=120)
    incident = h.incident(event_id)
    calls = h.posts_to("adf", "/createRun",
                       lambda c: _query(c, "referencePipelineRunId") == run_id)
    tickets = [p for p in h.sink.posts("/tickets")[before:] if pipeline in json.dumps(p)]
    ok = (incident is not None and incident.state == "escalated"
          and "budget spent: 3 of 3 attempts" in incident.reason
          and len(calls) == 3 and len(tickets) == 1)
    return Step(
        "rerun-budget-ticket",
        f"{pipeline}: every rerun fails again -> 3 reruns (the budget), then a ticket",
        f"reruns: {len(calls)}; tickets received: {len(tickets)}; {_state(incident)}",
        ok)


def unknown_rca(h: Harness) -> Step:
    cluster_id, name = "0314-020004-d0ck3rpl", "ml-training"
    payload = cluster_failed_to_start(
        cluster_id, name, "DOCKER_IMAGE_PULL_FAILURE", "CLIENT_ERROR",
        {"databricks_error_message": "Failed to pull image contoso.azurecr.io/ml/runtime:14.3:"
                                     " toomanyrequests: rate limit exceeded (HTTP 429)"},
        h.now_ms())
    before = len(h.posts_to("openai", ""))
    event_id = h.post("databricks-monitor", payload)["event_id"]
    h.run()
    incident = h.incident(event_id)
    analyses = h.records(incident.id, "rca") if incident else []
    engines = [str(a.get("analysis", {}).get("engine", "")) for a in analyses]
    summary = str(analyses[0].get("analysis", {}).get("summary", "")) if analyses else ""
    llm_calls = len(h.posts_to("openai", "")) - before
    ok = (incident is not None and incident.rule_id == "" and engines == ["llm"]
          and llm_calls >= 1)
    return Step(
        "unknown-error-rca",
        f"cluster {name}: DOCKER_IMAGE_PULL_FAILURE, which no rule knows -> root-cause "
        "analysis by the LLM",
        f"rca records: {len(analyses)} (engine: {', '.join(engines) or 'none'}); calls to the "
        f"LLM: {llm_calls}; summary: {summary[:100]!r}; {_state(incident)}",
        ok)


STEPS: tuple[tuple[str, Callable[[Harness], Step]], ...] = (
    ("blob-missing", blob_missing),
    ("duplicate-webhook", duplicate_webhook),
    ("resolved-cancels-rerun", resolved_cancels),
    ("instance-unreachable", instance_unreachable),
    ("instance-type-unavailable", instance_type_unavailable),
    ("quota-notify", quota_notify),
    ("rerun-budget-ticket", budget_ticket),
    ("unknown-error-rca", unknown_rca),
)
STEP_NAMES = tuple(name for name, _ in STEPS)


def run_steps(h: Harness) -> Iterator[Step]:
    """Each step in turn; a step that raises is a missed step with the error as its actual."""
    for name, step in STEPS:
        try:
            yield step(h)
        except (RuntimeError, httpx.HTTPError, KeyError, ValueError) as exc:
            yield Step(name, "(the step ran)", f"error: {type(exc).__name__}: {exc}", False)
