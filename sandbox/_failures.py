"""What a failure looks like in each cloud, for ``POST /_sandbox/failures/<kind>``.

A drill (``remediator drill``) asks an emulator for a run that failed with a given error code,
or a cluster that terminated with a given reason; the emulator answers with what the cloud
would then show. The messages are those of the error catalog
(playbooks/testdata/error-catalog.md), written out as the services write them; a code without
one gets a message that names it. Kept apart from the emulators' routes: data, not behaviour.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "RUN_TERMINATION_CODES",
    "ActivityError",
    "ClusterReason",
    "activity_error",
    "cluster_reason",
    "fields",
    "run_message",
]


def fields(body: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...],
           ) -> dict[str, Any]:
    """``body``'s fields, each a non-empty string if given; ValueError naming an unknown or
    missing field or one of another type."""
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}; expected "
                         f"{', '.join((*required, *optional))}")
    for name in required:
        if name not in body:
            raise ValueError(f"missing field: {name}")
    for name, value in body.items():
        if name == "parameters":
            if not isinstance(value, dict):
                raise ValueError("parameters: expected an object")
        elif not isinstance(value, str | int) or isinstance(value, bool) or value == "":
            raise ValueError(f"{name}: expected a non-empty string")
    return body


# -- Data Factory and Synapse ------------------------------------------------------------------

class ActivityError(NamedTuple):
    """The failed activity of a pipeline run: its name and type, and its error as
    ``queryActivityruns`` shows it (``errorCode`` may be the ``2200`` that wraps the code)."""

    activity: str
    activity_type: str
    error_code: str
    message: str
    failure_type: str


_COPY = ("Copy_RawSales_To_Bronze", "Copy")
_SQL_COPY = ("Copy_Sales_To_Dw", "Copy")
_ONPREM = ("Copy_OnPrem_Orders", "Copy")
_WEB = ("Web_Get_FxRates", "WebActivity")
_NOTEBOOK = ("Run_Notebook_Transform", "DatabricksNotebook")
_DATAFLOW = ("DF_Merge_Customers", "ExecuteDataFlow")
_LOOKUP = ("Lookup_All_Customers", "Lookup")
_HYBRID = "Microsoft.DataTransfer.Common.Shared.HybridDeliveryException"

# code -> (activity, inner message); a Copy activity's inner code is wrapped in a 2200
_WRAPPED: dict[str, tuple[tuple[str, str], str, str]] = {
    "UserErrorSourceBlobNotExist": (_COPY, "Source", (
        "The required Blob is missing. ContainerName: https://stcontosoraw.blob.core.windows.net"
        "/raw, path: sales/2025/03/14/sales_20250314.csv.")),
    "UserErrorFileNotFound": (_COPY, "Source", (
        "ADLS Gen2 operation failed for: Operation returned an invalid status code 'NotFound'. "
        "Account: 'stcontosoraw'. FileSystem: 'raw'. Path: 'sales/2025/03/14/sales_20250314.csv'. "
        "ErrorCode: 'PathNotFound'. Message: 'The specified path does not exist.'.")),
    "AdlsGen2OperationFailed": (_COPY, "Sink", (
        "ADLS Gen2 operation failed for: Operation returned an invalid status code "
        "'ServiceUnavailable'. Account: 'stcontosocurated'. FileSystem: 'bronze'. Path: "
        "'sales/2025/03/14/part-00000.parquet'. ErrorCode: 'ServerBusy'. Message: 'The server is "
        "busy.'.")),
    "AzureBlobOperationFailed": (_COPY, "Source", (
        "Blob operation Failed. ContainerName: raw, path: sales/2025/03/14/sales_20250314.csv.")),
    "AzureStorageOperationFailedConcurrentWrite": (_COPY, "Sink", (
        "Error occurred when trying to upload a file. It's possible because you have multiple "
        "concurrent copy activities runs writing to the same file "
        "'bronze/sales/part-00000.parquet'.")),
    "SqlFailedToConnect": (_SQL_COPY, "Sink", (
        "Cannot connect to SQL Database: 'sql-contoso-dw.database.windows.net', Database: "
        "'dw_sales', User: 'adf_loader'. Check the linked service configuration is correct, and "
        "make sure the SQL Database firewall allows the integration runtime to access.")),
    "SqlOperationFailed": (_SQL_COPY, "Sink", (
        "A database operation failed with the following error: 'Transaction (Process ID 72) was "
        "deadlocked on lock resources with another process and has been chosen as the deadlock "
        "victim. Rerun the transaction.'")),
}
# code -> (activity, message): the activity's own code
_DIRECT: dict[str, tuple[tuple[str, str], str]] = {
    "2108": (_WEB, "Error calling the endpoint 'https://api.contoso.com/v2/fx-rates'. Response "
                   "status code: '503'"),
    "2010": (_ONPREM, "The Self-hosted Integration Runtime 'shir-onprem-01' is offline"),
    "2003": (_NOTEBOOK, "There are substantial concurrent external activity executions which is "
                        "causing failures due to throttling under subscription, region and "
                        "limitation. Please reduce the concurrent executions."),
    "4502": (_DATAFLOW, "There are substantial concurrent MappingDataflow executions that are "
                        "causing failures due to throttling under Integration Runtime."),
    "2001": (_LOOKUP, "The length of execution output is over limit (around 4MB currently)."),
    "2011": (_ONPREM, "The activity was running on Azure Integration Runtime and failed to "
                      "decrypt the credential of data store or compute connected via a "
                      "Self-hosted Integration Runtime."),
    "DF-Executor-OutOfMemoryError": (_DATAFLOW, (
        "Cluster ran into out of memory issue during execution, please retry using an "
        "integration runtime with bigger core count and/or memory optimized compute type")),
    "DF-Executor-SourceInvalidPayload": (_DATAFLOW, (
        "Data preview, debug, and pipeline data flow execution failed because container does "
        "not exist")),
    "DF-Executor-BroadcastTimeout": (_DATAFLOW, (
        "Broadcast join timeout error, make sure broadcast stream produces data within 60 secs "
        "in debug runs and 300 secs in job runs")),
    "3200": (_NOTEBOOK, "Error 403."),
    "3203": (_NOTEBOOK, "The cluster is in Terminated state, not available to receive jobs. "
                        "Please fix the cluster or retry later."),
    "3208": (_NOTEBOOK, "An error occurred while sending the request."),
}


def activity_error(code: str, message: str = "") -> ActivityError:
    """The failed activity that ADF shows for ``code`` (``message`` replaces the catalog's).

    A Copy activity's code comes inside a ``2200`` (``Failure happened on 'Sink' side.
    ErrorCode=SqlFailedToConnect,...``); other activities carry their own code; a code of your
    own is what a pipeline's Fail activity says."""
    if code in _WRAPPED:
        (activity, kind), side, text = _WRAPPED[code]
        inner = message or text
        wrapped = (f"Failure happened on '{side}' side. ErrorCode={code},'Type={_HYBRID},"
                   f"Message={inner},Source=Microsoft.DataTransfer.ClientLibrary,'")
        return ActivityError(activity, kind, "2200", wrapped, "UserError")
    if code in _DIRECT:
        (activity, kind), text = _DIRECT[code]
        failure = "SystemError" if code in ("2003", "4502", "2010", "3208") else "UserError"
        return ActivityError(activity, kind, code, message or text, failure)
    return ActivityError("Fail_Pipeline", "Fail", code,
                         message or f"The pipeline failed with {code}.", "UserError")


