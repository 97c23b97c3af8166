"""Intake of several replicas on one PostgreSQL database, against one process on SQLite.

Each replica is the service's HTTP side (``create_app`` under ``serve``'s server, API key auth,
JSON logs; bench/_server.py) on its own port; every replica gets its own closed-loop client
(bench/_load.py, the eight real-format webhook samples, every request a new event), all at
once. Reported per setting: webhooks per second (all replicas together and per replica) and
CPU per stored webhook, the replicas' own and PostgreSQL's (from /proc): the box has two
cores, so what several replicas change shows as cost per event, not as absolute speed. After
each setting the inbox is counted: every acknowledged webhook must be a stored event.

    .venv/bin/python bench/bench_replicas.py                        # ~2 min
    .venv/bin/python bench/bench_replicas.py --requests 4000 --replicas 1 2 4
    .venv/bin/python bench/bench_replicas.py --pin --replicas 1      # a core per replica

``--part e2e``: end to end with the engines running, ``serve`` replicas (real processes, forked
from one that did the imports) against the sandbox's emulators, dry-run and live: a burst of
``--events`` webhooks spread over the replicas, each a failure of its own ADF pipeline (one
target, one remediation), timed from the first send to the last event done (dry-run: the
inbox) or the last ``createRun`` (live: the ADF emulator's call log); CPU per remediation is
the replicas', PostgreSQL's and this process's (the sender and the emulators); ``db xacts``:
transactions PostgreSQL committed per event.

``--part failover``: three live replicas; ``kill -9`` of the leader, timed to the next leader's
lease and to its first leader-only job (the ``leases`` row's epoch and ``ticked_ms``, polled
every 10 ms), and ``kill -9`` of a replica holding events whose
``createRun`` is in flight (the emulator holds answers back), timed to each of them being
claimed by another replica and to its call being reconciled by another replica.

    .venv/bin/python bench/bench_replicas.py --part e2e --events 400 --replicas 1 2 4
    .venv/bin/python bench/bench_replicas.py --part failover --rounds 3

Without ``--db`` it starts its own PostgreSQL server as the tests do (tests/fixtures/postgres.py,
Debian's package); ``e2e`` and ``failover`` need it (a fresh database per setting).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _server import ROOT, Server, check_specs_unique, machine, webhook_specs

sys.path.insert(0, str(ROOT))

from engine.store import leases
from engine.store.db import Database
from sandbox.server import Sandbox, start_sandbox
from scripts._harness import (
    RECEIVER_KEY,
    Forked,
    Zygote,
    adf_failure,
    make_serve,
    rerun_calls,
    rerun_playbook,
)
from tests.fixtures.postgres import PgServer, find_bin

PLAYBOOK = rerun_playbook("bench", verify_interval="10m")


def _tree_cpu(root_pid: int) -> float:
    """CPU seconds (user + system) of ``root_pid`` and its children (PostgreSQL's backends)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if root_pid in (pid, ppid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _stored(db_target: str) -> int:
    db = Database(db_target)
    try:
        return db.query("SELECT count(*) AS n FROM events")[0]["n"]
    finally:
        db.close()


def _pin_tree(root_pid: int, cpu: int) -> None:
    """Pin ``root_pid`` and its children (PostgreSQL's backends; those it forks later inherit
    it) to core ``cpu``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            pid = int(stat.parent.name)
            if root_pid in (pid, ppid):
                os.sched_setaffinity(pid, {cpu})
        except (OSError, ValueError):
            continue


def run(targets: list[str], requests: int, concurrency: int, tmp: Path,
        pg_pid: int | None, *, pin: bool = False) -> dict[str, Any]:
    """One setting: a replica per target (the same database), a client per replica (on core
    1). ``pin``: each replica on core 0, PostgreSQL on core 1 beside the client, so that a
    replica has one core to itself whichever backend it writes to (as it would with the
    database on a machine of its own)."""
    specs = webhook_specs()
    if pin and pg_pid:
        _pin_tree(pg_pid, 1)
    servers = [Server(Path(t) if not t.startswith("postgresql") else tmp / f"r{i}.db",
                      cpu=0 if pin else None, log=tmp / f"r{i}.log")
               for i, t in enumerate(targets)]
    for server, target in zip(servers, targets, strict=True):
        server.args[server.args.index("--db") + 1] = target
    results: list[dict[str, Any]] = [{} for _ in servers]
    for server in servers:
        server.__enter__()
    try:
        pg_before = _tree_cpu(pg_pid) if pg_pid else 0.0
        replica_before = sum(s.cpu_seconds() for s in servers)

        def drive(i: int) -> None:
            results[i] = servers[i].load(specs, cpu=1, uid_base=i * 10**9,
                                         requests=requests // len(servers),
                                         concurrency=concurrency)

        threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(servers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        replica_cpu = sum(s.cpu_seconds() for s in servers) - replica_before
        pg_cpu = (_tree_cpu(pg_pid) - pg_before) if pg_pid else 0.0
    finally:
        for server in servers:
            server.__exit__(None, None, None)
    acked = sum(r["statuses"].get("202", 0) for r in results)
    seconds = max(r["seconds"] for r in results)
    return {"replicas": len(servers), "acked": acked, "stored": _stored(targets[0]),
            "rps": acked / seconds, "rps_each": acked / seconds / len(servers),
            "replica_cpu_ms": replica_cpu * 1000 / max(acked, 1),
            "db_cpu_ms": pg_cpu * 1000 / max(acked, 1)}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _count(db: Database, sql: str, params: tuple[Any, ...] = ()) -> int:
    return int(db.query(sql, params)[0]["n"])


def _wait(check: Callable[[], bool], bound_s: float, what: str, every_s: float = 0.05) -> float:
    """Poll ``check`` until true; the monotonic time it was first seen true."""
    deadline = time.monotonic() + bound_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {bound_s} s")
        time.sleep(every_s)
    return time.monotonic()


async def _burst(urls: list[str], payloads: list[dict[str, Any]]) -> int:
    """Post every payload, spread over ``urls`` in turn, 64 at a time; how many were acked."""
    acked, gate = 0, asyncio.Semaphore(64)
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(n: int, payload: dict[str, Any]) -> None:
            nonlocal acked
            async with gate:
                answer = await client.post(f"{urls[n % len(urls)]}/azure-monitor", json=payload,
                                           headers={"x-api-key": RECEIVER_KEY})
            acked += answer.status_code == 202

        await asyncio.gather(*(one(n, p) for n, p in enumerate(payloads)))
    return acked


class _Replicas:
    """``n`` ``serve`` replicas on ``url`` against ``sandbox``, forked from one zygote."""

    def __init__(self, tmp: Path, sandbox: Sandbox, url: str, n: int, *, live: bool,
                 lease_s: int = 30) -> None:
        self.zygote = Zygote()
        self.all: list[Forked] = []
        for i in range(n):
            replica = make_serve(tmp / f"replica{i}", sandbox, playbook=PLAYBOOK,
                                 zygote=self.zygote, db=url, lease_s=lease_s)
            if not live:
                replica.config.write_text(replica.config.read_text().replace(
                    "live = true", "live = false"))
            self.all.append(replica)

    def __enter__(self) -> _Replicas:
        for replica in self.all:
            replica.start(bound_s=180)
        return self

    def __exit__(self, *exc: object) -> None:
        for replica in self.all:
            replica.stop()
        self.zygote.close()

    def cpu_s(self) -> float:
        return sum(_cpu_s(r.pid) for r in self.all)


def e2e(server: PgServer, sandbox: Sandbox, tmp: Path, n: int, events: int,
        live: bool, *, sqlite: bool = False) -> dict[str, Any]:
    """One end-to-end setting: ``n`` replicas, dry-run or live, a burst of ``events``; with
    ``sqlite``, one ``serve`` on a SQLite file instead (the baseline)."""
    url = str(tmp / f"e2e-{live}.db") if sqlite else server.fresh()
    db = Database(url)
    pg_pid = server.process.pid if server.process and not sqlite else 0
    done_sql = "SELECT count(*) AS n FROM events WHERE state = 'done'"
    try:
        with _Replicas(tmp / f"e2e-{'live' if live else 'dry'}-{n}-{sqlite}", sandbox, url, n,
                       live=live) as replicas:
            # Warm up (a token per replica, the TLS sessions): one event per replica.
            warm = [adf_failure(f"warm{i}", sandbox=sandbox) for i in range(n)]
            asyncio.run(_burst([r.url for r in replicas.all], warm))
            _wait(lambda: _count(db, done_sql) >= n, 120, "warm-up")
            sandbox.reset()
            payloads = [adf_failure(f"e2e{k:06d}", sandbox=sandbox) for k in range(events)]
            db_cpu = (lambda: _tree_cpu(pg_pid)) if pg_pid else (lambda: 0.0)
            xacts0 = _xacts(db, sqlite)
            cpu0, pg0, own0 = replicas.cpu_s(), db_cpu(), time.process_time()
            began = time.monotonic()
            acked = asyncio.run(_burst([r.url for r in replicas.all], payloads))
            if live:
                ended = _wait(lambda: len({c["path"] for c in rerun_calls(sandbox)})
                              >= events, 600, "every createRun", every_s=0.2)
            else:
                ended = _wait(lambda: _count(db, done_sql) >= events + n, 600,
                              "every event done", every_s=0.2)
            cpu, pg = replicas.cpu_s() - cpu0, db_cpu() - pg0
            own = time.process_time() - own0
            xacts = _xacts(db, sqlite) - xacts0
    finally:
        db.close()
        if not sqlite:
            server.drop(url)
    seconds = ended - began
    return {"backend": "sqlite" if sqlite else "postgresql",
            "mode": "live" if live else "dry-run", "replicas": n, "acked": acked,
            "per_s": events / seconds, "seconds": seconds,
            "replica_ms": cpu * 1000 / events, "db_ms": pg * 1000 / events,
            "bench_ms": own * 1000 / events, "xacts": xacts / events}


def _xacts(db: Database, sqlite: bool) -> int:
    """Transactions committed in this database so far (every statement run outside a
    transaction counts as one; the server's statistics, flushed about every second); 0 on
    SQLite."""
    if sqlite:
        return 0
    return _count(db, "SELECT xact_commit AS n FROM pg_stat_database "
                      "WHERE datname = current_database()")


def _owner_of(db: Database, replica: Forked) -> str:
    rows = db.query("SELECT owner FROM replicas WHERE pid = ? ORDER BY started_ms DESC",
                    (replica.pid,))
    return str(rows[0]["owner"])


def _owned(db: Database, table: str, ids: list[str], owner: str, state: str) -> int:
    """How many of the rows ``ids`` of ``table`` ``owner`` still holds in ``state`` (a row
    another replica set aside, e.g. an event parked once its claims ran out, keeps its owner:
    it is no longer held)."""
    marks = ", ".join("?" for _ in ids)
    return _count(db, f"SELECT count(*) AS n FROM {table} WHERE id IN ({marks}) AND owner = ? "
                      "AND state = ?", (*ids, owner, state))


def _leader_epoch(db: Database) -> int:
    held = leases.current(db, leases.LEADER)
    return held[1] if held else 0


def _kill_leader(db: Database, replicas: _Replicas) -> tuple[float, float]:
    """Kill -9 the leader; seconds until another replica holds the lease (a new epoch), and
    until that leader began its first leader-only job (``leases.ticked_ms`` set under the new
    epoch)."""
    _wait(lambda: _leader_epoch(db) > 0, 30, "a leader")
    holder, epoch = leases.current(db, leases.LEADER) or ("", 0)
    pid = db.query("SELECT pid FROM replicas WHERE owner = ?", (holder,))[0]["pid"]
    victim = next(r for r in replicas.all if r.pid == pid)
    victim.kill9()
    killed = time.monotonic()
    seen: dict[str, float] = {}

    def ticked() -> bool:
        now_epoch, ticked_ms = leases.ticked(db, leases.LEADER)
        if now_epoch > epoch:
            seen.setdefault("elected", time.monotonic())
        return now_epoch > epoch and ticked_ms > 0

    first_tick = _wait(ticked, 60, "the next leader's first tick", every_s=0.01)
    print(f"# leader killed: lease {seen['elected'] - killed:.2f} s, first tick "
          f"{first_tick - killed:.2f} s", file=sys.stderr, flush=True)
    victim.start(bound_s=180)
    return seen["elected"] - killed, first_tick - killed


def _kill_busy(db: Database, sandbox: Sandbox, victim: Forked,
               tag: str) -> tuple[float, float | None]:
    """Kill -9 ``victim`` while it holds events (the emulator holds the answers of the run
    look-ups and of ``createRun`` back 3 s); seconds until another replica claimed every one of
    them, and until another took over every call it had in flight (None: it had none)."""
    owner = _owner_of(db, victim)
    for operation in ("adf.getPipelineRun", "adf.createRun"):
        sandbox.script("adf", operation, hang=3.0, times=10**6)
    held: list[str] = []
    sent = [0, 0.0]

    def holds() -> bool:
        """Whether the victim holds events; more are posted every second until it does (every
        replica's worker claims what any replica's intake stored)."""
        held[:] = [r["id"] for r in db.query(
            "SELECT id FROM events WHERE state = 'processing' AND owner = ?", (owner,))]
        if not held and time.monotonic() - sent[1] > 1:
            asyncio.run(_burst([victim.url], [adf_failure(f"{tag}-{sent[0] + i}",
                                                          sandbox=sandbox) for i in range(6)]))
            sent[:] = [sent[0] + 6, time.monotonic()]
        return bool(held) and bool(db.query(
            "SELECT 1 FROM actions WHERE state = 'started' AND owner = ?", (owner,)))

    _wait(holds, 60, "events and a call held by the victim", every_s=0.01)
    calls = [r["id"] for r in db.query(
        "SELECT id FROM actions WHERE state = 'started' AND owner = ?", (owner,))]
    victim.kill9()
    killed = time.monotonic()
    claimed = _wait(lambda: _owned(db, "events", held, owner, "processing") == 0, 60,
                    "the dead replica's events claimed", every_s=0.01)
    moved = (_wait(lambda: _owned(db, "actions", calls, owner, "started") == 0, 60,
                   "the dead replica's calls taken over", every_s=0.01) if calls else None)
    sandbox.reset()
    victim.start(bound_s=180)
    return claimed - killed, None if moved is None else moved - killed


def failover(server: PgServer, sandbox: Sandbox, tmp: Path, rounds: int) -> dict[str, Any]:
    """Kill -9 of the leader (to the next lease) and of a replica with events in flight (to
    their next claim and their calls' reconciliation), ``rounds`` times each."""
    url = server.fresh()
    db = Database(url)
    try:
        with _Replicas(tmp / "failover", sandbox, url, 3, live=True, lease_s=2) as replicas:
            leader = [_kill_leader(db, replicas) for _ in range(rounds)]
            busy = [_kill_busy(db, sandbox, replicas.all[k % 3], f"fo{k}")
                    for k in range(rounds)]
    finally:
        db.close()
        server.drop(url)
    return {"leader": [e for e, _ in leader], "tick": [t for _, t in leader],
            "claim": [c for c, _ in busy],
            "reconcile": [m for _, m in busy if m is not None]}


def intake(args: argparse.Namespace, server: PgServer | None, tmp: Path) -> None:
    print(f"# {machine()}; {args.requests} webhooks per setting, {args.concurrency} "
          "connections per replica")
    print(f"{'backend':<10} {'replicas':>8} {'webhooks/s':>11} {'per replica':>12} "
          f"{'replica cpu ms':>15} {'db cpu ms':>10} {'acked':>7} {'stored':>7}")
    rows = [("sqlite", run([str(tmp / "sqlite.db")], args.requests, args.concurrency,
                           tmp, None, pin=args.pin))]
    for n in args.replicas:
        url = server.fresh() if server is not None else args.db
        pg_pid = server.process.pid if server is not None and server.process else None
        rows.append(("postgresql", run([url] * n, args.requests, args.concurrency, tmp,
                                       pg_pid, pin=args.pin)))
    for backend, r in rows:
        print(f"{backend:<10} {r['replicas']:>8} {r['rps']:>11,.0f} {r['rps_each']:>12,.0f} "
              f"{r['replica_cpu_ms']:>15.3f} {r['db_cpu_ms']:>10.3f} {r['acked']:>7} "
              f"{r['stored']:>7}")
        if r["stored"] < r["acked"]:
            raise SystemExit(f"{backend}: {r['acked']} acknowledged, {r['stored']} stored")


def end_to_end(args: argparse.Namespace, server: PgServer, tmp: Path) -> None:
    print(f"# {machine()}; a burst of {args.events} webhooks per setting; load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'backend':<10} {'mode':<8} {'replicas':>8} {'events/s':>9} {'seconds':>8} "
          f"{'replica cpu ms':>15} {'db cpu ms':>10} {'bench cpu ms':>13} {'db xacts':>9} "
          f"{'acked':>6}")
    sandbox = start_sandbox(workdir=tmp / "sandbox")
    try:
        for live in (False, True):
            for n in [0, *args.replicas]:  # 0: the SQLite baseline (one serve)
                r = e2e(server, sandbox, tmp, max(n, 1), args.events, live, sqlite=n == 0)
                print(f"{r['backend']:<10} {r['mode']:<8} {r['replicas']:>8} "
                      f"{r['per_s']:>9.1f} {r['seconds']:>8.1f} "
                      f"{r['replica_ms']:>15.1f} {r['db_ms']:>10.1f} {r['bench_ms']:>13.1f} "
                      f"{r['xacts']:>9.1f} {r['acked']:>6}", flush=True)
    finally:
        sandbox.stop()


def failovers(args: argparse.Namespace, server: PgServer, tmp: Path) -> None:
    sandbox = start_sandbox(workdir=tmp / "sandbox")
    try:
        r = failover(server, sandbox, tmp, args.rounds)
    finally:
        sandbox.stop()
    print(f"# {machine()}; {args.rounds} rounds; load average {os.getloadavg()[0]:.1f}")
    for name, what in (("leader", "kill -9 of the leader -> the next leader's lease"),
                       ("tick", "kill -9 of the leader -> the next leader's first leader-only "
                                "tick"),
                       ("claim", "kill -9 of a replica -> its events claimed elsewhere"),
                       ("reconcile", "kill -9 of a replica -> its calls in flight reconciled")):
        times = r[name]
        print(f"{what}: " + (", ".join(f"{t:.2f}" for t in times)
                             + f" s (median {statistics.median(times):.2f} s)" if times
                             else "none in flight at the kills"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=("intake", "e2e", "failover"), default="intake")
    parser.add_argument("--db", default=None, help="a postgresql:// URL (default: own server; "
                        "intake only)")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--pin", action="store_true", help="intake: each replica on core 0, "
                        "PostgreSQL and the client on core 1 (a core per replica)")
    parser.add_argument("--events", type=int, default=400, help="e2e: webhooks per setting")
    parser.add_argument("--rounds", type=int, default=3, help="failover: kills of each kind")
    args = parser.parse_args()
    check_specs_unique()
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    server = None
    if args.db is None or args.part != "intake":
        bindir = find_bin()
        if bindir is None:
            raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
        server = PgServer(bindir)
        server.start()
        server.create_template()
    try:
        if args.part == "intake":
            intake(args, server, tmp)
        elif args.part == "e2e":
            assert server is not None
            end_to_end(args, server, tmp)
        else:
            assert server is not None
            failovers(args, server, tmp)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
