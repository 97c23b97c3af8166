"""A bounded loopback HTTP/1.1 load generator (raw asyncio sockets, keep-alive), for the benches.

Run as its own process (pinned to another core than the server), it sends a fixed number of
requests (closed loop: ``--concurrency`` connections, each sends its next request when the last
one is answered) or a fixed rate for a fixed time (open loop: requests are due at
``start + i / rate`` and latency is measured from when each was due, so a stalled server shows
up in p99 instead of silently lowering the offered rate). It always stops by itself and prints
one JSON object: counts per status, throughput and latency percentiles.

Bodies come from ``--bodies`` (a JSON list of ``[path, headers, body]``); every ``~UID~`` in a
body is replaced by a fresh 12-digit number, so that no two requests carry the same event.

    python bench/_load.py --port 8080 --bodies bodies.json --requests 20000 --concurrency 64
    python bench/_load.py --port 8080 --bodies bodies.json --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

UID = b"~UID~"


class Request:
    """One request template: the head bytes before the body and the body with its ``~UID~``."""

    def __init__(self, host: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path = path
        self.body = body
        self.head = (
            f"{'POST' if body else 'GET'} {path} HTTP/1.1\r\nhost: {host}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        ).encode()

    def render(self, uid: int) -> bytes:
        body = self.body.replace(UID, b"%012d" % uid) if UID in self.body else self.body
        length = b"content-length: %d\r\n\r\n" % len(body) if body else b"\r\n"
        return self.head + length + body


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


class Client:
    """One keep-alive connection; reconnects if the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, data: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(data)
            return await _read_response(self.reader)
        except (OSError, asyncio.IncompleteReadError):
            self.writer.close()
            self.writer = None
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def closed_loop(host: str, port: int, requests: list[Request], total: int,
                      concurrency: int, uid_base: int) -> tuple[Stats, float]:
    stats = Stats()
    counter = iter(range(total))

    async def one(client: Client) -> None:
        for i in counter:
            data = requests[i % len(requests)].render(uid_base + i)
            start = time.perf_counter()
            try:
                status = await client.send(data)
            except (OSError, asyncio.IncompleteReadError):
                stats.errors += 1
                continue
            stats.latencies.append(time.perf_counter() - start)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
        client.close()

    began = time.perf_counter()
    await asyncio.gather(*(one(Client(host, port)) for _ in range(concurrency)))
    return stats, time.perf_counter() - began


async def open_loop(host: str, port: int, requests: list[Request], rate: float,
                    seconds: float, connections: int, uid_base: int) -> tuple[Stats, float]:
    stats = Stats()
    total = int(rate * seconds)
    began = time.perf_counter() + 0.05

    async def lane(k: int) -> None:
        client = Client(host, port)
        for i in range(k, total, connections):
            due = began + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            data = requests[i % len(requests)].render(uid_base + i)
            try:
                status = await client.send(data)
            except (OSError, asyncio.IncompleteReadError):
                stats.errors += 1
                continue
            stats.latencies.append(time.perf_counter() - due)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
        client.close()

    await asyncio.gather(*(lane(k) for k in range(connections)))
    return stats, time.perf_counter() - began


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]


def summary(stats: Stats, elapsed: float) -> dict[str, Any]:
    lat = sorted(stats.latencies)
    done = len(lat)
    return {
        "requests": done,
        "errors": stats.errors,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "seconds": round(elapsed, 3),
        "rps": round(done / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(lat, 0.50) * 1000, 2),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2) if lat else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bodies", required=True, help="JSON list of [path, headers, body]")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--uid-base", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one core")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    with open(args.bodies) as fh:
        specs = json.load(fh)
    requests = [Request(args.host, p, h, b.encode()) for p, h, b in specs]
    try:
        import uvloop  # the server's loop too; a faster client leaves more CPU to measure
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if args.rate:
        coro = open_loop(args.host, args.port, requests, args.rate, args.seconds,
                         args.connections, args.uid_base)
    else:
        coro = closed_loop(args.host, args.port, requests, args.requests, args.concurrency,
                           args.uid_base)
    stats, elapsed = runner(coro)
    print(json.dumps(summary(stats, elapsed)))


if __name__ == "__main__":
    main()
