"""The JSON Schema of the playbook format, for editors (``remediator schema``).

Derived from the Structs in :mod:`engine.rules.model` and completed by hand where the Structs
hold free mappings: ``match`` conditions, action names (an enum) and each action's ``with``
(its Params schema, chosen by ``if``/``then`` on the action name; template strings are allowed
where the parameter is not a string).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

import msgspec

from engine.actions.base import ActionSpec
from engine.events import KINDS, SOURCES, STATUSES
from engine.rules.match import EVENT_FIELDS
from engine.rules.model import Playbook

__all__ = ["DURATION_PATTERN", "playbook_schema", "schema_json"]

DURATION_PATTERN = r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
_TEMPLATE = {"type": "string", "pattern": r"\{\{|\{%", "description": "a Jinja2 template"}
_SCALAR = {"type": ["string", "number", "boolean"]}


def _rename_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref":
                out[key] = f"#/$defs/{prefix}{value.rsplit('/', 1)[1]}"
            else:
                out[key] = _rename_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, prefix) for v in node]
    return node


def _allow_templates(schema: dict[str, Any]) -> dict[str, Any]:
    props = {}
    for name, prop in schema.get("properties", {}).items():
        props[name] = prop if prop.get("type") == "string" else {"anyOf": [prop, _TEMPLATE]}
    return {**schema, "properties": props}


def _condition_defs() -> dict[str, Any]:
    value = {"$ref": "#/$defs/ConditionValue"}
    fields: dict[str, Any] = {name: value for name in EVENT_FIELDS}
    for name, allowed in (("source", SOURCES), ("kind", KINDS), ("status", STATUSES)):
        enum = {"enum": list(allowed)}
        fields[name] = {
            "anyOf": [enum, {"type": "array", "items": enum, "minItems": 1},
                      {"$ref": "#/$defs/Operators"}]
        }
    match = {"$ref": "#/$defs/Match"}
    return {
        "Match": {
            "type": "object",
            "description": "Every key must hold. A scalar means equals, a list any of.",
            "properties": {
                **fields,
                "all": {"type": "array", "items": match, "minItems": 1},
                "any": {"type": "array", "items": match, "minItems": 1},
                "not": match,
            },
            "patternProperties": {r"^attributes\.[^.]+(\.[^.]+)*$": value},
            "additionalProperties": False,
        },
        "ConditionValue": {
            "anyOf": [
                _SCALAR,
                {"type": "array", "items": _SCALAR, "minItems": 1},
                {"$ref": "#/$defs/Operators"},
            ]
        },
        "Operators": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "equals": {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}]},
                "regex": {"type": "string", "format": "regex"},
                "glob": {"type": "string"},
                "contains": _SCALAR,
                "exists": {"type": "boolean"},
                "gt": {"type": "number"},
                "gte": {"type": "number"},
                "lt": {"type": "number"},
                "lte": {"type": "number"},
                "not": {"$ref": "#/$defs/ConditionValue"},
            },
        },
    }


def _clean_descriptions(node: Any) -> Any:
    """Docstring-derived descriptions as ``inspect.cleandoc`` leaves them: msgspec releases
    differ on whether they dedent a Struct's docstring, and the schema must not."""
    if isinstance(node, dict):
        return {k: inspect.cleandoc(v) if k == "description" and isinstance(v, str)
                else _clean_descriptions(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_clean_descriptions(v) for v in node]
    return node


def _struct_schema(struct: Any) -> dict[str, Any]:
    return _clean_descriptions(msgspec.json.schema(struct))


def playbook_schema(actions: Mapping[str, ActionSpec]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a playbook file for this table of actions."""
    base = _struct_schema(Playbook)
    defs: dict[str, Any] = base["$defs"]
    names = sorted(actions)
    step = defs["ActionStep"]
    step["properties"]["action"] = {"enum": names, "description": "a registered action"}
    step["properties"]["delay"] = {"type": "string", "pattern": DURATION_PATTERN}
    branches = []
    for name in names:
        spec = actions[name]
        params = _struct_schema(spec.params)
        prefix = f"{name}."
        for def_name, body in params.get("$defs", {}).items():
            defs[prefix + def_name] = _rename_refs(body, prefix)
        root_name = params["$ref"].rsplit("/", 1)[1]
        with_schema = _allow_templates(defs.pop(prefix + root_name))
        required = [r for r in with_schema.get("required", []) if r not in spec.target_fields]
        with_schema = {k: v for k, v in with_schema.items() if k not in ("required", "title")}
        with_schema["description"] = spec.description
        if required:
            with_schema["required"] = required
        defs[f"with.{name}"] = with_schema
        branches.append(
            {
                "if": {"properties": {"action": {"const": name}}, "required": ["action"]},
                "then": {"properties": {"with": {"$ref": f"#/$defs/with.{name}"}}},
            }
        )
    step["allOf"] = branches
    rule = defs["Rule"]["properties"]
    rule["match"] = {"$ref": "#/$defs/Match"}
    rule["cooldown"] = {
        "anyOf": [{"type": "string", "pattern": DURATION_PATTERN}, {"type": "null"}]
    }
    for struct, keys in (("Verify", ("timeout", "interval")), ("Budget", ("window",)),
                         ("Breaker", ("cool_off",))):
        for key in keys:
            defs[struct]["properties"][key] = {"type": "string", "pattern": DURATION_PATTERN}
    defs["Expect"]["properties"]["params"] = {
        "type": "object",
        "propertyNames": {"enum": names},
        "additionalProperties": {"type": "object"},
    }
    defs.update(_condition_defs())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Remediator playbook",
        "$ref": base["$ref"],
        "$defs": dict(sorted(defs.items())),
    }


def schema_json(actions: Mapping[str, ActionSpec]) -> str:
    """The schema as the text committed in docs/playbook.schema.json."""
    return json.dumps(playbook_schema(actions), indent=2, sort_keys=True) + "\n"
