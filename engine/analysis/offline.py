"""The offline analysis: the known-failures catalog first, then heuristics on the message.

It needs no network and never fails, which is why it is what every LLM failure falls back to.
Evidence is quoted from the event's own text, so that it always occurs in the input. Its
patterns are RE2's (engine/text/patterns.py): linear in the message, which an event keeps to
``TEXT_LIMIT`` characters (``\\w+Exception\\b`` under ``re`` took 45 minutes on 800,000 letters).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.analysis.catalog import CatalogEntry, load_catalog
from engine.analysis.model import Analysis, Category
from engine.events import ErrorEvent
from engine.text.patterns import Pattern
from engine.text.patterns import compile as compile_pattern
from engine.text.redact import redact_text

__all__ = ["analyze_offline", "find_entry"]

_CODE_WORD = compile_pattern(r"[A-Za-z][\w-]{2,}|\d{4}")


def _any_case(pattern: str) -> Pattern:
    return compile_pattern(pattern, ignore_case=True)


# Checked in order on the message when the catalog has nothing (or only a wrapper).
_HEURISTICS: tuple[tuple[Pattern, Category, bool, str], ...] = (
    (_any_case(r"throttl|too many requests|\b429\b|rate limit|request limit"),
     "throttling", True, "The service throttled the requests; back off, then rerun."),
    (_any_case(r"\b403\b|forbidden|unauthori[sz]ed|access denied|permission|not authori[sz]ed"
               r"|authorizationfailure|invalid credentials|\b401\b"),
     "permissions", False, "Grant the identity access (or renew its credential), then rerun."),
    (_any_case(r"out of ?memory|\bOOM\b|quota|capacity|stockout|insufficient"),
     "capacity", True, "Rerun on larger or different compute, or raise the quota."),
    (_any_case(r"timed? ?out|timeout|unreachable|connection (reset|refused|closed)|"
               r"\b50[234]\b|temporar|unavailable|server busy|deadlock"),
     "transient_infra", True, "Rerun from the failed step; open a ticket if it repeats."),
    (_any_case(r"does not exist|not found|no such file|is missing|path not found"),
     "data_not_landed", True, "Check that the upstream data has landed, then rerun."),
    (_any_case(r"\w+Exception\b|Traceback|cannot resolve|invalid column|syntax error|"
               r"null ?pointer|KeyError|ValueError|TypeError|division by zero"),
     "code_or_data_bug", False, "Fix the code or the data that raised the error, then rerun."),
    (_any_case(r"configur|linked service|invalid (parameter|setting|value)|secret"),
     "configuration", False, "Correct the configuration named in the error, then rerun."),
)
# Inside a catalog code, the message can tell a retryable case from one that is not.
_REFINE: dict[str, tuple[tuple[Pattern, Category, bool], ...]] = {
    "AdlsGen2OperationFailed": ((_any_case(r"forbidden|403|authoriz"), "permissions", False),),
    "SqlOperationFailed": (
        (_any_case(r"deadlock|timeout"), "transient_infra", True),
        (_any_case(r"invalid column|invalid object|conversion failed"), "code_or_data_bug", False),
    ),
    "2108": ((_any_case(r"'5\d\d'|timed? ?out|timeout"), "transient_infra", True),
             (_any_case(r"'4\d\d'"), "dependency", False)),
}


def find_entry(event: ErrorEvent) -> CatalogEntry | None:
    """The catalog entry for the event's most specific known code, else a code its message
    names; a wrapper (``2200``) only when nothing better is known."""
    catalog = load_catalog()
    candidates = [event.error_code, *event.error_codes, *_CODE_WORD.findall(event.message)]
    found = [catalog[c] for c in candidates if c and c in catalog]
    specific = [e for e in found if e.klass != "wrapper"]
    return (specific or found or [None])[0]


def _evidence(event: ErrorEvent, found: Callable[[str], object] | None) -> list[str]:
    lines = [ln.strip() for ln in redact_text(event.message).splitlines() if ln.strip()]
    if found is not None:
        hits = [ln for ln in lines if found(ln)]
        lines = hits or lines
    return [ln[:300] for ln in lines[:2]]


def analyze_offline(event: ErrorEvent, note: str) -> Analysis:
    """The catalog's (or the heuristics') analysis of ``event``; ``note`` says why offline."""
    subject = event.resource or event.source
    entry = find_entry(event)
    text = f"{event.message} {event.failure_type}"
    if entry is not None and entry.klass != "wrapper":
        category, retryable, confidence = entry.category, entry.retryable, 0.8
        for pattern, cat, retry in _REFINE.get(entry.code, ()):
            if pattern.search(text):
                category, retryable = cat, retry
                break
        cause = f"{entry.code}: {entry.klass or entry.family} ({entry.message or 'known code'})"
        return Analysis(
            summary=f"{subject} failed with {entry.code}, a known {category.replace('_', ' ')} "
                    "failure.",
            probable_cause=cause[:500], category=category, retryable=retryable,
            confidence=confidence,
            evidence=_evidence(event, lambda line: entry.code in line) or [entry.code],
            next_steps=[entry.remedy], engine="offline", fingerprint=event.fingerprint,
            notes=[note, f"matched the catalog entry {entry.code}"],
        )
    code = event.error_code or "an unknown error"
    for pattern, category, retryable, step in _HEURISTICS:
        if pattern.search(text):
            return Analysis(
                summary=f"{subject} failed with {code}; the message points to "
                        f"{category.replace('_', ' ')}.",
                probable_cause=f"The error text matches /{pattern.pattern[:60]}/.",
                category=category, retryable=retryable, confidence=0.5,
                evidence=_evidence(event, pattern.search), next_steps=[step], engine="offline",
                fingerprint=event.fingerprint,
                notes=[note, "no catalog entry; classified by the message"],
            )
    steps = ["Read the run's error output and add a playbook rule for it."]
    if entry is not None:  # only a wrapper code: the inner code decides
        steps.insert(0, f"{entry.code} is a wrapper: {entry.remedy}.")
    return Analysis(
        summary=f"{subject} failed with {code}; the cause is not known.",
        probable_cause="Neither the catalog nor the message heuristics recognise this failure.",
        category="unknown", retryable=False, confidence=0.2, evidence=_evidence(event, None),
        next_steps=steps, engine="offline", fingerprint=event.fingerprint,
        notes=[note, "no catalog entry and no heuristic matched"],
    )
