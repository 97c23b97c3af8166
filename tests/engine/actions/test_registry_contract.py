"""One contract over the whole registry: every action is declared the same careful way."""

from __future__ import annotations

import inspect

import msgspec
import pytest

from engine.actions.base import ActionSpec
from engine.actions.registry import action_table
from engine.events import ErrorEvent
from tests.engine.actions.conftest import (
    AZ_SECRET,
    DBX_TOKEN,
    adf_event,
    cluster_event,
    dbx_task_event,
)

TABLE = action_table()
SECRETS = (DBX_TOKEN, AZ_SECRET, "hook-key-123", "XXXXsecretXXXX", "tkt-secret-456")

# A sample event and the `with:` a playbook would add, per action.
SAMPLES: dict[str, tuple[ErrorEvent, dict]] = {
    "adf.rerun_pipeline": (adf_event(), {}),
    "adf.cancel_run": (adf_event(), {}),
    "synapse.rerun_pipeline": (adf_event(source="synapse", attributes={
        "workspace": "syn-contoso-prod", "pipeline": "pl_syn"}), {}),
    "databricks.repair_run": (dbx_task_event(), {}),
    "databricks.run_job": (dbx_task_event(), {}),
    "databricks.start_cluster": (cluster_event(), {}),
    "databricks.restart_cluster": (cluster_event(), {}),
    "databricks.set_node_type": (cluster_event(), {"fallbacks": ["Standard_DS5_v2"]}),
    "notify.webhook": (adf_event(), {"channel": "data-oncall", "text": "failed"}),
    "ticket.create": (adf_event(), {"title": "failed"}),
    "rca.analyze": (adf_event(), {}),
    "noop": (adf_event(), {}),
    "ignore": (adf_event(), {"reason": "known flaky"}),
}
MUTATING = {"adf.rerun_pipeline", "adf.cancel_run", "synapse.rerun_pipeline",
            "databricks.repair_run", "databricks.run_job", "databricks.start_cluster",
            "databricks.restart_cluster", "databricks.set_node_type", "ticket.create"}


def test_every_action_has_a_sample():
    assert set(SAMPLES) == set(TABLE)


def params(spec: ActionSpec):
    event, with_ = SAMPLES[spec.name]
    return msgspec.convert({**spec.target(event), **with_}, spec.params, strict=False), event


@pytest.mark.parametrize("name", sorted(TABLE))
def test_contract(name: str):
    spec = TABLE[name]
    assert spec.name == name
    assert spec.description and "\n" not in spec.description and len(spec.description) <= 100
    assert spec.description.endswith(".")
    # The Params Struct is frozen, strict and keyword-only.
    cfg = spec.params.__struct_config__
    assert cfg.frozen and cfg.forbid_unknown_fields
    p, event = params(spec)
    data = msgspec.to_builtins(p)
    with pytest.raises(msgspec.ValidationError, match="unknown field `surprise`"):
        msgspec.convert({**data, "surprise": 1}, spec.params)
    fields = msgspec.structs.fields(spec.params)
    if fields:
        with pytest.raises(TypeError):
            spec.params(*[getattr(p, f.name) for f in fields])
    # Targets only name declared fields.
    assert set(spec.target(event)) <= set(spec.target_fields)
    assert set(spec.target_fields) <= {f.name for f in fields}
    # The dry-run sentence starts with "would" and shows no secret.
    text = spec.describe_call(p, event)
    assert text.startswith("would ")
    assert not any(secret in text for secret in SECRETS)
    # The idempotency key is stable: same params and event, same key.
    again, _ = params(spec)
    assert spec.key(p, event) == spec.key(again, event)
    assert spec.key(p, event).startswith(name + ":")
    assert spec.mutating == (name in MUTATING)
    # run is a typed callable, for every action (issue 16: rca.analyze is no special case).
    assert list(inspect.signature(spec.run).parameters) == ["params", "event", "ctx"]
    assert spec.probe is None or list(inspect.signature(spec.probe).parameters) == [
        "result", "ctx"]


def test_untargeted_actions_key_on_the_event():
    spec = TABLE["notify.webhook"]
    p, event = params(spec)
    other = msgspec.structs.replace(event, dedup_key="another failure")
    assert spec.key(p, event) != spec.key(p, other)


# Mutating actions whose repetition changes nothing or that have no cloud target to read.
NO_PRECHECK = {"adf.cancel_run", "ticket.create"}


@pytest.mark.parametrize("name", sorted(MUTATING))
def test_every_mutating_cloud_action_reads_its_target_before_acting(name: str):
    spec = TABLE[name]
    if name in NO_PRECHECK:
        assert spec.precheck is None
        return
    assert spec.precheck is not None
    assert list(inspect.signature(spec.precheck).parameters) == ["params", "event", "ctx"]
