"""The clouds' own naming rules, checked for every name an event can put into a cloud call.

An alert names the factory, pipeline, run, workspace, job or cluster to act on, and those names
become parts of a URL (``.../factories/{f}/pipelines/{p}/createRun``) or of a request body. A
name the cloud could never have given (``..``, ``a/b``, ``%2e%2e``, a control character, 10 kB
of text) would change which URL is called, so it is refused here, before any SDK call, with a
message that names the field, the value (quoted, cut to 64 characters) and the rule.

The action parameter Structs check their names in ``__post_init__`` (a bad name fails when the
action is rendered and escalates its incident); enrichment calls :func:`require` before each
look-up and notes the refusal instead of calling.

Sources: Data Factory naming rules (learn.microsoft.com/azure/data-factory/naming-rules), Azure
resource name rules (learn.microsoft.com/azure/azure-resource-manager/management/
resource-name-rules) for resource groups and Synapse workspaces, and the Databricks Jobs and
Clusters API reference for ids and keys. Azure names are case-insensitive, so case is never
refused; ids keep to what the services issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import PermanentActionError
from engine.text import patterns

__all__ = ["RULES", "InvalidName", "NameRule", "check", "check_id", "problem", "require",
           "shown"]

_CONTROL = patterns.compile(r"[\x00-\x1f\x7f-\x9f]")


class InvalidName(PermanentActionError, ValueError):
    """A name taken from an event breaks the cloud's naming rules: nothing is called.

    Also a ``ValueError``, so that msgspec reports it from a Params ``__post_init__`` as a
    validation error of the parameters.
    """


@dataclass(frozen=True)
class NameRule:
    """One kind of name: what it is called in messages, its pattern (full match), its maximum
    length and the rule in words."""

    label: str
    pattern: patterns.Pattern
    max_len: int
    rule: str


def _rule(label: str, pattern: str, max_len: int, rule: str) -> NameRule:
    return NameRule(label, patterns.compile(pattern), max_len, rule)


_ADF_OBJECT = r"[A-Za-z0-9_][^.+?/<>*%&:\\#]*"
_ADF_OBJECT_RULE = ("starting with a letter, a digit or '_', without "
                    ". + ? / < > * % & : \\ # or control characters")

RULES: dict[str, NameRule] = {
    "factory": _rule(
        "Data Factory name", r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", 63,
        "3-63 letters, digits and single hyphens between them"),
    "adf_pipeline": _rule("Data Factory pipeline name", _ADF_OBJECT, 260,
                          f"at most 260 characters, {_ADF_OBJECT_RULE}"),
    "synapse_pipeline": _rule("Synapse pipeline name", _ADF_OBJECT, 260,
                              f"at most 260 characters, {_ADF_OBJECT_RULE}"),
    "activity": _rule("activity name", _ADF_OBJECT, 55,
                      f"at most 55 characters, {_ADF_OBJECT_RULE}"),
    "pipeline_run_id": _rule(
        "pipeline run id", r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", 64,
        "a run id (a GUID): letters, digits and single hyphens, at most 64 characters"),
    "resource_group": _rule(
        "resource group name", rf"[-{patterns.WORD}.()]*[-{patterns.WORD}()]", 90,
        "1-90 letters, digits, '_', '-', '.', '(' and ')', not ending with '.'"),
    "subscription": _rule(
        "subscription id", r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}", 36,
        "a GUID"),
    "synapse_workspace": _rule(
        "Synapse workspace name", r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", 50,
        "1-50 letters, digits and single hyphens between them"),
    "cluster_id": _rule(
        "Databricks cluster id", r"[0-9]{4}-[0-9]{6}-[A-Za-z0-9]{1,32}", 44,
        "MMDD-HHMMSS-suffix, as Databricks issues them (e.g. 0314-020004-k3x9wq2e)"),
    "task_key": _rule(
        "Databricks task or job cluster key", r"[A-Za-z0-9_-]+", 100,
        "1-100 letters, digits, '_' and '-'"),
    "workspace_id": _rule(
        "Databricks workspace id", r"[0-9]+", 20, "digits only"),
}
"""Every kind of name, by the key the callers use."""

_DATABRICKS_ID_MAX = 2**63 - 1


def shown(value: str) -> str:
    """``value`` quoted for a message: control characters escaped, at most 64 characters."""
    text = value if len(value) <= 64 else value[:63] + "…"
    return repr(text)


def problem(kind: str, value: str) -> str | None:
    """Why ``value`` is not a valid name of ``kind`` (a key of :data:`RULES`), or None."""
    rule = RULES[kind]
    if _CONTROL.search(value):
        why = "contains a control character"
    elif not value:
        why = "is empty"
    elif len(value) > rule.max_len:
        why = f"is {len(value)} characters long"
    elif not rule.pattern.fullmatch(value):
        why = ""
    elif kind == "factory" and len(value) < 3:
        why = "is shorter than 3 characters"
    elif kind == "synapse_workspace" and "-ondemand" in value.lower():
        why = "contains '-ondemand'"
    else:
        return None
    because = f" ({why})" if why else ""
    return f"{shown(value)} is not a valid {rule.label}{because}: {rule.rule}"


def check(field: str, kind: str, value: str, *, optional: bool = False) -> None:
    """Raise :class:`InvalidName` naming ``field`` if ``value`` breaks the rule of ``kind``;
    an empty ``value`` passes when ``optional`` (the settings supply it)."""
    if optional and value == "":
        return
    why = problem(kind, value)
    if why is not None:
        raise InvalidName(f"{field} {why}")


def check_id(field: str, value: int | None) -> None:
    """A Databricks job or run id: a positive 64-bit integer (None passes: not given)."""
    if value is not None and not 0 < value <= _DATABRICKS_ID_MAX:
        raise InvalidName(f"{field} {value} is not a valid Databricks id: "
                          f"a positive 64-bit integer")


def require(field: str, kind: str, value: str) -> str:
    """``value`` if it is a valid name of ``kind``, else :class:`InvalidName`."""
    check(field, kind, value)
    return value
