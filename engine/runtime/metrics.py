"""Prometheus metrics: computed from the database at scrape time, plus process-local
counters for what the database never sees (requests refused before anything was stored).

:class:`Metrics` owns its own ``CollectorRegistry`` (one per app, no global state). The
database series come from the running totals of engine/store/metrics.py, folded in at each
scrape from what was appended since the last one, so a scrape stays cheap with a long log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from engine.store import audit as audit_store
from engine.store import inbox
from engine.store import metrics as metrics_store
from engine.store.db import Database

__all__ = ["CONTENT_TYPE", "REJECTION_REASONS", "DatabaseCollector", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4"
"""What :meth:`Metrics.render` writes: the text format every Prometheus version reads
(the HTTP layer adds the charset)."""
REJECTION_REASONS: tuple[str, ...] = (
    "unauthorized", "too_large", "malformed", "unknown_schema", "unsupported_media", "storage",
    "cross_site", "header_too_large", "timeout", "too_many_connections",
)
"""Why a request was refused (``remediator_rejections_total{reason}``); the last three are
counted by the HTTP server (receivers/server.py) before the app sees a request."""

_COUNTERS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("events", "remediator_events", "Events received, by source and status.",
     ("source", "status")),
    ("matches", "remediator_rule_matches", "Events matched, by rule.", ("rule",)),
    ("actions", "remediator_actions", "Actions by type and outcome (planned, dry_run, "
     "succeeded, failed, cancelled, skipped).", ("action", "outcome")),
    ("guard_blocks", "remediator_guard_blocks", "Guard decisions other than allow, by guard "
     "and decision.", ("guard", "decision")),
    ("rca_calls", "remediator_rca_calls", "Root-cause analyses recorded.", ()),
    ("rca_cache_hits", "remediator_rca_cache_hits", "Root-cause analyses answered from the "
     "cache.", ()),
)


class DatabaseCollector(Collector):
    """Series computed from the database at each scrape (nothing if it is not open yet)."""

    def __init__(self, database: Callable[[], Database | None]) -> None:
        self._database = database

    def describe(self) -> list[Metric]:
        # Nothing at registration: collecting needs the database, which opens later.
        return []

    def collect(self) -> Iterator[Metric]:
        db = self._database()
        if db is None:
            return
        metrics_store.refresh(db)
        by_series: dict[str, list[metrics_store.Count]] = {}
        for count in metrics_store.counts(db):
            by_series.setdefault(count.series, []).append(count)
        for series, name, doc, labels in _COUNTERS:
            family = CounterMetricFamily(name, doc, labels=list(labels))
            for count in by_series.get(series, []):
                family.add_metric([count.labels.get(k, "") for k in labels], count.value)
            if not labels and not by_series.get(series):
                family.add_metric([], 0)
            yield family
        yield CounterMetricFamily("remediator_duplicates", "Deliveries of an event already "
                                  "stored.", value=metrics_store.duplicates(db))
        yield GaugeMetricFamily("remediator_queue_depth", "Events waiting to be processed.",
                                value=inbox.count_pending(db))
        yield GaugeMetricFamily("remediator_events_parked", "Events set aside until an admin "
                                "replays them.", value=inbox.count_parked(db))
        yield _first_action(by_series)
        behind = audit_store.lag(db)
        yield GaugeMetricFamily("remediator_audit_chain_lag_entries", "Audit records written "
                                "but not linked into the chain yet (PostgreSQL: the leader "
                                "links them).", value=behind.entries)
        yield GaugeMetricFamily("remediator_audit_chain_lag_seconds", "Age of the oldest audit "
                                "record not linked yet (0 when none waits).",
                                value=behind.oldest_s)


def _first_action(by_series: dict[str, list[metrics_store.Count]]) -> Metric:
    per_bucket = {c.labels["le"]: c.value for c in by_series.get("first_action_bucket", [])}
    buckets, running = [], 0.0
    for bound in metrics_store.FIRST_ACTION_BUCKETS:
        running += per_bucket.get(str(bound), 0.0)
        buckets.append(("+Inf" if bound == float("inf") else str(bound), running))
    total = sum(c.value for c in by_series.get("first_action_sum", []))
    return HistogramMetricFamily(
        "remediator_first_action_seconds",
        "Seconds from the receipt of an event to its incident's first action.",
        buckets=buckets, sum_value=total)


class Metrics:
    """The registry of one app: database series and process-local rejection counters."""

    def __init__(self, database: Callable[[], Database | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._rejections = Counter("remediator_rejections", "Requests refused, by reason.",
                                   ["reason"], registry=self.registry)
        for reason in REJECTION_REASONS:
            self._rejections.labels(reason)
        self.registry.register(DatabaseCollector(database))

    def reject(self, reason: str) -> None:
        """Count one refused request; ``reason`` is one of :data:`REJECTION_REASONS`."""
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}; expected one of "
                             f"{REJECTION_REASONS}")
        self._rejections.labels(reason).inc()

    def render(self) -> bytes:
        """The exposition text of every series (reads the database: call off the loop)."""
        return generate_latest(self.registry)
