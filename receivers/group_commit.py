"""Group commit: the requests that arrive together share one transaction, and none is answered
before its commit.

One writer thread takes what the request handlers queue, drains everything that is waiting
(up to ``max_batch`` payloads), commits it with :func:`engine.store.inbox.insert_batch`, and
resolves each request's future on its event loop. Under a burst the batches grow by themselves
(what arrives during a commit goes into the next one), so a commit's cost (a disk sync with
``synchronous=FULL``) is paid once per batch instead of once per request, and the event loop
never waits on SQLite. If the transaction fails, every request of that batch, and only those,
gets the :class:`~engine.errors.StorageError` (answered 503). After each commit that stored
something, ``on_commit`` is called (the engine's ``Service.wake``), so the worker claims the new
events at once instead of at its next poll.

Every wait is bounded (``[intake] commit_timeout_s``): a request whose commit has not completed
by then gets :class:`CommitTimeout` (answered 503 with Retry-After) while its payload stays
queued. If the commit completes later, the event is stored and the sender's retry is a
duplicate answered with the first id; if it fails, nothing is stored. The same writer answers
:meth:`GroupCommitter.ready` (``/ready``): whether a webhook could be stored now.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from engine.config import IntakeSettings
from engine.errors import StorageError
from engine.events import ErrorEvent
from engine.store import heartbeat, inbox
from engine.store.db import Database

__all__ = ["CommitTimeout", "GroupCommitter"]

log = structlog.get_logger("remediator.intake")

_Item = tuple[Sequence[ErrorEvent] | None, Any, str, "asyncio.Future[Any]"]
"""``(events, raw, endpoint, future)``; ``events`` None: a heartbeat probe (its future gets
whether the write committed)."""


class CommitTimeout(StorageError):
    """The commit did not complete within the bound; it may still complete later."""


class GroupCommitter:
    """The writer thread of the receivers; ``start()`` it, ``await commit(...)``, ``close()``."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 256,
        on_commit: Callable[[], None] | None = None,
        intake: IntakeSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._on_commit = on_commit
        intake = intake or IntakeSettings()
        self._timeout_s = intake.commit_timeout_s
        self._probe_every_s = intake.ready_probe_s
        self._clock = clock
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        # Written by the writer thread, read by /ready (single attribute writes: atomic).
        self._busy_since: float | None = None  # when the commit under way began
        self._last: tuple[float, bool] | None = None  # when the last write ended, and its outcome
        self._probe: asyncio.Future[bool] | None = None  # the heartbeat under way (one at a time)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    async def commit(
        self, endpoint: str, events: Sequence[ErrorEvent], raw: Any
    ) -> list[inbox.Receipt]:
        """Store already-redacted ``events`` and ``raw``; return their receipts once committed.

        Raises StorageError if the batch this request joined could not be committed, and
        :class:`CommitTimeout` if it was not committed within ``commit_timeout_s``: the payload
        stays queued (its result, when it comes, is dropped), so it may still be stored.
        """
        if not self._thread.is_alive():
            raise StorageError("the intake writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[inbox.Receipt]] = loop.create_future()
        self._queue.put((events, raw, endpoint, future))
        # A timer that fails the future, not asyncio.wait_for: a third of the cost per request.
        expiry = loop.call_later(self._timeout_s, _expire, future, self._timeout_s)
        try:
            return await future
        finally:
            expiry.cancel()

    async def ready(self) -> bool:
        """Whether a webhook could be stored now (``/ready``).

        Not while the writer is stopped or a commit has been under way longer than
        ``commit_timeout_s`` (a storage freeze). Otherwise the outcome of the last write, if it
        ended less than ``ready_probe_s`` ago; else a heartbeat written through this writer
        (behind whatever is queued: the webhooks' own path), awaited at most
        ``commit_timeout_s``. Polling therefore adds at most one small write per
        ``ready_probe_s``, and none while webhooks keep arriving.
        """
        if not self._thread.is_alive() or self._stalled():
            return False
        last = self._last
        if last is not None and self._clock() - last[0] < self._probe_every_s:
            return last[1]
        loop = asyncio.get_running_loop()
        probe = self._probe
        if probe is None or probe.done() or probe.get_loop() is not loop:
            probe = self._probe = loop.create_future()
            self._queue.put((None, None, "", probe))
        try:
            # Shielded: the other /ready requests share this probe.
            return await asyncio.wait_for(asyncio.shield(probe), self._timeout_s)
        except TimeoutError:
            return False

    def _stalled(self) -> bool:
        since = self._busy_since
        return since is not None and self._clock() - since > self._timeout_s

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Item]) -> None:
        payloads = [(events, raw, endpoint) for events, raw, endpoint, _ in batch
                    if events is not None]
        stored: list[Any] = []
        error: Exception | None = None
        self._busy_since = self._clock()
        try:
            if payloads:
                stored = inbox.insert_batch(self._db, payloads)
            else:  # probes only: a write of its own (a committed batch proves as much)
                heartbeat.beat(self._db)
        except Exception as exc:  # not hidden: every request of the batch gets it
            # A StorageError answers 503; anything else is a bug and answers 500, logged there.
            error = exc
        self._last = (self._clock(), error is None)
        self._busy_since = None
        if error is None and payloads and self._on_commit is not None:
            self._on_commit()
        if error is not None and not payloads:
            log.warning("storage write probe failed", error=str(error)[:300])
        receipts = iter(stored)
        results: list[Any] = [
            (error is None) if events is None else error if error is not None else next(receipts)
            for events, _, _, _ in batch
        ]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for (_, _, _, future), result in zip(batch, results, strict=True):
            by_loop.setdefault(future.get_loop(), []).append((future, result))
        for loop, pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, pairs)
            except RuntimeError:  # the loop closed while we committed: nobody is waiting
                continue


def _expire(future: asyncio.Future[Any], timeout_s: float) -> None:
    if not future.done():
        future.set_exception(CommitTimeout(f"not committed within {timeout_s:g} s"))


def _resolve(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in pairs:
        if future.done():  # it timed out, or the client went away (its request cancelled)
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
