"""Drive the app in-process, without sockets: ``python bench/_asgi.py TREE N PATH``.

Imports ``create_app`` from the checkout at TREE (this one, or an older commit extracted with
``git archive``), starts its lifespan (the group-commit writer), and sends N requests to PATH
(``webhooks``: the eight samples in rotation, each a new event; ``/health``), 16 at a time,
as ASGI calls. Every answer must be 202 (webhooks) or 200. bench_instructions.py runs it under
callgrind.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any


async def call(app: Any, path: str, headers: dict[str, str], body: bytes) -> int:
    """One HTTP request as an ASGI call; the status answered."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "POST" if body else "GET", "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {},
    }
    sent = False
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """The app's startup and shutdown, as a server would run them."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                    "state": {}}, inbox.get, outbox.put))
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"the app did not start: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def drive(tree: Path, n: int, path: str) -> None:
    from _server import API_KEY, webhook_specs  # it puts this checkout first on the path

    sys.path.insert(0, str(tree))  # ...and the tree measured goes before it

    from engine.config import Secret, Settings
    from engine.logs import configure_logging
    from engine.store.db import Database
    from receivers.app import create_app

    tmp = Path(tempfile.mkdtemp())
    settings = Settings(db=str(tmp / "asgi.db"), api_keys=(Secret(API_KEY),))
    with open(tmp / "asgi.log", "w") as log:
        configure_logging("info", "json", stream=log)
        db = Database(settings.db)
        app = create_app(settings, db)
        specs = webhook_specs() if path == "webhooks" else [(path, {}, "")]
        expected = 202 if path == "webhooks" else 200
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            where, headers, body = specs[i % len(specs)]
            async with gate:
                status = await call(app, where, headers,
                                    body.replace("~UID~", f"{i:012d}").encode())
            if status != expected:
                raise SystemExit(f"{where} answered {status}")

        async with lifespan(app):
            await asyncio.gather(*(one(i) for i in range(n)))
        db.close()
    import engine

    print(f"{n} requests to {path} answered by {Path(engine.__file__).parent.parent}")


if __name__ == "__main__":
    import uvloop

    uvloop.run(drive(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
