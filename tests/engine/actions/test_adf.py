"""ADF actions through azure-mgmt-datafactory against the sandbox's ARM emulator."""

from __future__ import annotations

import msgspec
import pytest

from engine.actions.context import ActionContext, ActionResult
from engine.actions.registry import action_table
from engine.errors import PermanentActionError
from tests.engine.actions.conftest import (
    ADF_RUN,
    FACTORY,
    PIPELINE,
    RG,
    SUB,
    adf_event,
    calls_to,
    params_for,
)
from tests.fixtures.common import assert_wrapped

SPECS = action_table()
RERUN = SPECS["adf.rerun_pipeline"]


def test_rerun_creates_a_recovery_run_from_the_failed_activity(sandbox, ctx: ActionContext):
    event = adf_event()
    params = params_for(RERUN, event)
    result = RERUN.run(params, event, ctx)

    [call] = calls_to(sandbox, "adf", f"/pipelines/{PIPELINE}/createRun")
    assert call["method"] == "POST"
    assert call["path"] == (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
                            f"Microsoft.DataFactory/factories/{FACTORY}/pipelines/{PIPELINE}"
                            "/createRun")
    assert call["query"]["referencePipelineRunId"] == ADF_RUN
    assert call["query"]["isRecovery"] == "true"
    assert call["query"]["startFromFailure"] == "true"
    assert "startActivityName" not in call["query"]
    assert call["headers"]["authorization"] != "Bearer sandbox-token"  # a real token was fetched
    assert result.outcome == "started"
    assert result.ref["original_run_id"] == ADF_RUN
    assert result.ref["factory"] == FACTORY
    assert result.detail == (f"rerun {result.ref['run_id']} of pipeline {PIPELINE} started "
                             f"(recovery of run {ADF_RUN})")


def test_rerun_from_a_named_activity_with_parameters(sandbox, ctx: ActionContext):
    event = adf_event()
    params = params_for(RERUN, event, start_from_failure=False,
                        start_activity_name="Lookup_Watermark",
                        parameters={"run_date": "2025-03-15"})
    RERUN.run(params, event, ctx)
    [call] = calls_to(sandbox, "adf", "/createRun")
    assert call["query"]["startActivityName"] == "Lookup_Watermark"
    assert "startFromFailure" not in call["query"]
    assert call["body"] == {"run_date": "2025-03-15"}


def test_rerun_params_are_checked_across_fields():
    with pytest.raises(msgspec.ValidationError) as info:
        params_for(RERUN, adf_event(), start_activity_name="Lookup_Watermark")
    assert str(info.value) == (
        "start_activity_name and start_from_failure exclude each other; set "
        "start_from_failure: false to start from a named activity"
    )


def test_metric_alert_without_run_id_cannot_be_rerun_before_enrichment():
    with pytest.raises(msgspec.ValidationError) as info:
        params_for(RERUN, adf_event(run_id=""))
    assert_wrapped(str(info.value), "", "run_id")  # msgspec's words, naming the field


def test_describe_and_key():
    event = adf_event()
    params = params_for(RERUN, event)
    assert RERUN.describe_call(params, event) == (
        f"would rerun pipeline {PIPELINE} in factory {FACTORY} from the failed activity "
        "(recovery of run 7b1e4c52...)"
    )
    same_failure_other_alert = adf_event(dedup_key="azmon:/other-alert:Fired")
    key = RERUN.key(params, event)
    assert key.startswith("adf.rerun_pipeline:")
    assert key == RERUN.key(params_for(RERUN, same_failure_other_alert), same_failure_other_alert)
    other_run = adf_event(run_id="00000000-0000-0000-0000-000000000001")
    assert key != RERUN.key(params_for(RERUN, other_run), other_run)


def test_probe_follows_the_rerun_to_success(sandbox, ctx: ActionContext):
    event = adf_event()
    result = RERUN.run(params_for(RERUN, event), event, ctx)
    states = [RERUN.probe(result, ctx).state for _ in range(3)]
    assert states == ["running", "succeeded", "succeeded"]
    gets = calls_to(sandbox, "adf", f"/pipelineruns/{result.ref['run_id']}")
    assert len(gets) == 3


def test_probe_follows_the_rerun_to_failure(sandbox, ctx: ActionContext):
    sandbox.script("adf", "adf.createRun", fail_rerun=True)
    event = adf_event()
    result = RERUN.run(params_for(RERUN, event), event, ctx)
    assert RERUN.probe(result, ctx).state == "running"
    probe = RERUN.probe(result, ctx)
    assert probe.state == "failed"
    assert probe.detail.startswith(
        f"run {result.ref['run_id']} of pipeline {PIPELINE} ended Failed: Operation on target "
        "Copy_RawSales_To_Bronze failed:"
    )


def test_reconcile_finds_the_rerun_already_made(sandbox, ctx: ActionContext):
    event = adf_event()
    params = params_for(RERUN, event)
    assert RERUN.reconcile(params, event, ctx) is None
    made = RERUN.run(params, event, ctx)
    found = RERUN.reconcile(params, event, ctx)
    assert isinstance(found, ActionResult)
    assert found.outcome == "already_done"
    assert found.ref == made.ref
    queries = calls_to(sandbox, "adf", "/queryPipelineRuns")
    assert queries[-1]["body"]["filters"] == [
        {"operand": "RunGroupId", "operator": "Equals", "values": [ADF_RUN]},
        {"operand": "PipelineName", "operator": "Equals", "values": [PIPELINE]},
    ]


def test_cancel_run(sandbox, ctx: ActionContext):
    spec = SPECS["adf.cancel_run"]
    event = adf_event()
    params = params_for(spec, event)
    assert spec.describe_call(params, event) == (
        f"would cancel run 7b1e4c52... of pipeline {PIPELINE} in factory {FACTORY}"
    )
    result = spec.run(params, event, ctx)
    [call] = calls_to(sandbox, "adf", f"/pipelineruns/{ADF_RUN}/cancel")
    assert call["query"]["isRecursive"] == "true"
    assert result.outcome == "done"


def test_a_factory_no_entry_serves_is_refused(ctx: ActionContext):
    event = adf_event(attributes={"factory": "adf-unknown", "subscription": SUB,
                                  "resource_group": RG, "pipeline": PIPELINE})
    with pytest.raises(PermanentActionError) as info:
        RERUN.run(params_for(RERUN, event), event, ctx)
    assert str(info.value) == (
        f"no [clouds.adf] entry serves factory 'adf-unknown' in subscription {SUB}; "
        "add one to the settings"
    )
