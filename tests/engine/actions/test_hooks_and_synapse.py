"""notify.webhook and ticket.create over real HTTP; synapse.rerun_pipeline against the sandbox."""

from __future__ import annotations

import msgspec
import pytest

from engine.actions.context import ActionContext
from engine.actions.registry import action_table
from engine.errors import PermanentActionError, RetryableActionError
from tests.engine.actions.conftest import adf_event, params_for

SPECS = action_table()
NOTIFY = SPECS["notify.webhook"]
TICKET = SPECS["ticket.create"]
SYNAPSE = SPECS["synapse.rerun_pipeline"]


def test_notify_posts_json_to_the_named_channel(sink, hook_ctx: ActionContext):
    event = adf_event().with_fingerprint()
    params = params_for(NOTIFY, event, channel="data-oncall", text="pl failed again")
    assert NOTIFY.describe_call(params, event) == (
        "would post to channel data-oncall: pl failed again")
    result = NOTIFY.run(params, event, hook_ctx)
    [got] = sink.received
    assert got["path"] == "/hooks/T000/B000/XXXXsecretXXXX"
    assert got["headers"]["x-api-key"] == "hook-key-123"
    assert got["headers"]["Idempotency-Key"] == NOTIFY.key(params, event)
    assert got["body"]["text"] == "pl failed again"
    assert got["body"]["event"]["resource"] == "pl_ingest_sales_daily"
    assert result.detail == "posted to channel=data-oncall (200)"


def test_notify_5xx_is_retryable_and_4xx_permanent_without_the_url(sink, hook_ctx):
    event = adf_event()
    params = params_for(NOTIFY, event, channel="data-oncall", text="x")
    sink.status, sink.retry_after = 429, "7"
    with pytest.raises(RetryableActionError) as info:
        NOTIFY.run(params, event, hook_ctx)
    assert str(info.value) == ("notify.webhook[channel=data-oncall]: 429 Too Many Requests "
                               "(retry after 7 s)")
    sink.status, sink.retry_after = 404, None
    with pytest.raises(PermanentActionError) as info:
        NOTIFY.run(params, event, hook_ctx)
    assert str(info.value) == "notify.webhook[channel=data-oncall]: 404 Not Found"


def test_notify_unknown_channel(hook_ctx):
    event = adf_event()
    with pytest.raises(PermanentActionError) as info:
        NOTIFY.run(params_for(NOTIFY, event, channel="nope", text="x"), event, hook_ctx)
    assert str(info.value) == "notify.webhook[channel=nope]: no such channel in [clouds.channels]"


def test_notify_needs_exactly_one_destination():
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert({"text": "x"}, NOTIFY.params)
    assert str(info.value) == "name exactly one of channel (configured) and url"


def test_ticket_create(sink, hook_ctx):
    event = adf_event(severity=2)
    params = params_for(TICKET, event, title="Blob missing", labels=["adf"], body="see run")
    assert TICKET.describe_call(params, event) == 'would open a ticket "Blob missing" [adf]'
    result = TICKET.run(params, event, hook_ctx)
    [got] = sink.received
    assert got["path"] == "/tickets?token=tkt-secret-456"
    assert got["body"]["title"] == "Blob missing"
    assert got["body"]["labels"] == ["adf"]
    assert got["body"]["severity"] == 2
    assert result.detail == "ticket INC-1042 opened"
    assert result.ref == {"ticket": "INC-1042"}


def test_ticket_severity_is_checked():
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert({"title": "t", "severity": 7}, TICKET.params)
    assert str(info.value) == "severity must be 0 (critical) .. 4"


def synapse_event():
    return adf_event(source="synapse", resource="pl_syn_load",
                     resource_id="/subscriptions/s/resourcegroups/rg/providers/"
                                 "microsoft.synapse/workspaces/syn-contoso-prod",
                     attributes={"workspace": "syn-contoso-prod", "pipeline": "pl_syn_load",
                                 "activity": "Copy_RawSales_To_Bronze"})


def test_synapse_rerun_from_the_failed_activity_probe_and_reconcile(sandbox, ctx):
    event = synapse_event()
    params = params_for(SYNAPSE, event)
    assert SYNAPSE.describe_call(params, event) == (
        "would rerun pipeline pl_syn_load in Synapse workspace syn-contoso-prod from activity "
        "Copy_RawSales_To_Bronze (recovery of run 7b1e4c52...)"
    )
    assert SYNAPSE.reconcile(params, event, ctx) is None
    result = SYNAPSE.run(params, event, ctx)
    [call] = [c for c in sandbox.calls("synapse") if c["path"].endswith("/createRun")]
    assert call["path"] == "/pipelines/pl_syn_load/createRun"
    assert call["query"]["referencePipelineRunId"] == event.run_id
    assert call["query"]["isRecovery"] == "true"
    assert call["query"]["startActivityName"] == "Copy_RawSales_To_Bronze"
    assert [SYNAPSE.probe(result, ctx).state for _ in range(2)] == ["running", "succeeded"]
    found = SYNAPSE.reconcile(params, event, ctx)
    assert found is not None and found.ref == result.ref
