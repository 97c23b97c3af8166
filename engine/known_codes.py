"""Which error codes the senders and enrichment produce, per source: the one declaration.

``remediator validate`` reads it to tell a misspelled ``DRIVER_UNREACHABE`` from a real code
(engine/rules/lint.py). A code here is one that an event's ``error_code`` or ``error_codes``
can hold:

- ``adf`` and ``synapse``: the error catalog's Data Factory codes (engine/analysis/catalog.json,
  from playbooks/testdata/error-catalog.md), the spellings
  :data:`engine.text.errorcodes.CODE_ALIASES` maps, and the storage services' own codes that
  ADF quotes inside its messages
  (``ErrorCode: 'AuthorizationPermissionMismatch'``, kept in ``error_codes``);
- ``databricks``: every cluster ``TerminationReason`` code and every run termination code the
  Databricks API documents (the SDK's ``compute.TerminationReasonCode`` and
  ``jobs.TerminationCodeCode``, copied here so that the rules need no SDK; a test holds them
  equal), and the Azure error codes a termination passes on (``azure_error_code``);
- ``functions``: the exception's type, which no list can hold: a code is plausible when it
  reads like one (``System.TimeoutException``, ``Microsoft.Data.SqlClient.SqlException``);
- ``generic``: whatever a log query's ``ErrorCode`` column says; not checked.

ADF's own list is open too (a pipeline's Fail activity sets any code): a code that is not
here is only a warning, and a playbook declares its own codes with ``known_error_codes:``.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from engine.analysis.catalog import load_catalog
from engine.events import SOURCES
from engine.text.errorcodes import CODE_ALIASES
from engine.text.patterns import compile as compile_pattern

__all__ = [
    "ADF_STORAGE_CODES",
    "DATABRICKS_AZURE_CODES",
    "DATABRICKS_RUN_CODES",
    "DATABRICKS_TERMINATION_CODES",
    "OPEN_SOURCES",
    "is_plausible",
    "known_codes",
]

OPEN_SOURCES: Final = frozenset({"functions", "generic"})
"""Sources whose codes no list holds (an exception type; a log query's column)."""

ADF_STORAGE_CODES: Final = frozenset({
    # Azure Storage (Blob, ADLS Gen2) REST error codes, quoted inside ADF's storage errors
    "AccountIsDisabled", "AuthenticationFailed", "AuthorizationFailure",
    "AuthorizationPermissionMismatch", "AuthorizationProtocolMismatch",
    "AuthorizationResourceTypeMismatch", "AuthorizationSourceIPMismatch", "BlobNotFound",
    "ConditionNotMet", "ContainerNotFound", "FilesystemNotFound", "InsufficientAccountPermissions",
    "InternalError", "InvalidResourceName", "LeaseIdMissing", "OperationTimedOut",
    "PathAlreadyExists", "PathNotFound", "ResourceNotFound", "ServerBusy",
})

DATABRICKS_TERMINATION_CODES: Final = frozenset({
    "ABUSE_DETECTED", "ACCESS_TOKEN_FAILURE", "ALLOCATION_TIMEOUT",
    "ALLOCATION_TIMEOUT_NODE_DAEMON_NOT_READY",
    "ALLOCATION_TIMEOUT_NO_HEALTHY_AND_WARMED_UP_CLUSTERS",
    "ALLOCATION_TIMEOUT_NO_HEALTHY_CLUSTERS", "ALLOCATION_TIMEOUT_NO_MATCHED_CLUSTERS",
    "ALLOCATION_TIMEOUT_NO_READY_CLUSTERS", "ALLOCATION_TIMEOUT_NO_UNALLOCATED_CLUSTERS",
    "ALLOCATION_TIMEOUT_NO_WARMED_UP_CLUSTERS", "ATTACH_PROJECT_FAILURE",
    "AWS_AUTHORIZATION_FAILURE", "AWS_INACCESSIBLE_KMS_KEY_FAILURE",
    "AWS_INSTANCE_PROFILE_UPDATE_FAILURE",
    "AWS_INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET_FAILURE",
    "AWS_INSUFFICIENT_INSTANCE_CAPACITY_FAILURE", "AWS_INVALID_KEY_PAIR",
    "AWS_INVALID_KMS_KEY_STATE", "AWS_MAX_SPOT_INSTANCE_COUNT_EXCEEDED_FAILURE",
    "AWS_REQUEST_LIMIT_EXCEEDED", "AWS_RESOURCE_QUOTA_EXCEEDED", "AWS_UNSUPPORTED_FAILURE",
    "AZURE_BYOK_KEY_PERMISSION_FAILURE", "AZURE_EPHEMERAL_DISK_FAILURE",
    "AZURE_INVALID_DEPLOYMENT_TEMPLATE", "AZURE_OPERATION_NOT_ALLOWED_EXCEPTION",
    "AZURE_PACKED_DEPLOYMENT_PARTIAL_FAILURE", "AZURE_QUOTA_EXCEEDED_EXCEPTION",
    "AZURE_RESOURCE_MANAGER_THROTTLING", "AZURE_RESOURCE_PROVIDER_THROTTLING",
    "AZURE_UNEXPECTED_DEPLOYMENT_TEMPLATE_FAILURE", "AZURE_VM_EXTENSION_FAILURE",
    "AZURE_VNET_CONFIGURATION_FAILURE", "BOOTSTRAP_TIMEOUT",
    "BOOTSTRAP_TIMEOUT_CLOUD_PROVIDER_EXCEPTION", "BOOTSTRAP_TIMEOUT_DUE_TO_MISCONFIG",
    "BUDGET_POLICY_LIMIT_ENFORCEMENT_ACTIVATED", "BUDGET_POLICY_RESOLUTION_FAILURE",
    "CLOUD_ACCOUNT_POD_QUOTA_EXCEEDED", "CLOUD_ACCOUNT_SETUP_FAILURE",
    "CLOUD_OPERATION_CANCELLED", "CLOUD_PROVIDER_DISK_SETUP_FAILURE",
    "CLOUD_PROVIDER_INSTANCE_NOT_LAUNCHED", "CLOUD_PROVIDER_LAUNCH_FAILURE",
    "CLOUD_PROVIDER_LAUNCH_FAILURE_DUE_TO_MISCONFIG", "CLOUD_PROVIDER_RESOURCE_STOCKOUT",
    "CLOUD_PROVIDER_RESOURCE_STOCKOUT_DUE_TO_MISCONFIG", "CLOUD_PROVIDER_SHUTDOWN",
    "CLUSTER_OPERATION_THROTTLED", "CLUSTER_OPERATION_TIMEOUT", "COMMUNICATION_LOST",
    "CONTAINER_LAUNCH_FAILURE", "CONTROL_PLANE_CONNECTION_FAILURE",
    "CONTROL_PLANE_CONNECTION_FAILURE_DUE_TO_MISCONFIG", "CONTROL_PLANE_REQUEST_FAILURE",
    "CONTROL_PLANE_REQUEST_FAILURE_DUE_TO_MISCONFIG", "DATABASE_CONNECTION_FAILURE",
    "DATA_ACCESS_CONFIG_CHANGED", "DBFS_COMPONENT_UNHEALTHY",
    "DBR_IMAGE_RESOLUTION_FAILURE", "DISASTER_RECOVERY_REPLICATION", "DNS_RESOLUTION_ERROR",
    "DOCKER_CONTAINER_CREATION_EXCEPTION", "DOCKER_IMAGE_PULL_FAILURE",
    "DOCKER_IMAGE_TOO_LARGE_FOR_INSTANCE_EXCEPTION", "DOCKER_INVALID_OS_EXCEPTION",
    "DRIVER_EVICTION", "DRIVER_LAUNCH_TIMEOUT", "DRIVER_NODE_UNREACHABLE",
    "DRIVER_OUT_OF_DISK", "DRIVER_OUT_OF_MEMORY", "DRIVER_POD_CREATION_FAILURE",
    "DRIVER_UNEXPECTED_FAILURE", "DRIVER_UNHEALTHY", "DRIVER_UNREACHABLE",
    "DRIVER_UNRESPONSIVE", "DYNAMIC_SPARK_CONF_SIZE_EXCEEDED", "EOS_SPARK_IMAGE",
    "EXECUTION_COMPONENT_UNHEALTHY", "EXECUTOR_POD_UNSCHEDULED",
    "GCP_API_RATE_QUOTA_EXCEEDED", "GCP_DENIED_BY_ORG_POLICY", "GCP_FORBIDDEN",
    "GCP_IAM_TIMEOUT", "GCP_INACCESSIBLE_KMS_KEY_FAILURE", "GCP_INSUFFICIENT_CAPACITY",
    "GCP_IP_SPACE_EXHAUSTED", "GCP_KMS_KEY_PERMISSION_DENIED", "GCP_NOT_FOUND",
    "GCP_QUOTA_EXCEEDED", "GCP_RESOURCE_QUOTA_EXCEEDED",
    "GCP_SERVICE_ACCOUNT_ACCESS_DENIED", "GCP_SERVICE_ACCOUNT_DELETED",
    "GCP_SERVICE_ACCOUNT_NOT_FOUND", "GCP_SUBNET_NOT_READY",
    "GCP_TRUSTED_IMAGE_PROJECTS_VIOLATED", "GKE_BASED_CLUSTER_TERMINATION",
    "GLOBAL_INIT_SCRIPT_FAILURE", "HIVEMETASTORE_CONNECTIVITY_FAILURE",
    "HIVE_METASTORE_PROVISIONING_FAILURE", "IMAGE_PULL_PERMISSION_DENIED", "INACTIVITY",
    "INIT_CONTAINER_NOT_FINISHED", "INIT_SCRIPT_FAILURE", "INSTANCE_POOL_CLUSTER_FAILURE",
    "INSTANCE_POOL_MAX_CAPACITY_REACHED", "INSTANCE_POOL_NOT_FOUND", "INSTANCE_UNREACHABLE",
    "INSTANCE_UNREACHABLE_DUE_TO_MISCONFIG", "INTERNAL_CAPACITY_FAILURE", "INTERNAL_ERROR",
    "INVALID_ARGUMENT", "INVALID_AWS_PARAMETER", "INVALID_INSTANCE_PLACEMENT_PROTOCOL",
    "INVALID_SPARK_IMAGE", "INVALID_WORKER_IMAGE_FAILURE", "IN_PENALTY_BOX",
    "IP_EXHAUSTION_FAILURE", "JOB_FINISHED", "K8S_ACTIVE_POD_QUOTA_EXCEEDED",
    "K8S_AUTOSCALING_FAILURE", "K8S_DBR_CLUSTER_LAUNCH_TIMEOUT", "LAZY_ALLOCATION_TIMEOUT",
    "MAINTENANCE_MODE", "METASTORE_COMPONENT_UNHEALTHY", "MTLS_PORT_CONNECTIVITY_FAILURE",
    "NEPHOS_RESOURCE_MANAGEMENT", "NETVISOR_SETUP_TIMEOUT",
    "NETWORK_CHECK_CONTROL_PLANE_FAILURE",
    "NETWORK_CHECK_CONTROL_PLANE_FAILURE_DUE_TO_MISCONFIG",
    "NETWORK_CHECK_DNS_SERVER_FAILURE", "NETWORK_CHECK_DNS_SERVER_FAILURE_DUE_TO_MISCONFIG",
    "NETWORK_CHECK_METADATA_ENDPOINT_FAILURE",
    "NETWORK_CHECK_METADATA_ENDPOINT_FAILURE_DUE_TO_MISCONFIG",
    "NETWORK_CHECK_MULTIPLE_COMPONENTS_FAILURE",
    "NETWORK_CHECK_MULTIPLE_COMPONENTS_FAILURE_DUE_TO_MISCONFIG",
    "NETWORK_CHECK_NIC_FAILURE", "NETWORK_CHECK_NIC_FAILURE_DUE_TO_MISCONFIG",
    "NETWORK_CHECK_STORAGE_FAILURE", "NETWORK_CHECK_STORAGE_FAILURE_DUE_TO_MISCONFIG",
    "NETWORK_CONFIGURATION_FAILURE", "NFS_MOUNT_FAILURE", "NO_MATCHED_K8S",
    "NO_MATCHED_K8S_TESTING_TAG", "NPIP_TUNNEL_SETUP_FAILURE", "NPIP_TUNNEL_TOKEN_FAILURE",
    "POD_ASSIGNMENT_FAILURE", "POD_SCHEDULING_FAILURE", "RATE_LIMITED", "REQUEST_REJECTED",
    "REQUEST_THROTTLED", "RESOURCE_USAGE_BLOCKED", "SECRET_CREATION_FAILURE",
    "SECRET_PERMISSION_DENIED", "SECRET_RESOLUTION_ERROR",
    "SECURITY_DAEMON_REGISTRATION_EXCEPTION", "SELF_BOOTSTRAP_FAILURE",
    "SERVERLESS_LONG_RUNNING_TERMINATED", "SKIPPED_SLOW_NODES", "SLOW_IMAGE_DOWNLOAD",
    "SPARK_ERROR", "SPARK_IMAGE_DOWNLOAD_FAILURE", "SPARK_IMAGE_DOWNLOAD_THROTTLED",
    "SPARK_IMAGE_NOT_FOUND", "SPARK_STARTUP_FAILURE", "SPOT_INSTANCE_TERMINATION",
    "SSH_BOOTSTRAP_FAILURE", "STORAGE_DOWNLOAD_FAILURE",
    "STORAGE_DOWNLOAD_FAILURE_DUE_TO_MISCONFIG", "STORAGE_DOWNLOAD_FAILURE_SLOW",
    "STORAGE_DOWNLOAD_FAILURE_THROTTLED", "STS_CLIENT_SETUP_FAILURE",
    "SUBNET_EXHAUSTED_FAILURE", "TEMPORARILY_UNAVAILABLE", "TRIAL_EXPIRED",
    "UNEXPECTED_LAUNCH_FAILURE", "UNEXPECTED_POD_RECREATION", "UNKNOWN",
    "UNSUPPORTED_INSTANCE_TYPE", "UPDATE_INSTANCE_PROFILE_FAILURE",
    "USAGE_POLICY_ENTITLEMENT_DENIED", "USER_INITIATED_VM_TERMINATION", "USER_REQUEST",
    "WORKER_SETUP_FAILURE", "WORKSPACE_CANCELLED_ERROR", "WORKSPACE_CONFIGURATION_ERROR",
    "WORKSPACE_UPDATE"
})
"""Every ``compute.TerminationReasonCode`` (databricks-sdk 0.162)."""

DATABRICKS_RUN_CODES: Final = frozenset({
    "BREAKING_CHANGE", "BUDGET_POLICY_LIMIT_EXCEEDED", "CANCELED", "CLOUD_FAILURE",
    "CLUSTER_ERROR", "CLUSTER_REQUEST_LIMIT_EXCEEDED", "DISABLED", "DRIVER_ERROR",
    "FEATURE_DISABLED", "INTERNAL_ERROR", "INVALID_CLUSTER_REQUEST",
    "INVALID_RUN_CONFIGURATION", "LIBRARY_INSTALLATION_ERROR",
    "MAX_CONCURRENT_RUNS_EXCEEDED", "MAX_JOB_QUEUE_SIZE_EXCEEDED",
    "MAX_SPARK_CONTEXTS_EXCEEDED", "REPOSITORY_CHECKOUT_FAILED", "RESOURCE_NOT_FOUND",
    "RUN_EXECUTION_ERROR", "SKIPPED", "STORAGE_ACCESS_ERROR", "SUCCESS",
    "SUCCESS_WITH_FAILURES", "UNAUTHORIZED_ERROR", "USER_CANCELED",
    "WORKSPACE_RUN_LIMIT_EXCEEDED"
})
"""Every ``jobs.TerminationCodeCode`` (databricks-sdk 0.162)."""

DATABRICKS_AZURE_CODES: Final = frozenset({
    # `azure_error_code` of a termination's parameters (kept in `error_codes`): Azure's VM
    # allocation and networking errors
    "AllocationFailed", "InternalServerError", "NetworkingInternalOperationError",
    "OperationNotAllowed", "OverconstrainedAllocationRequest", "QuotaExceeded",
    "SkuNotAvailable", "SubnetIsFull", "ZonalAllocationFailed",
})

# A .NET (or Java, Python) exception type: dotted names ending in Exception or Error.
_EXCEPTION_TYPE = compile_pattern(r"^(?:[A-Za-z_][\w`]*\.)*[A-Za-z_]\w*(?:Exception|Error)$")


@cache
def _adf() -> frozenset[str]:
    catalog = {code for code, entry in load_catalog().items() if entry.family == "adf"}
    return frozenset(catalog | set(CODE_ALIASES) | ADF_STORAGE_CODES)


@cache
def _databricks() -> frozenset[str]:
    catalog = {code for code, entry in load_catalog().items()
               if entry.family.startswith("databricks")}
    return frozenset(catalog | DATABRICKS_TERMINATION_CODES | DATABRICKS_RUN_CODES
                     | DATABRICKS_AZURE_CODES)


def known_codes(source: str) -> frozenset[str]:
    """The codes events of ``source`` are known to carry (empty for an open source)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source: {source!r}")
    if source in ("adf", "synapse"):
        return _adf()
    if source == "databricks":
        return _databricks()
    return frozenset()


def is_plausible(source: str, code: str) -> bool:
    """Whether ``code`` may come with an event of ``source``: known, or (functions) an
    exception type, or (generic) anything."""
    if source == "generic":
        return True
    if source == "functions":
        return _EXCEPTION_TYPE.search(code) is not None
    return code in known_codes(source)
