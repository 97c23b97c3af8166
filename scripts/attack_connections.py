"""The connection-level attacks of issue 14 against a real ``remediator serve``, with figures.

    .venv/bin/python scripts/attack_connections.py                     # this checkout
    .venv/bin/python scripts/attack_connections.py --tree /tmp/before  # an older commit
    (git archive COMMIT | tar -x -C /tmp/before)

Each attack runs against a fresh ``serve`` (default settings, dry-run, the shipped playbooks)
started with a soft open-file limit of 1,024 (Linux's default; the hard limit stays unless
``--hard-files`` sets it), while a thread probes ``/health`` every second (2 s timeout) and
another samples the server's RSS and open files from /proc every 0.2 s:

1. header flood: 4 connections each send one header of ``--header-mib`` MiB (200) in 64 KiB
   writes, until it is all sent, the server closes the connection, or ``--flood-bound-s``;
   then each waits up to 10 s for an answer.
2. idle connections: ``--idle`` (1,100) connections send half a request head, then nothing;
   for up to ``--idle-bound-s`` (150) it records when the server closes each.

Every loop is bounded; the server is killed at the end of each attack.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "rk-attack-7d1c"


class Serve:
    """``remediator serve`` from ``tree`` on a free port, soft RLIMIT_NOFILE 1,024 (the hard
    one ``hard_files``, else as it is)."""

    def __init__(self, tree: Path, workdir: Path, hard_files: int | None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "serve.log"
        env = {**os.environ, "PYTHONPATH": str(tree), "REMEDIATOR_API_KEYS": KEY}
        hard = hard_files or resource.getrlimit(resource.RLIMIT_NOFILE)[1]

        def limit_files() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from cli import main; main()", "serve",
                 "--port", str(self.port), "--db", str(workdir / "attack.db"),
                 "--playbooks", str(tree / "playbooks")],
                cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=limit_files)
        deadline = time.monotonic() + 120
        while not self.health(timeout=1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start; see {self.log}")
            time.sleep(0.2)

    def health(self, timeout: float = 2.0) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def sample(self) -> tuple[int, int]:
        """RSS in kB and open files, now."""
        rss = 0
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        return rss, len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def soft_files(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        return 0

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


class Watch:
    """/health every second and /proc every 0.2 s on threads, until stopped."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.ok = self.failed = 0
        self.peak_rss_kb = self.peak_files = 0
        self.files_at_start = serve.sample()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._probe), threading.Thread(target=self._proc)]
        for thread in self._threads:
            thread.start()

    def _probe(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            if self.serve.health():
                self.ok += 1
            else:
                self.failed += 1
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def _proc(self) -> None:
        while not self._stop.is_set():
            try:
                rss, files = self.serve.sample()
            except (FileNotFoundError, ProcessLookupError):
                return
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_files = max(self.peak_files, files)
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def header_flood(serve: Serve, mib: int, bound_s: float) -> dict[str, object]:
    chunk = b"a" * 65536
    outcomes: list[str] = []
    sent_mib: list[float] = []

    def attack() -> None:
        sent = 0
        deadline = time.monotonic() + bound_s
        with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as sock:
            try:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
                while sent < mib * 1024 * 1024 and time.monotonic() < deadline:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass
            sent_mib.append(sent / 1024 / 1024)
            try:
                answer = sock.recv(200)
                outcomes.append(answer.split(b"\r\n", 1)[0].decode() if answer else "closed")
            except TimeoutError:
                outcomes.append("no answer in 10 s")
            except OSError:
                outcomes.append("reset")

    watch = Watch(serve)
    rss_start = serve.sample()[0]
    started = time.monotonic()
    attackers = [threading.Thread(target=attack) for _ in range(4)]
    for thread in attackers:
        thread.start()
    for thread in attackers:
        thread.join(timeout=bound_s + 60)
    took = time.monotonic() - started
    watch.stop()
    return {"seconds": round(took, 2), "health ok": watch.ok, "health failed": watch.failed,
            "RSS MiB (start/peak)": f"{rss_start / 1024:.0f}/{watch.peak_rss_kb / 1024:.0f}",
            "sent MiB per connection": [round(s, 1) for s in sent_mib], "answers": outcomes}


def idle_connections(serve: Serve, count: int, bound_s: float) -> dict[str, object]:
    watch = Watch(serve)
    selector = selectors.DefaultSelector()
    opened: dict[socket.socket, float] = {}
    refused = 0
    started = time.monotonic()
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", serve.port), timeout=5)
            sock.sendall(b"POST /azure-monitor HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        except OSError:
            refused += 1
            continue
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        opened[sock] = time.monotonic()
    connected = len(opened)
    closed_after: list[float] = []
    deadline = started + bound_s
    while opened and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                continue  # an answer (408); the close follows
            closed_after.append(time.monotonic() - opened.pop(sock))
            selector.unregister(sock)
            sock.close()
    health_after = serve.health()
    still_open = len(opened)
    for sock in opened:
        sock.close()
    watch.stop()
    emfile = "Too many open files" in serve.log.read_text()
    return {
        "connected": connected, "connect failed": refused,
        "closed by the server": len(closed_after),
        "seconds to close (min/median/max)": (
            f"{min(closed_after):.1f}/{statistics.median(closed_after):.1f}/"
            f"{max(closed_after):.1f}"
            if closed_after else "-"),
        f"still open after {bound_s:g} s": still_open,
        "server open files (start/peak; soft limit)":
            f"{watch.files_at_start}/{watch.peak_files}; {serve.soft_files()}",
        "EMFILE in the log": emfile,
        "health ok": watch.ok, "health failed": watch.failed, "health at the end": health_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--header-mib", type=int, default=200)
    parser.add_argument("--flood-bound-s", type=float, default=300.0)
    parser.add_argument("--idle", type=int, default=1100)
    parser.add_argument("--idle-bound-s", type=float, default=150.0)
    parser.add_argument("--only", choices=["flood", "idle"], default=None)
    parser.add_argument("--hard-files", type=int, default=None,
                        help="the server's hard open-file limit too (e.g. 1024: serve cannot "
                             "raise its soft one)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.idle + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.idle + 1000), hard))
    print(f"attacks on `remediator serve` from {args.tree}: {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}, load average "
          f"{os.getloadavg()[0]:.1f}")
    attacks = {"flood": lambda s: header_flood(s, args.header_mib, args.flood_bound_s),
               "idle": lambda s: idle_connections(s, args.idle, args.idle_bound_s)}
    for name, attack in attacks.items():
        if args.only not in (None, name):
            continue
        with tempfile.TemporaryDirectory(prefix="attack-") as tmp:
            serve = Serve(args.tree, Path(tmp), args.hard_files)
            try:
                result = attack(serve)
            finally:
                serve.stop()
        print(f"\n{name}:")
        for key, value in result.items():
            print(f"  {key:<45} {value}")


if __name__ == "__main__":
    main()
