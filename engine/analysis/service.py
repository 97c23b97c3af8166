"""The RCA engine: cache, budget, LLM, checks, and the offline fallback, in that order.

:class:`Analyzer` is the ``rca(event, history) -> dict`` hook the worker calls for firing
events that no rule matches (and for ``rca.analyze``). It never raises for an LLM problem:
no LLM configured, over budget, a timeout, an HTTP error, malformed JSON or a schema
violation all give the offline analysis, with a note saying why. A hang is bounded by the
client's timeout (and its retries). Every analysis records its ``engine``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import structlog

from engine.actions.base import ActionSpec
from engine.analysis.model import ANSWER_SCHEMA, Analysis, LlmAnswer
from engine.analysis.offline import analyze_offline
from engine.analysis.prompt import Prompt, Tried, build_prompt
from engine.analysis.suggest import check_evidence, check_rule
from engine.clock import Clock, SystemClock, to_ms
from engine.cloud.llm import LlmClient, LlmFailure
from engine.config import LlmSettings, Settings
from engine.events import ErrorEvent
from engine.store import actions as actions_store
from engine.store import rca as rca_store
from engine.store.db import Database
from engine.store.ids import new_id
from engine.text.redact import redact

__all__ = ["Analyzer", "make_rca"]

log = structlog.get_logger("remediator.rca")

PENDING_MS = 300_000
"""How long one asker holds a fingerprint (the LLM client's timeouts and retries are less)."""


class Analyzer:
    """Analyse failures; call it as the worker's ``rca`` hook or use :meth:`analyze`."""

    def __init__(self, db: Database, actions: Mapping[str, ActionSpec], *,
                 llm: LlmClient | None = None, clock: Clock | None = None) -> None:
        self.db = db
        self.actions = actions
        self.llm = llm
        self.clock = clock or SystemClock()
        self.holder = new_id("rca")
        """Who holds a fingerprint's pending row while this analyzer asks the LLM."""

    @property
    def cfg(self) -> LlmSettings | None:
        """The ``[llm]`` settings in use, or None when offline."""
        return self.llm.cfg if self.llm is not None else None

    def __call__(self, event: ErrorEvent, history: list[dict[str, Any]], *,
                 refresh: bool = False, offline: bool = False) -> dict[str, Any]:
        return msgspec.to_builtins(self.analyze(event, history, refresh=refresh,
                                                offline=offline))

    def tried(self, history: Sequence[Mapping[str, Any]]) -> list[Tried]:
        """The worker's history (earlier incidents) with the actions each one took."""
        out = []
        for item in history:
            rows = actions_store.for_incident(self.db, str(item.get("id", "")))
            out.append(Tried(
                incident_id=str(item.get("id", "")), state=str(item.get("state", "")),
                reason=str(item.get("reason", "")), opened_ms=int(item.get("opened_ms") or 0),
                actions=[f"{r.action} -> {r.state}" + (f" ({r.error})" if r.error else "")
                         for r in rows],
            ))
        return out

    def prompt(self, event: ErrorEvent, history: Sequence[Mapping[str, Any]] = ()) -> Prompt:
        """The redacted prompt that would be sent for ``event``."""
        return build_prompt(event, self.tried(history), self.actions)

    def analyze(self, event: ErrorEvent, history: Sequence[Mapping[str, Any]] = (), *,
                refresh: bool = False, offline: bool = False) -> Analysis:
        """The analysis of ``event``: cached, from the LLM, or offline (with the reason)."""
        event = event if event.fingerprint else event.with_fingerprint()
        cfg = self.cfg
        if offline or self.llm is None or cfg is None:
            return self._offline(event, "offline requested" if offline
                                 else "no LLM is configured ([llm])")
        now_ms = to_ms(self.clock.now())
        if not refresh:
            cached = rca_store.get_cached(self.db, event.fingerprint, now_ms=now_ms,
                                          ttl_ms=int(cfg.cache_ttl * 1000))
            if cached is not None:
                found = msgspec.convert(cached, Analysis)
                log.info("rca", engine="cache", fingerprint=event.fingerprint)
                return msgspec.structs.replace(found, engine="cache")
        if not rca_store.ask(self.db, event.fingerprint, self.holder, now_ms=now_ms,
                             lease_ms=PENDING_MS):
            return self._offline(event, "the LLM is being asked about this failure already "
                                        "(its answer will be cached)")
        try:
            return self._ask(event, history, cfg, now_ms)
        finally:
            rca_store.answered(self.db, event.fingerprint, self.holder)

    def _ask(self, event: ErrorEvent, history: Sequence[Mapping[str, Any]], cfg: LlmSettings,
             now_ms: int) -> Analysis:
        assert self.llm is not None
        if not rca_store.take_call(self.db, now_ms=now_ms, limit=cfg.calls_per_hour):
            return self._offline(event, f"LLM budget spent ({cfg.calls_per_hour} calls per "
                                        "hour)")
        prompt = self.prompt(event, history)
        try:
            raw = self.llm.complete(prompt.system, prompt.user, ANSWER_SCHEMA)
        except LlmFailure as exc:
            return self._offline(event, f"LLM failed: {exc.reason}")
        try:
            answer = msgspec.convert(raw, LlmAnswer)
        except msgspec.ValidationError as exc:
            return self._offline(event, f"LLM failed: schema violation: {exc}")
        analysis = self._checked(event, answer, prompt)
        rca_store.put_cached(self.db, event.fingerprint, msgspec.to_builtins(analysis),
                             now_ms=now_ms)
        log.info("rca", engine="llm", model=analysis.model, fingerprint=event.fingerprint,
                 category=analysis.category, notes=len(analysis.notes))
        return analysis

    def _checked(self, event: ErrorEvent, answer: LlmAnswer, prompt: Prompt) -> Analysis:
        answer = msgspec.convert(redact(msgspec.to_builtins(answer)), LlmAnswer)
        notes: list[str] = []
        evidence, dropped = check_evidence(answer.evidence, prompt.user)
        if dropped:
            notes.append(f"dropped {dropped} evidence quote(s) not found in the input")
        rule = answer.suggested_rule
        if rule is not None and rule.strip():
            problem = check_rule(rule, self.actions)
            if problem is not None:
                notes.append(f"suggested rule dropped: {problem}")
                rule = None
        else:
            rule = None
        return Analysis(
            summary=answer.summary, probable_cause=answer.probable_cause,
            category=answer.category, retryable=answer.retryable,
            confidence=answer.confidence, evidence=evidence, next_steps=answer.next_steps,
            suggested_rule=rule, engine="llm", model=self.llm.model if self.llm else "",
            fingerprint=event.fingerprint, notes=notes,
        )

    def _offline(self, event: ErrorEvent, reason: str) -> Analysis:
        log.info("rca", engine="offline", reason=reason, fingerprint=event.fingerprint)
        return analyze_offline(event, reason)

    def close(self) -> None:
        """Release the LLM client's connections."""
        if self.llm is not None:
            self.llm.close()


def make_rca(settings: Settings, db: Database, actions: Mapping[str, ActionSpec], *,
             clock: Clock | None = None) -> Analyzer:
    """The worker's ``rca`` hook from the settings: the LLM of ``[llm]`` if configured, else
    offline; ``actions`` is the registry's table (the history names what each incident ran)."""
    llm = LlmClient(settings.llm) if settings.llm is not None else None
    return Analyzer(db, actions, llm=llm, clock=clock)
