"""Links from an incident to the failed run in its own console, built from the event's ids.

- Data Factory: the monitoring page of the pipeline run,
  ``https://adf.azure.com/en/monitoring/pipelineruns/<runId>?factory=<factory ARM id>``
  (without a run id: the factory's pipeline runs).
- Synapse: ``https://web.azuresynapse.net/en/monitoring/pipelineruns/<runId>?workspace=<ARM id>``.
- Databricks: the run page ``<workspace host>/#job/<job_id>/run/<run_id>`` (the form of the
  Jobs API's ``run_page_url``), the host taken from ``[clouds.databricks]`` by the event's
  workspace id; a cluster event links to the cluster's page. Without a configured host, the
  ``run_page_url`` the event carries, if it is a Databricks run page.
- Application Insights and function apps: the legacy alert's own ``portalLink`` if it is a
  portal link, else the portal page of the alert's target resource.

Every id goes into a URL only after the cloud's naming rules accepted it
(:mod:`engine.cloud.names`, and the checks here for the ids those rules do not cover), and
is percent-encoded as well: a forged alert cannot turn a link into another site, another
path or ``javascript:``. An id that breaks the rules gives no link. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import msgspec

from engine.cloud import names
from engine.events import ErrorEvent
from engine.text import patterns

__all__ = [
    "RunLink",
    "Workspace",
    "action_link",
    "adf_run_url",
    "databricks_cluster_url",
    "databricks_run_url",
    "event_link",
    "portal_resource_url",
    "synapse_run_url",
]

ADF_MONITOR = "https://adf.azure.com/en/monitoring/pipelineruns"
SYNAPSE_MONITOR = "https://web.azuresynapse.net/en/monitoring/pipelineruns"
PORTAL = "https://portal.azure.com"
DATABRICKS_DOMAINS = (".azuredatabricks.net", ".cloud.databricks.com", ".gcp.databricks.com")
"""Hosts a ``run_page_url`` from an event may point at when no workspace host is configured."""

_URL_LIMIT = 2000
_DIGITS = patterns.compile(r"[0-9]{1,19}")
_ARM_NAME = patterns.compile(r"[A-Za-z0-9][A-Za-z0-9_.()-]{0,259}")
_ARM_ID = patterns.compile(
    r"/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/([A-Za-z.]+)/([A-Za-z]+)/([^/]+)",
    ignore_case=True)
_RUN_PAGE = patterns.compile(r"/?(?:\?o=[0-9]{1,20})?#job/[0-9]{1,19}/run/[0-9]{1,19}"
                             r"|/jobs/[0-9]{1,19}/runs/[0-9]{1,19}(?:\?o=[0-9]{1,20})?")
_PORTAL_TYPES = ("microsoft.insights/components", "microsoft.web/sites")
_OWNER_TYPES = {"adf": "microsoft.datafactory/factories", "synapse": "microsoft.synapse/workspaces"}
_NOT_IN_URL = patterns.compile(r"[\x00-\x20\x7f-\x9f\\]")


class RunLink(msgspec.Struct, frozen=True):
    """Where a link goes and what it says (``label``: "ADF run 7b1e4c52…")."""

    label: str
    url: str


class Workspace(msgspec.Struct, frozen=True):
    """A configured Databricks workspace (``[clouds.databricks.<name>]``): where its pages
    are."""

    name: str
    workspace_id: str
    host: str


def _ok(kind: str, value: str) -> bool:
    return names.problem(kind, value) is None


def _id(value: Any) -> str:
    """A Databricks job or run id as text, or "" if it is not one (digits, 64-bit)."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    return text if _DIGITS.fullmatch(text) and 0 < int(text) < 2**63 else ""


def _short(run_id: str) -> str:
    return run_id if len(run_id) <= 12 else run_id[:8] + "…"


def _arm(subscription: str, group: str, provider: str, kind: str, name: str) -> str:
    return (f"/subscriptions/{quote(subscription, safe='')}/resourceGroups/"
            f"{quote(group, safe='')}/providers/{provider}/{kind}/{quote(name, safe='')}")