# -- Databricks --------------------------------------------------------------------------------

RUN_TERMINATION_CODES = frozenset({
    "BREAKING_CHANGE", "BUDGET_POLICY_LIMIT_EXCEEDED", "CANCELED", "CLOUD_FAILURE",
    "CLUSTER_ERROR", "CLUSTER_REQUEST_LIMIT_EXCEEDED", "DISABLED", "DRIVER_ERROR",
    "FEATURE_DISABLED", "INTERNAL_ERROR", "INVALID_CLUSTER_REQUEST",
    "INVALID_RUN_CONFIGURATION", "LIBRARY_INSTALLATION_ERROR", "MAX_CONCURRENT_RUNS_EXCEEDED",
    "MAX_JOB_QUEUE_SIZE_EXCEEDED", "MAX_SPARK_CONTEXTS_EXCEEDED", "REPOSITORY_CHECKOUT_FAILED",
    "RESOURCE_NOT_FOUND", "RUN_EXECUTION_ERROR", "SKIPPED", "STORAGE_ACCESS_ERROR", "SUCCESS",
    "SUCCESS_WITH_FAILURES", "UNAUTHORIZED_ERROR", "USER_CANCELED", "WORKSPACE_RUN_LIMIT_EXCEEDED",
})
"""A run's own termination codes (Jobs API ``TerminationCodeCode``); any other code a drill
names for a run is the cluster's, and the run ends CLUSTER_ERROR."""

