"""One notification per incident state change: the outbox.

The incident row records the last state announced (``notified_state``); a periodic job
(:func:`register`) posts one message for each incident whose state differs, to every channel
of ``[notifications]``, through ``notify.webhook``'s code (so each channel's format applies).
Changes between two ticks coalesce into one message about the latest state, and a storm of
events that join one incident announces nothing new: only a state change does. A failed post
is retried ``retries`` times, ``backoff_s`` doubling (a permanent error gives up at once);
every post, failure, retry time and giving up is in the audit log. The ``text`` template's
own words are markup; what its ``{{ }}`` put in, and the incident's resource and error code
in the title, are escaped for each channel (:mod:`engine.text.markup`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import jinja2
import msgspec
import structlog

from engine.actions import notify
from engine.actions.context import ActionContext
from engine.clock import Clock, to_ms
from engine.config import Settings
from engine.deps import Deps
from engine.errors import ActionError, ConfigError, RetryableActionError
from engine.events import ErrorEvent
from engine.rules.templates import make_environment
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from engine.store.db import Database
from engine.text import markup

if TYPE_CHECKING:
    from engine.runtime.scheduler import Scheduler

__all__ = ["DEFAULT_TEXT", "Notifier", "register"]

log = structlog.get_logger("remediator.notifications")

SEND_LEASE_MS = 120_000
"""How long an announcement taken by one replica is its own to send (the posts' timeouts)."""

DEFAULT_TEXT = (
    "{{ incident.resource or incident.target }} is {{ incident.state }}"
    "{% if incident.reason %}: {{ incident.reason }}{% endif %}"
    "{% if event.error_code %} ({{ event.error_code }}){% endif %}"
)


class Notifier:
    """The outbox job: :meth:`tick` sends what is due (tests call it with an explicit time)."""

    def __init__(self, db: Database, ctx: ActionContext, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.ctx = ctx
        self.settings = settings
        self.cfg = settings.notifications
        self.clock = clock
        try:
            self.template = make_environment(mark_values=True).from_string(
                self.cfg.text or DEFAULT_TEXT)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"notifications.text: line {exc.lineno}: {exc.message}") from exc

    def tick(self, now: datetime | None = None) -> int:
        """Announce every due state change; returns how many incidents were handled."""
        moment = now or self.clock.now()
        due = incidents_store.notifications_due(self.db, now_ms=to_ms(moment))
        for item in due:
            self._announce(item, moment)
        return len(due)

    def link(self, incident_id: str) -> str:
        """The incident's page, if ``public_url`` is set."""
        base = self.settings.public_url.rstrip("/")
        return f"{base}/incidents/{incident_id}" if base else ""

    def message(self, incident: incidents_store.Incident) -> notify.Message:
        """The message about the incident's current state, with its RCA summary if any."""
        event = self._event(incident)
        rca = self._rca(incident.id)
        context = {"incident": msgspec.to_builtins(incident) | {"link": self.link(incident.id)},
                   "event": event, "rca": rca, "link": self.link(incident.id)}
        try:
            text = self.template.render(context)
        except jinja2.TemplateError as exc:  # a template that does not fit this incident
            text = make_environment(mark_values=True).from_string(DEFAULT_TEXT).render(context)
            log.warning("notification_template_failed", incident_id=incident.id,
                        error=str(exc))
        summary = markup.untrusted(event.error_code or "failure")
        subject = markup.untrusted(incident.resource or incident.target)
        return notify.Message(
            title=f"[{incident.state}] {subject}: {summary}",
            text=text, link=self.link(incident.id), rca=str(rca.get("summary") or ""),
            facts={**notify.event_facts(event), "State": incident.state,
                   "Events": str(incident.events)},
            fields={"incident": {"id": incident.id, "state": incident.state,
                                 "reason": incident.reason, "events": incident.events}},
            event=notify.event_summary(event),
        )

    def _event(self, incident: incidents_store.Incident) -> ErrorEvent:
        if incident.event:
            return msgspec.json.decode(incident.event, type=ErrorEvent)
        stored = inbox.get(self.db, incident.event_id)
        if stored is not None:
            return stored.current
        return ErrorEvent(source=incident.source, kind="alert", status="firing",
                          dedup_key=incident.id, resource=incident.resource,
                          fingerprint=incident.fingerprint)

    def _rca(self, incident_id: str) -> dict[str, Any]:
        records = audit_store.list_records(self.db, incident_id=incident_id, kind="rca", limit=1)
        analysis = records[0].data.get("analysis") if records else None
        return analysis if isinstance(analysis, dict) else {}

    def _audit(self, moment: datetime, incident: incidents_store.Incident,
               data: dict[str, Any]) -> None:
        audit_store.append(self.db, "notification", ts=moment, data=data,
                           incident_id=incident.id, resource=incident.resource)

    def _announce(self, item: incidents_store.OutboxItem, moment: datetime) -> None:
        incident = item.incident
        state, now_ms = incident.state, to_ms(moment)
        if (self.cfg.states and state not in self.cfg.states) or not self.cfg.channels:
            incidents_store.mark_notified(self.db, incident.id, state, now_ms=now_ms)
            return
        if not incidents_store.claim_notification(self.db, incident.id, state, now_ms=now_ms,
                                                  lease_ms=SEND_LEASE_MS):
            return  # another replica announces it
        message = self.message(incident)
        try:
            for name in self.cfg.channels:
                where = f"notify.webhook[channel={name}]"
                target = notify.channel_target(self.ctx, name, where)
                notify.send(self.ctx, target, message, where,
                            key=f"incident:{incident.id}:{state}:{name}")
        except RetryableActionError as exc:
            attempt = item.attempts + 1
            if attempt > self.cfg.retries:
                self._give_up(incident, state, moment, str(exc), attempt)
                return
            due = moment + timedelta(seconds=self.cfg.backoff_s * 2 ** item.attempts)
            incidents_store.defer_notification(self.db, incident.id, due_ms=to_ms(due),
                                               error=str(exc))
            self._audit(moment, incident, {"state": state, "outcome": "failed",
                                           "error": str(exc), "attempt": attempt,
                                           "retry_at": to_ms(due)})
            return
        except ActionError as exc:
            self._give_up(incident, state, moment, str(exc), item.attempts + 1)
            return
        incidents_store.mark_notified(self.db, incident.id, state, now_ms=now_ms)
        self._audit(moment, incident, {"state": state, "outcome": "sent",
                                       "channels": list(self.cfg.channels),
                                       "attempt": item.attempts + 1})

    def _give_up(self, incident: incidents_store.Incident, state: str, moment: datetime,
                 error: str, attempt: int) -> None:
        incidents_store.mark_notified(self.db, incident.id, state, now_ms=to_ms(moment),
                                      error=error)
        self._audit(moment, incident, {"state": state, "outcome": "gave_up", "error": error,
                                       "attempt": attempt})
        log.warning("notification_failed", incident_id=incident.id, state=state, error=error)


def register(scheduler: Scheduler, deps: Deps, settings: Settings) -> Notifier | None:
    """Add the outbox job to ``scheduler`` (``every_s`` of ``[notifications]``) when any
    channel is configured; returns the notifier, or None when there is nothing to send to."""
    if not settings.notifications.channels:
        return None
    notifier = Notifier(deps.db, deps.ctx, settings, deps.clock)
    scheduler.add_periodic("notifications", notifier.tick, settings.notifications.every_s)
    return notifier
