"""Warnings about playbooks that load but cannot match or render as their author meant.

The loader refuses what is wrong in itself (engine/rules/load.py); these are rules that are
well formed yet name something no event carries or the settings do not define. ``remediator
validate`` prints each as ``file:line:col: warning: message`` (an error under ``--strict``),
and ``remediator serve`` logs them when it starts. The checks:

- **attributes**: a path ``attributes.<name>`` in a rule's or a policy's ``match:``, or
  ``event.attributes.<name>`` in a template, that no parser, enrichment or poller sets on
  the events the rule (policy) can see (its ``source`` and ``kind`` conditions, ``any:``
  branch by branch; engine/attributes.py), and a ``source`` with a ``kind`` that no sender
  makes;
- **error codes**: an ``error_code``/``error_codes`` value of a rule's or a policy's
  ``match:`` that no sender of its sources produces (engine/known_codes.py) and no playbook
  of the set declares under ``known_error_codes:``;
- **settings** (only given them): a ``channel:`` that ``[clouds.channels]`` does not define,
  ``ticket.create`` without ``[clouds.ticket]``, a cloud action without an entry for its
  cloud or through an entry whose credential lacks a field its type needs (once per entry),
  a literal ``url:`` whose host is not allowed, an ``[llm]`` without the key its provider
  needs; and a note (not a warning: it is a mode of its own) when ``rca.analyze`` will be
  offline for want of ``[llm]``.

Each warning names the rule's (policy's) file, line and column, and says what was probably meant
(``difflib``) where something close exists. Nothing here changes what the engine does.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2 import nodes

from engine.actions.base import ActionSpec
from engine.attributes import ATTRIBUTES, known_names
from engine.config import Settings
from engine.errors import PermanentActionError, PlaybookError
from engine.events import KINDS, SOURCES
from engine.hosts import check_url
from engine.known_codes import OPEN_SOURCES, is_plausible, known_codes
from engine.rules import _yaml
from engine.rules.load import load_playbooks
from engine.rules.reachable import alternatives
from engine.rules.ruleset import CompiledPolicy, CompiledRule, PlaybookSet

__all__ = ["NOT_CHECKED", "Finding", "lint", "load_checked"]

NOT_CHECKED = ("not checked without --config: the channels, ticket system, LLM and cloud "
               "entries that the actions name")
"""What ``validate`` says when it has no settings to check the actions against."""

Path_ = tuple[str | int, ...]
_Item = CompiledRule | CompiledPolicy
"""What a warning is about: a rule, or a policy (its ``match:``)."""
_CODE_FIELDS = ("error_code", "error_codes")
_CLOUD_ACTIONS = {"adf": "adf", "synapse": "synapse", "databricks": "databricks"}


@dataclass(frozen=True)
class Finding:
    """One warning, where it was written."""

    file: str
    line: int
    col: int
    message: str
    level: Literal["warning", "note"] = "warning"
    """A note says something worth knowing that is not wrong (and not an error under
    ``--strict``)."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.level}: {self.message}"


@dataclass(frozen=True)
class _Scope:
    """The sources and kinds of the events a condition can see."""

    sources: frozenset[str]
    kinds: frozenset[str]

    def narrow(self, spec: Mapping[Any, Any]) -> _Scope:
        sources, kinds = _equal(spec.get("source")), _equal(spec.get("kind"))
        return _Scope(self.sources & sources if sources is not None else self.sources,
                      self.kinds & kinds if kinds is not None else self.kinds)

    def attributes(self) -> set[str]:
        return {name for s in self.sources for k in self.kinds
                for name in ATTRIBUTES.get((s, k), {})}

    def describe(self) -> str:
        """``adf events``, ``databricks cluster events``, ``any event``."""
        if self.sources == set(SOURCES) and self.kinds == set(KINDS):
            return "any event"
        sources = " or ".join(sorted(self.sources)) if self.sources != set(SOURCES) else "any"
        kinds = "" if self.kinds == set(KINDS) else " " + " or ".join(sorted(self.kinds))
        return f"{sources}{kinds} events"


_EVERYTHING = _Scope(frozenset(SOURCES), frozenset(KINDS))


def _equal(spec: Any) -> frozenset[str] | None:
    """The values an equality (any-of) condition accepts; None for any other condition."""
    if isinstance(spec, dict) and list(spec) == ["equals"]:
        spec = spec["equals"]
    items = spec if isinstance(spec, list) else [spec]
    if spec is None or not all(isinstance(x, str) for x in items):
        return None
    return frozenset(items)