def _owner(event: ErrorEvent, attribute: str, kind: str) -> tuple[str, str, str] | None:
    """(subscription, resource group, factory or workspace) of an ADF or Synapse event: its
    attributes, else its ``resource_id``; None unless all three pass the naming rules."""
    attrs = event.attributes
    sub, group, name = (str(attrs.get(k) or "") for k in ("subscription", "resource_group",
                                                           attribute))
    parsed = _ARM_ID.fullmatch(event.resource_id[:_URL_LIMIT]) if event.resource_id else None
    if parsed is not None and f"{parsed[3]}/{parsed[4]}".lower() == _OWNER_TYPES[event.source]:
        sub, group = sub or parsed[1], group or parsed[2]
        name = name or parsed[5]
    if _ok("subscription", sub) and _ok("resource_group", group) and _ok(kind, name):
        return sub, group, name
    return None


def adf_run_url(run_id: str, subscription: str, resource_group: str,
                factory: str) -> str | None:
    """The Data Factory monitoring page of a pipeline run (``run_id`` empty: of the
    factory's runs); None if a name breaks the rules."""
    if not (_ok("subscription", subscription) and _ok("resource_group", resource_group)
            and _ok("factory", factory)) or (run_id and not _ok("pipeline_run_id", run_id)):
        return None
    factory_id = _arm(subscription, resource_group, "Microsoft.DataFactory", "factories",
                      factory)
    path = f"/{quote(run_id, safe='')}" if run_id else ""
    return f"{ADF_MONITOR}{path}?{urlencode({'factory': factory_id})}"


def synapse_run_url(run_id: str, subscription: str, resource_group: str,
                    workspace: str) -> str | None:
    """The Synapse Studio monitoring page of a pipeline run (or of the workspace's runs)."""
    if not (_ok("subscription", subscription) and _ok("resource_group", resource_group)
            and _ok("synapse_workspace", workspace)) or (
            run_id and not _ok("pipeline_run_id", run_id)):
        return None
    workspace_id = _arm(subscription, resource_group, "Microsoft.Synapse", "workspaces",
                        workspace)
    path = f"/{quote(run_id, safe='')}" if run_id else ""
    return f"{SYNAPSE_MONITOR}{path}?{urlencode({'workspace': workspace_id})}"


def _host(url: str) -> str | None:
    """A configured workspace URL reduced to ``scheme://host[:port]``, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username \
            or parts.password:
        return None
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")


def databricks_run_url(host: str, job_id: Any, run_id: Any) -> str | None:
    """``<host>/#job/<job_id>/run/<run_id>`` (``host`` from the settings)."""
    base, job, run = _host(host), _id(job_id), _id(run_id)
    return f"{base}/#job/{job}/run/{run}" if base and job and run else None


def databricks_cluster_url(host: str, cluster_id: str) -> str | None:
    """The cluster's page in its workspace."""
    base = _host(host)
    if not base or not _ok("cluster_id", cluster_id):
        return None
    return f"{base}/#setting/clusters/{quote(cluster_id, safe='')}/configuration"


def portal_resource_url(resource_id: str) -> str | None:
    """The Azure portal page of an Application Insights component or a function app, from
    its ARM id."""
    parsed = _ARM_ID.fullmatch(resource_id[:_URL_LIMIT]) if resource_id else None
    if parsed is None or f"{parsed[3]}/{parsed[4]}".lower() not in _PORTAL_TYPES:
        return None
    sub, group, provider, kind, name = (parsed[i] for i in range(1, 6))
    if not (_ok("subscription", sub) and _ok("resource_group", group)
            and _ARM_NAME.fullmatch(name)):
        return None
    return f"{PORTAL}/#@/resource{_arm(sub, group, provider, kind, name)}"


def _given(url: Any, *, hosts: tuple[str, ...], form: patterns.Pattern | None) -> str | None:
    """A URL an event carries, if it is an https link to one of ``hosts`` (exactly, or a
    subdomain when the entry starts with "."), without credentials or port, and its path,
    query and fragment have ``form`` (any, if None)."""
    if not isinstance(url, str) or len(url) > _URL_LIMIT or _NOT_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme != "https" or port or parts.username or parts.password or not any(
            host == h or (h.startswith(".") and host.endswith(h)) for h in hosts):
        return None
    rest = parts.path + (f"?{parts.query}" if parts.query else "") + (
        f"#{parts.fragment}" if parts.fragment else "")
    if form is not None and not form.fullmatch(rest):
        return None
    return url


