"""PostgreSQL unreachable (issue 17, item 12): webhooks get 503 with Retry-After and
``/ready`` 503, nothing acknowledged is lost, and intake resumes by itself when the server
takes connections again. The fault is real: the server refuses the database's connections
and ends the ones it had."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from engine.config import IntakeSettings, Secret, Settings
from engine.store.db import Database
from receivers.app import create_app
from tests.fixtures.app import RECEIVER_KEY
from tests.fixtures.postgres import PgServer
from tests.reliability.conftest import poll
from tests.reliability.test_storage_faults import HEADERS, _payload
from tests.reliability.test_storage_readiness import NOT_STORED, UNAVAILABLE


def _cut(server: PgServer, name: str, *, off: bool) -> None:
    server.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {'false' if off else 'true'}")
    if off:
        server.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     f"WHERE datname = '{name}'")


def _service(pg_url: str) -> tuple[Database, Settings]:
    """The database and the settings of a service on ``pg_url`` (no /ready probe cache)."""
    return Database(pg_url), Settings(
        db=pg_url, api_keys=(Secret(RECEIVER_KEY),),
        intake=IntakeSettings(ready_probe_s=0, commit_timeout_s=8))


def test_an_unreachable_database_answers_503_and_loses_nothing(
        pg_server: PgServer, pg_url: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    db, settings = _service(pg_url)
    try:
        with TestClient(create_app(settings, db)) as client:
            first = client.post("/azure-monitor", json=_payload(0), headers=HEADERS)
            assert first.status_code == 202
            _cut(pg_server, name, off=True)
            refused = client.post("/azure-monitor", json=_payload(1), headers=HEADERS)
            assert (refused.status_code, refused.json()) == (503, NOT_STORED)
            assert refused.headers["retry-after"] == "5"
            ready = client.get("/ready")
            assert (ready.status_code, ready.json()) == (503, UNAVAILABLE)
            assert client.get("/health").json() == {"status": "ok"}
            _cut(pg_server, name, off=False)
            poll(lambda: client.get("/ready").status_code == 200, bound_s=90,
                 what="ready again once the server takes connections")
            again = client.post("/azure-monitor", json=_payload(1), headers=HEADERS)
            assert again.status_code == 202
        stored = {row["id"] for row in db.query("SELECT id FROM events")}
        assert stored == {first.json()["event_id"], again.json()["event_id"]}
    finally:
        db.close()


def test_connections_ended_by_the_server_cost_no_webhook_a_503(
        pg_server: PgServer, pg_url: str) -> None:
    """The server ends every session of the service (a restart, a failover, an operator's
    pg_terminate_backend, a proxy's idle cut) while it is idle: the pool still holds them,
    and each used next failed its request (503 for a whole group commit). A connection found
    ended before anything was sent on it is replaced, and the request goes through."""
    name = pg_url.rsplit("/", 1)[1]
    db, settings = _service(pg_url)
    try:
        with TestClient(create_app(settings, db)) as client:
            answers = [client.post("/azure-monitor", json=_payload(0), headers=HEADERS)]
            for n in range(1, 4):
                pg_server.admin("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                f"WHERE datname = '{name}'")
                answers.append(client.post("/azure-monitor", json=_payload(n),
                                           headers=HEADERS))
                assert (answers[-1].status_code, client.get("/ready").status_code) == (
                    202, 200)
            assert answers[0].status_code == 202
        stored = {row["id"] for row in db.query("SELECT id FROM events")}
        assert stored == {a.json()["event_id"] for a in answers}
    finally:
        db.close()


def test_hostile_webhooks_on_postgres_are_answered_each_and_fail_no_other(pg_url: str) -> None:
    """NULs in every text field, a field near the body limit, JSON nested past the bound and
    a body past it, mixed with ordinary alerts, against PostgreSQL: each is answered on its
    own (202, or 422/413 saying why), none answers 500, and every accepted one is stored."""
    db, settings = _service(pg_url)
    nul = _payload(1)
    nul["data"]["essentials"]["alertRule"] = "rule\x00nul"
    nul["data"]["essentials"]["description"] = "a\x00b" * 1000
    nul["data"]["essentials"]["alertId"] += "\x00"
    deep: Any = {}
    for _ in range(200):
        deep = {"a": deep}
    big = _payload(2, pad=settings.body_limit // 2)
    huge = _payload(3, pad=settings.body_limit + 1)
    try:
        with TestClient(create_app(settings, db)) as client:
            codes = [client.post("/azure-monitor", json=body, headers=HEADERS).status_code
                     for body in (_payload(0), nul, deep, big, huge, _payload(4))]
            assert client.get("/health").json() == {"status": "ok"}
        assert codes == [202, 202, 422, 202, 413, 202]
        assert db.query("SELECT count(*) AS n FROM events")[0]["n"] == 4
    finally:
        db.close()