_RUN_MESSAGES = {
    "LIBRARY_INSTALLATION_ERROR": "Library installation failed for library due to user error "
                                  "for pypi {\n  package: \"great-expectations==0.18.99\"\n}\n.",
    "MAX_CONCURRENT_RUNS_EXCEEDED": "The maximum number of concurrent runs for this job (1) was "
                                    "reached.",
    "STORAGE_ACCESS_ERROR": "Failed to access cloud storage: AbfsRestOperationException: "
                            "Operation failed: \"This request is not authorized to perform this "
                            "operation.\", 403",
    "UNAUTHORIZED_ERROR": "The run is not authorized to access the resource.",
    "CLUSTER_ERROR": "Cluster was terminated. Reason: {reason}.",
}
_RUN_TYPES = {"RUN_EXECUTION_ERROR": "CLIENT_ERROR", "LIBRARY_INSTALLATION_ERROR": "CLIENT_ERROR",
              "STORAGE_ACCESS_ERROR": "CLIENT_ERROR", "UNAUTHORIZED_ERROR": "CLIENT_ERROR",
              "INVALID_RUN_CONFIGURATION": "CLIENT_ERROR", "RESOURCE_NOT_FOUND": "CLIENT_ERROR",
              "INVALID_CLUSTER_REQUEST": "CLIENT_ERROR", "USER_CANCELED": "SUCCESS",
              "CANCELED": "SUCCESS", "SKIPPED": "SUCCESS"}


def run_message(code: str, reason: str = "") -> tuple[str, str]:
    """A failed run's termination message and type for ``code``."""
    text = _RUN_MESSAGES.get(code, f"Run failed with {code}.").replace("{reason}", reason)
    return text, _RUN_TYPES.get(code, "CLOUD_FAILURE")


class ClusterReason(NamedTuple):
    """A cluster's ``termination_reason``."""

    code: str
    type: str
    parameters: dict[str, str]


_CLUSTER = {
    "DRIVER_UNREACHABLE": ("CLOUD_FAILURE", {
        "databricks_error_message": "Could not reach driver of cluster {cluster} for 1800 "
                                    "seconds.", "instance_id": "3f1c9a7e52b84d06a1e7c2b9f0d4e813"}),
    "INSTANCE_UNREACHABLE": ("CLOUD_FAILURE", {
        "databricks_error_message": "Instance 9b2e6d1f04a34c7e8f5a1c3e7d9b2f60 was unreachable.",
        "instance_id": "9b2e6d1f04a34c7e8f5a1c3e7d9b2f60"}),
    "COMMUNICATION_LOST": ("CLOUD_FAILURE", {
        "databricks_error_message": "Communication lost with the driver of cluster {cluster}."}),
    "CLOUD_PROVIDER_RESOURCE_STOCKOUT": ("CLOUD_FAILURE", {
        "azure_error_code": "SkuNotAvailable",
        "azure_error_message": "The requested VM size Standard_DS4_v2 is currently not "
                               "available in location 'westeurope'."}),
    "CLOUD_PROVIDER_LAUNCH_FAILURE": ("CLOUD_FAILURE", {
        "azure_error_code": "AllocationFailed",
        "azure_error_message": "Allocation failed. We do not have sufficient capacity for the "
                               "requested VM size in this region."}),
    "AZURE_QUOTA_EXCEEDED_EXCEPTION": ("CLIENT_ERROR", {
        "azure_error_code": "QuotaExceeded",
        "azure_error_message": "Operation could not be completed as it results in exceeding "
                               "approved standardDSv2Family Cores quota."}),
    "SPOT_INSTANCE_TERMINATION": ("CLOUD_FAILURE", {
        "databricks_error_message": "The spot instance was evicted by the cloud provider."}),
    "DRIVER_OUT_OF_MEMORY": ("CLIENT_ERROR", {
        "databricks_error_message": "The driver ran out of memory."}),
    "INIT_SCRIPT_FAILURE": ("CLIENT_ERROR", {
        "databricks_error_message": "Cluster scoped init script /Volumes/main/ops/init/"
                                    "install.sh failed: Script exit status is non-zero"}),
    "INACTIVITY": ("SUCCESS", {"inactivity_duration_min": "60"}),
    "USER_REQUEST": ("SUCCESS", {"username": "dana.operator@contoso.com"}),
    "SUBNET_EXHAUSTED_FAILURE": ("CLOUD_FAILURE", {
        "azure_error_code": "SubnetIsFull",
        "azure_error_message": "Subnet private-subnet with address prefix 10.1.2.0/26 does "
                               "not have enough capacity for 4 IP addresses."}),
}


def cluster_reason(code: str, cluster_id: str,
                   parameters: dict[str, str] | None = None) -> ClusterReason:
    """The ``termination_reason`` of a cluster that ended with ``code``."""
    kind, defaults = _CLUSTER.get(code, ("SERVICE_FAULT", {
        "databricks_error_message": f"Cluster {{cluster}} terminated: {code}."}))
    params = {k: v.replace("{cluster}", cluster_id) for k, v in defaults.items()}
    return ClusterReason(code, kind, {**params, **(parameters or {})})