def _databricks_host(event: ErrorEvent, workspaces: Sequence[Workspace],
                     cloud: str = "") -> str:
    """The configured host of the action's ``cloud`` entry, else of the event's workspace id
    (the only workspace when the event names none), or ""."""
    if cloud:
        return next((w.host for w in workspaces if w.name == cloud), "")
    wanted = str(event.attributes.get("workspace_id") or "")
    if wanted:
        return next((w.host for w in workspaces if w.workspace_id == wanted), "")
    return workspaces[0].host if len(workspaces) == 1 else ""


def event_link(event: ErrorEvent | None, workspaces: Sequence[Workspace]) -> RunLink | None:
    """The console page of what failed, or None when the event's ids do not make one.

    ``workspaces``: the configured Databricks workspaces, where their pages are."""
    if event is None:
        return None
    attrs = event.attributes
    if event.source in ("adf", "synapse"):
        attribute, kind = (("factory", "factory") if event.source == "adf"
                           else ("workspace", "synapse_workspace"))
        owner = _owner(event, attribute, kind)
        if owner is None:
            return None
        build = adf_run_url if event.source == "adf" else synapse_run_url
        run_id = event.run_id if event.run_id and _ok("pipeline_run_id", event.run_id) else ""
        url = build(run_id, *owner)
        where = "ADF" if event.source == "adf" else "Synapse"
        label = (f"{where} run {_short(run_id)}" if run_id
                 else f"{where} pipeline runs of {owner[2]}")
        return RunLink(label, url) if url else None
    if event.source == "databricks":
        host = _databricks_host(event, workspaces)
        if event.kind in ("cluster", "library"):
            cluster = str(attrs.get("cluster_id") or event.resource_id)
            url = databricks_cluster_url(host, cluster) if host else None
            return RunLink(f"Databricks cluster {cluster}", url) if url else None
        job, run = _id(attrs.get("job_id") or event.resource_id), _id(event.run_id)
        url = databricks_run_url(host, job, run) if host else _given(
            attrs.get("run_page_url"), hosts=DATABRICKS_DOMAINS, form=_RUN_PAGE)
        return RunLink(f"Databricks run {run or 'page'}", url) if url else None
    if event.source == "functions":
        url = _given(attrs.get("portal_link"), hosts=("portal.azure.com",), form=None) \
            or portal_resource_url(event.resource_id)
        name = str(attrs.get("app_insights") or attrs.get("function_app") or event.resource)
        return RunLink(f"Azure portal: {name[:80]}", url) if url else None
    return None


def action_link(event: ErrorEvent | None, ref: Mapping[str, Any],
                workspaces: Sequence[Workspace]) -> RunLink | None:
    """The console page of the run an action started (its result's ``ref``: the new ADF or
    Synapse run, the repaired Databricks run), or None."""
    if event is None or not ref:
        return None
    run_id = str(ref.get("run_id") or "")
    if event.source in ("adf", "synapse") and run_id:
        attribute, kind = (("factory", "factory") if event.source == "adf"
                           else ("workspace", "synapse_workspace"))
        owner = _owner(event, attribute, kind)
        if owner is None:
            return None
        sub, group, name = owner
        name = str(ref.get(attribute) or name)
        group = str(ref.get("resource_group") or group)
        build = adf_run_url if event.source == "adf" else synapse_run_url
        url = build(run_id, sub, group, name)
        where = "ADF" if event.source == "adf" else "Synapse"
        return RunLink(f"{where} run {_short(run_id)}", url) if url else None
    cloud = str(ref.get("cloud") or "")
    if event.source == "databricks" and _id(ref.get("run_id")):
        host = _databricks_host(event, workspaces, cloud)
        job = _id(ref.get("job_id") or event.attributes.get("job_id") or event.resource_id)
        url = databricks_run_url(host, job, ref.get("run_id")) if host else None
        return RunLink(f"Databricks run {ref.get('run_id')}", url) if url else None
    if event.source == "databricks" and ref.get("cluster_id"):
        host = _databricks_host(event, workspaces, cloud)
        cluster = str(ref.get("cluster_id"))
        url = databricks_cluster_url(host, cluster) if host else None
        return RunLink(f"Databricks cluster {cluster}", url) if url else None
    return None