def _did_you_mean(word: str, candidates: Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f"; did you mean `{prefix}{close[0]}`?" if close else ""


class _Linter:
    def __init__(self, playbooks: PlaybookSet, settings: Settings | None,
                 settings_name: str) -> None:
        self.playbooks = playbooks
        self.settings = settings
        self.settings_name = settings_name
        self.findings: list[Finding] = []
        self.declared = {code for p in playbooks.playbooks for code in p.known_error_codes}
        self.docs: dict[str, tuple[_yaml.Document | None, dict[str, int]]] = {}
        self.noted_llm = False
        self.credentials_told: set[tuple[str, str]] = set()

    # -- where ------------------------------------------------------------------------------
    def _doc(self, item: _Item) -> tuple[_yaml.Document | None, dict[str, int]]:
        """The file as written (its positions) and the indexes of its rules and policies
        (``rules/<id>``, ``policies/<id>``), if it is unchanged."""
        if item.file not in self.docs:
            doc, index = None, {}
            try:
                text = Path(item.file).read_text(encoding="utf-8")
                if f"sha256:{hashlib.sha256(text.encode()).hexdigest()}" == item.content_hash:
                    doc = _yaml.parse(text)
                    for section in ("rules", "policies"):
                        raw = doc.data.get(section) if isinstance(doc.data, dict) else None
                        index.update({f"{section}/{r.get('id')}": i
                                      for i, r in enumerate(raw if isinstance(raw, list) else [])
                                      if isinstance(r, dict)})
            except (OSError, UnicodeDecodeError, _yaml.YamlSyntaxError):
                doc = None
            self.docs[item.file] = (doc, index)
        return self.docs[item.file]

    def warn(self, rule: _Item, path: Path_, message: str, at_key: bool = False,
             level: Literal["warning", "note"] = "warning") -> None:
        doc, index = self._doc(rule)
        line, col = rule.line, rule.col
        section = "policies" if isinstance(rule, CompiledPolicy) else "rules"
        key = f"{section}/{rule.id}"
        if doc is not None and key in index:
            line, col = doc.position((section, index[key], *path), at_key)
        finding = Finding(rule.file, line, col, message, level)
        if finding not in self.findings:
            self.findings.append(finding)

    # -- match ------------------------------------------------------------------------------
    def match(self, rule: _Item, spec: Any, path: Path_, outer: _Scope) -> None:
        if not isinstance(spec, dict):
            return
        scope = outer.narrow(spec)
        if scope != outer and not scope.attributes():
            key = "kind" if "kind" in spec else "source"
            what = (f"no sender makes {scope.describe()}" if scope.sources and scope.kinds
                    else f"this `{key}` contradicts the conditions around it")
            self.warn(rule, (*path, key), f"{what}: this condition never holds")
            return
        for key, value in spec.items():
            where = (*path, key)
            if key in ("all", "any") and isinstance(value, list):
                for i, item in enumerate(value):
                    self.match(rule, item, (*where, i), scope)
            elif key == "not":
                self.match(rule, value, where, scope)
            elif isinstance(key, str) and key.startswith("attributes."):
                name = key.split(".")[1]
                self.attribute(rule, where, "attributes.", name, scope, at_key=True)
            elif key in _CODE_FIELDS:
                for at, code in _codes(value, where):
                    self.code(rule, at, code, scope)

    def attribute(self, rule: _Item, where: Path_, prefix: str, name: str,
                  scope: _Scope, *, at_key: bool) -> None:
        here = scope.attributes()
        if name in here:
            return
        shown = f"`{prefix}{name}`"
        if name in known_names():
            self.warn(rule, where, f"{shown} is never set on {scope.describe()} (only on "
                      f"{_where_set(name)})", at_key)
            return
        hint = _did_you_mean(name, here, prefix) or _did_you_mean(name, known_names(), prefix)
        self.warn(rule, where, f"{shown}: no sender or enrichment sets this attribute on "
                  f"{scope.describe()}{hint or ' (docs/SENDERS.md lists them)'}", at_key)

    def code(self, rule: _Item, where: Path_, code: str, scope: _Scope) -> None:
        closed = scope.sources - OPEN_SOURCES
        if not scope.sources - {"generic"} or code in self.declared:
            return
        candidates = [s for s in scope.sources if s != "generic"]
        if any(is_plausible(source, code) for source in candidates):
            return
        if not closed:  # functions only
            self.warn(rule, where, f"`{code}`: functions events carry the exception's type as "
                      "their error code (`System.TimeoutException`)")
            return
        known = set(self.declared).union(*(known_codes(s) for s in closed))
        hint = _did_you_mean(code, known) or (
            "; declare your own codes under `known_error_codes:`")
        events = "" if scope == _EVERYTHING else \
            f" for {_Scope(frozenset(closed), scope.kinds).describe()}"
        self.warn(rule, where, f"`{code}`: no sender produces this error code{events}{hint}")

    # -- templates --------------------------------------------------------------------------
    def templates(self, rule: CompiledRule, scope: _Scope) -> None:
        for kind in ("actions", "on_failure"):
            for j, step in enumerate(getattr(rule, kind)):
                for key, value in step.step.with_.items():
                    for at, text in _strings(value, (kind, j, "with", key)):
                        for name in _template_attributes(text):
                            self.attribute(rule, at, "event.attributes.", name, scope,
                                           at_key=False)

    # -- settings ---------------------------------------------------------------------------
    def settings_of(self, rule: CompiledRule) -> None:
        settings = self.settings
        assert settings is not None
        clouds = settings.clouds
        where = self.settings_name
        for kind in ("actions", "on_failure"):
            for j, step in enumerate(getattr(rule, kind)):
                name, args, path = step.spec.name, step.step.with_, (kind, j)
                channel = args.get("channel")
                if isinstance(channel, str) and channel and "{" not in channel \
                        and channel not in clouds.channels:
                    defined = ", ".join(sorted(clouds.channels)) or "none"
                    hint = _did_you_mean(channel, clouds.channels) or f" (defined: {defined})"
                    self.warn(rule, (*path, "with", "channel"),
                              f"`{name}`: channel `{channel}` is not in [clouds.channels] of "
                              f"{where}{hint}")
                url = args.get("url")
                if isinstance(url, str) and url:
                    self.url(rule, (*path, "with", "url"), name, url)
                if name == "ticket.create" and clouds.ticket is None:
                    self.warn(rule, (*path, "action"),
                              f"`ticket.create`: {where} has no [clouds.ticket]: no ticket "
                              "would be opened")
                if name == "rca.analyze" and settings.llm is None \
                        and args.get("offline") is not True and not self.noted_llm:
                    self.noted_llm = True  # a designed mode: said once, not a warning
                    self.warn(rule, (*path, "action"),
                              f"`rca.analyze`: {where} has no [llm]: the analyses will be "
                              "offline (the error catalog only)", level="note")
                elif name == "rca.analyze" and settings.llm is not None \
                        and settings.llm.missing() and not self.noted_llm:
                    self.noted_llm = True
                    self.warn(rule, (*path, "action"),
                              f"`rca.analyze`: [llm] of {where}: provider "
                              f"{settings.llm.provider!r} needs api_key: every call to the "
                              "LLM would be refused (the analyses fall back to the error "
                              "catalog)")
                cloud = _CLOUD_ACTIONS.get(name.split(".")[0])
                if cloud is not None and not getattr(clouds, cloud):
                    self.warn(rule, (*path, "action"),
                              f"`{name}`: {where} has no [clouds.{cloud}] entry: the action "
                              "could not reach any")
                elif cloud is not None:
                    self.credentials(rule, (*path, "action"), name, cloud)

    def credentials(self, rule: CompiledRule, path: Path_, action: str, cloud: str) -> None:
        """Once per ``[clouds.<cloud>.<name>]`` entry whose credential lacks a field its type
        needs: every call through it would be refused."""
        assert self.settings is not None
        for entry_name, entry in sorted(getattr(self.settings.clouds, cloud).items()):
            if (cloud, entry_name) in self.credentials_told:
                continue
            if cloud == "databricks":
                missing, kind = entry.missing(), f"auth {entry.auth!r}"
            else:
                missing, kind = entry.credential.missing(), \
                    f"credential type {entry.credential.type!r}"
            if missing:
                self.credentials_told.add((cloud, entry_name))
                self.warn(rule, path, f"`{action}`: [clouds.{cloud}.{entry_name}] of "
                          f"{self.settings_name}: {kind} needs {' and '.join(missing)}: every "
                          "call through it would be refused")

    def url(self, rule: CompiledRule, path: Path_, action: str, url: str) -> None:
        assert self.settings is not None
        literal = url.split("{", 1)[0]  # a templated URL writes its scheme and host first
        if not literal:
            return
        try:
            check_url(self.settings.clouds, literal, f"`{action}`")
        except PermanentActionError as exc:
            self.warn(rule, path, str(exc))


def _where_set(name: str) -> str:
    """``databricks cluster or library events``: the events that carry attribute ``name``."""
    parts = []
    for source in SOURCES:
        kinds = [k for (s, k), attrs in ATTRIBUTES.items() if s == source and name in attrs]
        every = [k for (s, k) in ATTRIBUTES if s == source]
        if kinds:
            parts.append(source if kinds == every else f"{source} {' or '.join(kinds)}")
    return ", ".join(parts) + " events"


def _codes(spec: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    """Every code an ``error_code``/``error_codes`` condition names, with its path."""
    if isinstance(spec, str | int) and not isinstance(spec, bool):
        yield path, str(spec)
    elif isinstance(spec, list):
        for i, item in enumerate(spec):
            yield from _codes(item, (*path, i))
    elif isinstance(spec, dict):
        for op in ("equals", "not", "contains"):
            if op in spec:
                yield from _codes(spec[op], (*path, op))


def _strings(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


_PARSER = jinja2.Environment()


def _is_attributes(node: nodes.Node) -> bool:
    """Whether ``node`` is ``event.attributes`` (or ``event['attributes']``)."""
    if isinstance(node, nodes.Getattr):
        key: Any = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        key = node.arg.value
    else:
        return False
    base = node.node
    return key == "attributes" and isinstance(base, nodes.Name) and base.name == "event"


def _template_attributes(text: str) -> list[str]:
    """The names of ``event.attributes.<name>`` (also ``['name']`` and ``.get('name')``)
    that a template reads, in order."""
    if "{{" not in text and "{%" not in text:
        return []
    try:
        tree = _PARSER.parse(text)
    except jinja2.TemplateSyntaxError:
        return []  # the loader reports it
    names: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call)):
        name = None
        if isinstance(node, nodes.Call):
            call = node.node
            if isinstance(call, nodes.Getattr) and call.attr == "get" \
                    and _is_attributes(call.node) and node.args \
                    and isinstance(node.args[0], nodes.Const):
                name = node.args[0].value
        elif _is_attributes(node.node):
            if isinstance(node, nodes.Getattr) and node.attr != "get":
                name = node.attr
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                name = node.arg.value
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def _rule_scope(spec: Any) -> _Scope:
    """The sources and kinds of every event the whole rule can match."""
    alts = alternatives(spec)
    if not alts:
        return _EVERYTHING.narrow(spec) if isinstance(spec, dict) else _EVERYTHING
    sources: set[str] = set()
    kinds: set[str] = set()
    for alt in alts:
        scope = _EVERYTHING.narrow({key: conditions[0] for key, conditions in alt.items()
                                    if key in ("source", "kind")})
        sources |= scope.sources
        kinds |= scope.kinds
    return _Scope(frozenset(sources), frozenset(kinds))


def lint(playbooks: PlaybookSet, settings: Settings | None = None,
         settings_name: str = "the settings") -> list[Finding]:
    """Every warning about ``playbooks`` (a set that loaded), in file order, then by position.
    ``settings``: also check the actions against them (``settings_name`` names them)."""
    linter = _Linter(playbooks, settings, settings_name)
    for rule in playbooks.rules:
        linter.match(rule, rule.condition.spec, ("match",), _EVERYTHING)
        linter.templates(rule, _rule_scope(rule.condition.spec))
        if settings is not None:
            linter.settings_of(rule)
    for policy in playbooks.policies:
        linter.match(policy, policy.condition.spec, ("match",), _EVERYTHING)
    order = {name: i for i, name in enumerate(playbooks.files)}
    return sorted(linter.findings, key=lambda f: (order.get(f.file, len(order)), f.line, f.col))


def load_checked(
    paths: Iterable[str | Path], actions: Mapping[str, ActionSpec],
    settings: Settings | None = None, settings_name: str = "the settings", *,
    strict: bool = False,
) -> tuple[PlaybookSet, list[Finding]]:
    """Load the playbooks (PlaybookError with every problem, as the loader says them), then
    lint them. ``strict``: a warning is a problem too (PlaybookError with the warnings)."""
    playbooks = load_playbooks(paths, actions)
    findings = lint(playbooks, settings, settings_name)
    warnings = [str(f) for f in findings if f.level == "warning"]
    if strict and warnings:
        raise PlaybookError(warnings)
    return playbooks, findings
