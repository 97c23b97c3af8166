"""Retention drops old raw payloads, keeps everything else, and the audit chain still verifies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec

from engine.clock import to_ms
from engine.config import RetentionSettings, load_settings
from engine.events import utcnow
from engine.runtime.retention import register, run_retention
from engine.store import audit, inbox
from engine.store.audit import verify_chain
from engine.store.db import Database
from tests.engine.actions.conftest import adf_event
from tests.fixtures.engine import EngineRig

PAYLOAD = {"data": {"essentials": {"alertRule": "adf-prod-activity-failed-log"}}}


def stored(db: Database, key: str) -> str:
    [receipt] = inbox.insert(db, [adf_event(dedup_key=key).with_fingerprint()], PAYLOAD,
                             "azure-monitor")
    audit.append(db, "received", ts=utcnow(), event_id=receipt.event_id,
                 data={"dedup_key": key})
    return receipt.event_id


def age(db: Database, event_id: str, days: int) -> None:
    # The inbox stamps receipt with the wall clock; move this row back in time.
    with db.write() as conn:
        conn.execute("UPDATE events SET received_ms = ? WHERE id = ?",
                     (to_ms(utcnow() - timedelta(days=days)), event_id))


def test_old_raw_payloads_are_dropped_and_the_chain_verifies(db: Database) -> None:
    old, recent = stored(db, "k-old"), stored(db, "k-recent")
    audit.link(db)  # PostgreSQL: as the leader's chainer does (SQLite linked inline)
    age(db, old, 31)
    age(db, recent, 29)
    settings = load_settings(None, env={})
    assert settings.retention == RetentionSettings(raw_payload_days=30, every_s=3600.0)
    assert run_retention(db, settings, now=utcnow()) == 1
    old_event, recent_event = inbox.get(db, old), inbox.get(db, recent)
    assert old_event is not None and recent_event is not None
    assert (old_event.raw, recent_event.raw) == (None, PAYLOAD)
    assert old_event.event.dedup_key == "k-old"  # the normalized event stays
    assert verify_chain(db).ok and verify_chain(db).checked == 2
    assert run_retention(db, settings, now=utcnow()) == 0  # nothing left to drop


def test_zero_days_keeps_everything(db: Database) -> None:
    event_id = stored(db, "k")
    age(db, event_id, 400)
    settings = msgspec.structs.replace(load_settings(None, env={}),
                                       retention=RetentionSettings(raw_payload_days=0))
    assert run_retention(db, settings, now=utcnow()) == 0
    found = inbox.get(db, event_id)
    assert found is not None and found.raw == PAYLOAD


def test_register_adds_a_periodic_job(engine_rig: EngineRig) -> None:
    db = engine_rig.db
    scheduler = engine_rig.worker("name: engine\nrules: []\n").scheduler
    event_id = stored(db, "k")
    age(db, event_id, 45)
    job = register(scheduler, db, load_settings(None, env={}))
    assert scheduler._extra == [("retention", job, 3600.0)]
    assert job() == 1


def test_retention_settings_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "remediator.toml"
    path.write_text("[retention]\nraw_payload_days = 7\n")
    assert load_settings(path, env={}).retention.raw_payload_days == 7
