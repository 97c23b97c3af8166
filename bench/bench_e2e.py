"""End to end: from a webhook's arrival to the first remediation call reaching the cloud.

``remediator serve --live`` (a real process, real uvicorn) against the sandbox's emulators
(started in this process), with a playbook whose rule reruns the failed ADF pipeline at once
(no delay). Webhooks are posted over real HTTP at a fixed rate (open loop: each is sent when
it is due, whatever the answers before it) for a bounded time; each is the Log Alerts V2 ADF
sample about its own pipeline ``pl_<tag>`` and run, so each is one target and one
remediation. The latency of a webhook is the ADF emulator's timestamp (``ts`` in its call
log) of the ``createRun`` of that pipeline minus the moment the webhook was sent; both are
this machine's wall clock.

    .venv/bin/python bench/bench_e2e.py                 # 100/s for 20 s
    .venv/bin/python bench/bench_e2e.py --rate 50 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _server import machine

from engine.config import EngineSettings
from sandbox.server import start_sandbox
from scripts._harness import (
    RECEIVER_KEY,
    adf_failure,
    make_serve,
    pipeline_of,
    rerun_calls,
    rerun_playbook,
)

PLAYBOOK = rerun_playbook("e2e", verify_interval="10m")


async def send(url: str, rate: float, seconds: float, sandbox: Any,
               prefix: str = "e2e") -> tuple[dict[str, float], dict[int, int]]:
    """Post one new failure every ``1 / rate`` s (each a failed run the sandbox has);
    returns {pipeline: sent at} and statuses."""
    total = int(rate * seconds)
    payloads = [(f"pl_{prefix}{n:06d}", adf_failure(f"{prefix}{n:06d}", sandbox=sandbox))
                for n in range(total)]
    sent: dict[str, float] = {}
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(pipeline: str, payload: dict[str, Any]) -> None:
            sent[pipeline] = time.time()
            response = await client.post(f"{url}/azure-monitor", json=payload,
                                         headers={"x-api-key": RECEIVER_KEY})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        start = time.monotonic()
        tasks = []
        for n, (pipeline, payload) in enumerate(payloads):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(pipeline, payload)))
        await asyncio.gather(*tasks)
    return sent, statuses


def warm_up(url: str, sandbox: Any) -> None:
    """One remediation before measuring: the first token and TLS session are not the rate's."""
    asyncio.run(send(url, 1, 1, sandbox, prefix="warm"))
    deadline = time.monotonic() + 60
    while not rerun_calls(sandbox) and time.monotonic() < deadline:
        time.sleep(0.1)
    sandbox.reset()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--drain", type=float, default=120.0,
                        help="how long to wait after the last send for the last remediation")
    defaults = EngineSettings()
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="[engine] threads (default: the service's default)")
    parser.add_argument("--batch", type=int, default=defaults.batch,
                        help="[engine] batch (default: the service's default)")
    parser.add_argument("--profile", default="",
                        help="py-spy (raw, per thread) of the serve process while it works, "
                             "to FILE")
    parser.add_argument("--gil", action="store_true",
                        help="with --profile: only samples holding the GIL (else idle too)")
    args = parser.parse_args()
    print(f"e2e: {machine()}; {args.rate:.0f} webhooks/s for {args.seconds:.0f} s; "
          f"[engine] threads = {args.threads}, batch = {args.batch}")
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = start_sandbox(workdir=Path(tmp) / "sandbox")
        serve = make_serve(Path(tmp), sandbox, playbook=PLAYBOOK, lease_s=30)
        config = serve.config.read_text().replace(
            "[engine]\n", f"[engine]\nthreads = {args.threads}\nbatch = {args.batch}\n", 1)
        serve.config.write_text(config)
        try:
            serve.start()
            warm_up(serve.url, sandbox)
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                     str(serve.process.pid), "-r", "100", "-f", "raw", "--threads",
                     "--nonblocking", "--gil" if args.gil else "--idle", "-o", args.profile],
                    stdout=subprocess.DEVNULL)
            cpu_before, own_before = cpu_s(serve.process.pid), time.process_time()
            began = time.time()
            sent, statuses = asyncio.run(send(serve.url, args.rate, args.seconds, sandbox))
            sending = time.time() - began
            deadline = time.monotonic() + args.drain
            first: dict[str, float] = {}
            while time.monotonic() < deadline:
                first = {}
                for call in rerun_calls(sandbox):
                    first.setdefault(pipeline_of(call), call["ts"])
                if len(first) >= len(sent):
                    break
                time.sleep(0.5)
            cpu = cpu_s(serve.process.pid) - cpu_before  # intake and worker, idle polls included
            own = time.process_time() - own_before  # the sender and the emulators
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
        finally:
            serve.stop()
            sandbox.stop()
    latencies = [(first[p] - t) * 1000 for p, t in sent.items() if p in first]
    done = max(first.values()) - min(sent.values()) if first else float("nan")
    print(f"sent {len(sent):,} in {sending:.1f} s, statuses {statuses}; remediated "
          f"{len(latencies):,} ({len(latencies) / done:,.1f}/s over {done:.1f} s); "
          f"CPU per event: serve {cpu * 1000 / max(1, len(latencies)):.1f} ms, "
          f"bench (sender + emulators) {own * 1000 / max(1, len(latencies)):.1f} ms; "
          f"load average {os.getloadavg()[0]:.1f}")
    if latencies:
        print(f"webhook -> first createRun: p50 {percentile(latencies, 0.5):,.0f} ms, "
              f"p90 {percentile(latencies, 0.9):,.0f} ms, p99 {percentile(latencies, 0.99):,.0f}"
              f" ms, max {max(latencies):,.0f} ms")


if __name__ == "__main__":
    main()
