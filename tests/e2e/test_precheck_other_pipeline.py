"""The pre-action check must check that the run it reads is the run of the pipeline (or job)
that the action acts on (red-team round after issue 14, item 4).

Found on a running ``serve --live`` against the sandbox: a log alert naming pipeline
``pl_payroll_export`` and the run id of a failed run of ``pl_ingest_sales_daily``. The check
read that run (``seen.pipeline`` = ``pl_ingest_sales_daily``, status Failed), decided
``run ... of pipeline pl_payroll_export failed and was not rerun`` and the engine sent
``pipelines/pl_payroll_export/createRun`` as a "recovery" of the other pipeline's run. So a
forged alert needs only one failed run id of the factory to rerun any pipeline, whatever that
pipeline's own state, and the per-target guards (budget, cooldown, breaker) count it against a
target the run is not about. The same holds for a Databricks job failure naming one job and a
failed run of another: ``runs/repair`` of the other job's run went out (``precheck_repair``
never compares the run's ``job_id`` with the job the event names)."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.test_actions_e2e import PARENT_RUN, TASK
from tests.e2e.test_precheck_e2e import _adf, _made, _one_rule, _prechecks, _workspace
from tests.e2e.test_remediation import BLOB, RUN
from tests.engine.actions.conftest import FACTORY, PIPELINE, RG
from tests.fixtures.common import load_sample

OTHER = "pl_load_payroll"


def test_a_failed_run_of_another_pipeline_does_not_rerun_the_named_one(
        service_rig: Any) -> None:
    rig = service_rig(_one_rule("adf.rerun_pipeline", "{source: adf}"), live=True)
    client = _adf(rig.sandbox)
    rig.sandbox.script("adf", "adf.createRun", fail_rerun=True)
    other_run = client.pipelines.create_run(RG, FACTORY, OTHER).run_id
    while client.pipeline_runs.get(RG, FACTORY, other_run).status != "Failed":
        pass
    since = len(rig.sandbox.calls())
    alert = json.loads(json.dumps(load_sample(BLOB)).replace(RUN, other_run))
    assert PIPELINE in json.dumps(alert)  # the alert names pl_ingest_sales_daily
    rig.post("azure-monitor", alert)
    assert rig.run() == 1
    assert _made(rig, since) == []
    [check] = _prechecks(rig)
    assert check["seen"]["pipeline"] == OTHER
    assert check["decision"] != "act"
    [incident] = rig.incidents()
    assert incident.state in ("escalated", "resolved")
    assert OTHER in incident.reason and PIPELINE in incident.reason


def test_a_failed_run_of_another_job_is_not_repaired_for_the_named_one(
        service_rig: Any) -> None:
    rig = service_rig(_one_rule("databricks.repair_run", "{source: databricks}"), live=True)
    owner = _workspace(rig.sandbox).jobs.get_run(PARENT_RUN).job_id
    alert = load_sample(TASK)
    alert["job"] = {"job_id": str(owner + 1), "name": "payroll_export"}  # another job
    since = len(rig.sandbox.calls())
    rig.post("databricks-monitor", alert)
    assert rig.run() == 1
    assert _made(rig, since) == []
    [check] = _prechecks(rig)
    assert check["decision"] != "act"
