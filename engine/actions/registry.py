"""The one table of actions, written out by hand: name -> :class:`ActionSpec`.

No discovery and no decorators: adding an action means adding a line here, where a reviewer
sees it. ``engine.rules`` receives this table as an argument and never imports it.
"""

from __future__ import annotations

from engine.actions import adf, basic, databricks, notify, rca, synapse, ticket
from engine.actions.base import ActionSpec

__all__ = ["action_table"]

_ADF_TARGET = ("factory", "pipeline", "run_id", "subscription", "resource_group")
_DBX_CLUSTER = ("cluster_id", "workspace_id")


def action_table() -> dict[str, ActionSpec]:
    """Every action under its stable dotted name. A new table per call: nothing global."""
    specs = [
        ActionSpec(
            name="adf.rerun_pipeline",
            description="Rerun an ADF pipeline run as a recovery, from the failed activity by "
                        "default.",
            params=adf.RerunParams, target=adf.target, target_fields=_ADF_TARGET,
            run=adf.rerun_pipeline, describe=adf.describe_rerun, probe=adf.probe_run,
            reconcile=adf.reconcile_rerun, precheck=adf.precheck_rerun,
        ),
        ActionSpec(
            name="adf.cancel_run",
            description="Cancel an ADF pipeline run (and the runs it started).",
            params=adf.CancelParams, target=adf.target, target_fields=_ADF_TARGET,
            run=adf.cancel_run, describe=adf.describe_cancel,
        ),
        ActionSpec(
            name="synapse.rerun_pipeline",
            description="Rerun a Synapse pipeline run as a recovery, from the failed activity "
                        "when known.",
            params=synapse.RerunParams, target=synapse.target,
            target_fields=("workspace", "pipeline", "run_id", "start_activity_name"),
            run=synapse.rerun_pipeline, describe=synapse.describe_rerun,
            probe=synapse.probe_run, reconcile=synapse.reconcile_rerun,
            precheck=synapse.precheck_rerun,
        ),
        ActionSpec(
            name="databricks.repair_run",
            description="Repair a Databricks job run, rerunning its failed tasks.",
            params=databricks.RepairParams, target=databricks.run_target,
            target_fields=("run_id", "job_id", "workspace_id"),
            run=databricks.repair_run, describe=databricks.describe_repair,
            idempotency_key=databricks.repair_key, probe=databricks.probe_repair,
            reconcile=databricks.reconcile_repair, precheck=databricks.precheck_repair,
        ),
        ActionSpec(
            name="databricks.run_job",
            description="Start a Databricks job now (idempotent by token).",
            params=databricks.RunJobParams, target=databricks.job_target,
            target_fields=("job_id", "workspace_id"),
            run=databricks.run_job, describe=databricks.describe_run_job,
            probe=databricks.probe_job_run, precheck=databricks.precheck_run_job,
        ),
        ActionSpec(
            name="databricks.start_cluster",
            description="Start a terminated Databricks all-purpose cluster.",
            params=databricks.ClusterParams, target=databricks.cluster_target,
            target_fields=_DBX_CLUSTER,
            run=databricks.start_cluster,
            describe=lambda p, e: f"would start cluster {p.cluster_id}",
            probe=databricks.probe_cluster, reconcile=databricks.reconcile_start,
            precheck=databricks.precheck_start,
        ),
        ActionSpec(
            name="databricks.restart_cluster",
            description="Restart a Databricks all-purpose cluster.",
            params=databricks.ClusterParams, target=databricks.cluster_target,
            target_fields=_DBX_CLUSTER,
            run=databricks.restart_cluster,
            describe=lambda p, e: f"would restart cluster {p.cluster_id}",
            probe=databricks.probe_cluster, reconcile=databricks.reconcile_restart,
            precheck=databricks.precheck_restart,
        ),
        ActionSpec(
            name="databricks.set_node_type",
            description="Move a cluster or job cluster to the next untried fallback node type.",
            params=databricks.NodeTypeParams, target=databricks.node_type_target,
            target_fields=("cluster_id", "job_id", "job_cluster_key", "workspace_id"),
            run=databricks.set_node_type, describe=databricks.describe_node_type,
            idempotency_key=databricks.node_type_key,
            reconcile=databricks.reconcile_node_type, precheck=databricks.precheck_node_type,
        ),
        ActionSpec(
            name="notify.webhook",
            description="Post a message to a configured chat or paging webhook.",
            params=notify.NotifyParams, run=notify.webhook, describe=notify.describe,
            mutating=False, markup_params=("text", "title"), url_params=("url",),
            link_params=("link",),
        ),
        ActionSpec(
            name="ticket.create",
            description="Open a ticket through the configured ticket webhook.",
            params=ticket.TicketParams, run=ticket.create, describe=ticket.describe,
        ),
        ActionSpec(
            name="rca.analyze",
            description="Explain the root cause with the RCA engine, optionally posted to a "
                        "channel.",
            params=rca.RcaParams, run=rca.analyze, describe=rca.describe, mutating=False,
        ),
        ActionSpec(
            name="noop",
            description="Do nothing; the match is recorded.",
            params=basic.NoopParams, run=basic.noop, describe=basic.describe_noop,
            mutating=False,
        ),
        ActionSpec(
            name="ignore",
            description="Close the incident as an expected failure.",
            params=basic.IgnoreParams, run=basic.ignore, describe=basic.describe_ignore,
            mutating=False,
        ),
    ]
    return {spec.name: spec for spec in specs}
