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
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from engine.errors import StorageError
from engine.events import ErrorEvent
from engine.store import Database, inbox

__all__ = ["GroupCommitter"]

_Item = tuple[Sequence[ErrorEvent], Any, str, "asyncio.Future[list[inbox.Receipt]]"]


class GroupCommitter:
    """The writer thread of the receivers; ``start()`` it, ``await commit(...)``, ``close()``."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 256,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)

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

        Raises StorageError if the batch this request joined could not be committed.
        """
        if not self._thread.is_alive():
            raise StorageError("the intake writer is not running")
        future: asyncio.Future[list[inbox.Receipt]] = asyncio.get_running_loop().create_future()
        self._queue.put((events, raw, endpoint, future))
        return await future

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
        try:
            results: list[Any] = inbox.insert_batch(
                self._db, [(events, raw, endpoint) for events, raw, endpoint, _ in batch]
            )
        except Exception as exc:  # not hidden: every request of the batch gets it
            # A StorageError answers 503; anything else is a bug and answers 500, logged there.
            results = [exc] * len(batch)
        else:
            if self._on_commit is not None:
                self._on_commit()
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for (_, _, _, future), result in zip(batch, results, strict=True):
            by_loop.setdefault(future.get_loop(), []).append((future, result))
        for loop, pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, pairs)
            except RuntimeError:  # the loop closed while we committed: nobody is waiting
                continue


def _resolve(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in pairs:
        if future.done():  # the client went away and its request was cancelled
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
