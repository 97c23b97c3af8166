"""kill -9 right after the cloud call, before the outcome is committed: at restart the action
is reconciled from the cloud, not sent again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from engine.store import actions as actions_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from tests.engine.actions.conftest import adf_event
from tests.engine.test_worker import RERUN, reruns
from tests.fixtures.engine import EngineRig

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from dataclasses import replace
    from types import SimpleNamespace
    from engine.cloud.clients import Clients
    from engine.actions.context import ActionContext
    from engine.actions.registry import action_table
    from engine.config import load_settings
    from engine.rules.active import ActivePlaybooks
    from engine.store.db import Database
    from engine.runtime.worker import Worker
    from tests.engine.actions.conftest import cloud_settings

    args = json.loads(sys.argv[1])
    table = action_table()
    real = table["adf.rerun_pipeline"]

    def run_then_die(params, event, ctx):
        real.run(params, event, ctx)
        os.kill(os.getpid(), signal.SIGKILL)  # the call was made; its outcome never is

    table["adf.rerun_pipeline"] = replace(real, run=run_then_die)
    clients = Clients(cloud_settings(SimpleNamespace(**args["sandbox"])))
    worker = Worker(Database(args["db"]), ActivePlaybooks([args["playbooks"]], table), table,
                    ActionContext(clients=clients), load_settings(None, env={}, live=True))
    worker.drain()
""")


def test_kill_after_the_call_is_reconciled_not_resent(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)  # writes the playbook; not run yet
    event_id = engine_rig.deliver(adf_event())
    sb = engine_rig.sandbox
    args = {"db": engine_rig.db.path, "playbooks": str(engine_rig.tmp / "playbooks"),
            "sandbox": {"adf_url": sb.adf_url, "ca_file": sb.ca_file,
                        "synapse_url": sb.synapse_url, "databricks_url": sb.databricks_url}}
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert len(reruns(sb)) == 1
    [incident] = incidents_store.list_incidents(engine_rig.db)
    [row] = actions_store.for_incident(engine_rig.db, incident.id)
    assert row.state == "started"  # the intent was committed before the call

    # Restart: the new process reconciles what the dead one left started.
    assert worker.scheduler.reconcile() == 1
    [row] = actions_store.for_incident(engine_rig.db, incident.id)
    assert (row.state, row.probe_state) == ("succeeded", "running")
    assert row.result["outcome"] == "already_done"
    assert len(reruns(sb)) == 1
    # The event itself comes back after its lease; it plans nothing new.
    assert inbox.get(engine_rig.db, event_id).state == "processing"
    worker.scheduler.tick()
    assert len(reruns(sb)) == 1
