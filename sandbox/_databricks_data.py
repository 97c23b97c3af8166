"""Record templates for the Databricks emulator, shaped like tests/testdata/samples/cloud-api/.

Kept apart from the routes so that sandbox/databricks.py reads as the API's behaviour.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CREATOR",
    "DEFAULT_JOB_ID",
    "NODE_TYPES",
    "TASK_ERROR",
    "TASK_ERROR_TRACE",
    "URL",
    "cluster_events",
    "cluster_record",
    "job_settings",
    "library_statuses",
]

CREATOR = "svc-dataeng@contoso.com"
DEFAULT_JOB_ID = 816305927331
URL = "https://adb-1234567890123456.7.azuredatabricks.net/?o=1234567890123456"
#: Node types that ``clusters/edit`` accepts (a real workspace's list is longer).
NODE_TYPES = (
    "Standard_DS3_v2",
    "Standard_DS4_v2",
    "Standard_DS5_v2",
    "Standard_D4ds_v5",
    "Standard_D8ds_v5",
    "Standard_E4ds_v5",
    "Standard_E8ds_v5",
    "Standard_F4s",
)
TASK_ERROR = (
    "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view `sales_bronze`.`orders_raw` "
    "cannot be found. Verify the spelling and correctness of the schema and catalog.\n"
    "If you did not qualify the name with a schema, verify the current_schema() output, or "
    "qualify the name with the correct schema and catalog.\nTo tolerate the error on drop use "
    "DROP VIEW IF EXISTS or DROP TABLE IF EXISTS. SQLSTATE: 42P01; line 1 pos 14;\n"
    "'Project [*]\n+- 'UnresolvedRelation [sales_bronze, orders_raw], [], false\n"
)
TASK_ERROR_TRACE = (
    "---------------------------------------------------------------------------\n"
    "AnalysisException                         Traceback (most recent call last)\n"
    "File <command-3181154201975562>, line 4\n"
    '----> 4 orders = spark.sql("SELECT * FROM sales_bronze.orders_raw")\n\n'
    "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view `sales_bronze`.`orders_raw` "
    "cannot be found. SQLSTATE: 42P01; line 1 pos 14"
)

_TASKS = (
    ("ingest_raw", None),
    ("transform_orders", "ingest_raw"),
    ("publish_gold", "transform_orders"),
)


def job_settings(name: str) -> dict[str, Any]:
    """The settings of a three-task notebook job on one job cluster, as in the sample."""
    tasks = []
    for key, upstream in _TASKS:
        task: dict[str, Any] = {
            "task_key": key,
            "notebook_task": {
                "notebook_path": f"/Repos/data-eng/sales-pipeline/notebooks/{key}",
                "source": "WORKSPACE",
                "base_parameters": {"run_date": "{{job.parameters.run_date}}"},
            },
            "job_cluster_key": "etl_cluster",
            "run_if": "ALL_SUCCESS",
            "timeout_seconds": 0,
            "email_notifications": {},
        }
        if upstream:
            task["depends_on"] = [{"task_key": upstream}]
        tasks.append(task)
    return {
        "name": name,
        "email_notifications": {},
        "webhook_notifications": {},
        "timeout_seconds": 0,
        "max_concurrent_runs": 1,
        "schedule": {
            "quartz_cron_expression": "0 0 2 * * ?",
            "timezone_id": "UTC",
            "pause_status": "UNPAUSED",
        },
        "tasks": tasks,
        "job_clusters": [
            {
                "job_cluster_key": "etl_cluster",
                "new_cluster": {
                    "spark_version": "15.4.x-scala2.12",
                    "node_type_id": "Standard_DS4_v2",
                    "num_workers": 4,
                    "azure_attributes": {"availability": "ON_DEMAND_AZURE", "first_on_demand": 1},
                    "data_security_mode": "SINGLE_USER",
                },
            }
        ],
        "format": "MULTI_TASK",
        "queue": {"enabled": True},
        "parameters": [{"name": "run_date", "default": ""}],
    }


def cluster_record(cluster_id: str) -> dict[str, Any]:
    """A cluster terminated because its driver was unreachable (the events sample's story)."""
    message = f"Could not reach driver of cluster {cluster_id} for 1800 seconds."
    return {
        "cluster_id": cluster_id,
        "cluster_name": f"etl-{cluster_id}",
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "Standard_DS4_v2",
        "driver_node_type_id": "Standard_DS4_v2",
        "num_workers": 4,
        "autotermination_minutes": 60,
        "azure_attributes": {"availability": "ON_DEMAND_AZURE", "first_on_demand": 1,
                             "spot_bid_max_price": -1.0},
        "spark_conf": {},
        "custom_tags": {},
        "default_tags": {"Vendor": "Databricks", "Creator": CREATOR,
                         "ClusterName": f"etl-{cluster_id}", "ClusterId": cluster_id},
        "creator_user_name": CREATOR,
        "cluster_source": "UI",
        "data_security_mode": "SINGLE_USER",
        "enable_elastic_disk": True,
        "runtime_engine": "STANDARD",
        "state": "TERMINATED",
        "state_message": message,
        "start_time": 1741955012904 - 60000,
        "terminated_time": 1741963104552,
        "last_state_loss_time": 1741955012904,
        "termination_reason": {
            "code": "DRIVER_UNREACHABLE",
            "type": "CLOUD_FAILURE",
            "parameters": {
                "databricks_error_message": message,
                "instance_id": "3f1c9a7e52b84d06a1e7c2b9f0d4e813",
            },
        },
    }


def cluster_events(cluster_id: str) -> list[dict[str, Any]]:
    """Oldest first: a start, an inactivity stop, a restart and the driver-unreachable end."""
    raw: list[tuple[int, str, dict[str, Any]]] = [
        (1741941488295, "STARTING", {"user": "dana.operator@contoso.com"}),
        (1741941650003, "RUNNING", {"current_num_workers": 2, "target_num_workers": 2}),
        (1741941702477, "DRIVER_HEALTHY", {}),
        (1741945320118, "TERMINATING", {"reason": {
            "code": "INACTIVITY", "type": "SUCCESS",
            "parameters": {"inactivity_duration_min": "60"}}}),
        (1741954952904, "STARTING", {"user": CREATOR}),
        (1741955012904, "RUNNING", {"current_num_workers": 4, "target_num_workers": 4}),
        (1741961511037, "NODES_LOST", {
            "current_num_workers": 3,
            "target_num_workers": 4,
            "reason": {"code": "INSTANCE_UNREACHABLE", "type": "CLOUD_FAILURE", "parameters": {
                "instance_id": "9b2e6d1f04a34c7e8f5a1c3e7d9b2f60",
                "databricks_error_message":
                    "Instance 9b2e6d1f04a34c7e8f5a1c3e7d9b2f60 was unreachable."}},
        }),
        (1741961904220, "DRIVER_NOT_RESPONDING",
         {"driver_state_message": "Driver is up but is not responsive, likely due to GC."}),
        (1741963104552, "TERMINATING", {"reason": {
            "code": "DRIVER_UNREACHABLE", "type": "CLOUD_FAILURE", "parameters": {
                "databricks_error_message":
                    f"Could not reach driver of cluster {cluster_id} for 1800 seconds.",
                "instance_id": "3f1c9a7e52b84d06a1e7c2b9f0d4e813"}}}),
    ]
    return [{"cluster_id": cluster_id, "timestamp": ts, "type": kind, "details": details}
            for ts, kind, details in raw]


def library_statuses(cluster_id: str) -> dict[str, Any]:
    """One installed library and one that failed to install, as in the sample."""
    return {
        "cluster_id": cluster_id,
        "library_statuses": [
            {"library": {"pypi": {"package": "delta-sharing==1.0.5"}}, "status": "INSTALLED",
             "is_library_for_all_clusters": False},
            {
                "library": {"pypi": {"package": "great-expectations==0.18.99"}},
                "status": "FAILED",
                "is_library_for_all_clusters": False,
                "messages": [
                    f"Library installation attempted on the driver node of cluster {cluster_id} "
                    "and failed. Please refer to the following error message to fix the library "
                    "or contact Databricks support. Error Code: "
                    "DRIVER_LIBRARY_INSTALLATION_FAILURE. Error Message: ERROR: Could not find a "
                    "version that satisfies the requirement great-expectations==0.18.99 (from "
                    "versions: 0.4.0, ..., 0.18.21, 1.0.0, 1.1.0)\nERROR: No matching "
                    "distribution found for great-expectations==0.18.99"
                ],
            },
        ],
    }
