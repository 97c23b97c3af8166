"""CPU instructions per request of the intake path, counted by valgrind (not timed).

Wall-clock and CPU-time figures move with whatever else runs on a shared box; callgrind's
instruction counts do not (the same code, input and environment give the same count). The app
runs in-process (bench/_asgi.py: ASGI calls, no sockets, no uvicorn) at two request counts,
and the difference over the difference in requests is the cost of one request, start-up and
imports cancelled out. User-space instructions of every thread (the group-commit writer and
SQLite included); the kernel's share (the WAL's writes) is not counted.

    .venv/bin/python bench/bench_instructions.py                       # this checkout
    .venv/bin/python bench/bench_instructions.py --tree /tmp/before    # an older commit
    (git archive COMMIT | tar -x -C /tmp/before)

Needs valgrind (Debian's package); ~5 minutes.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _server import ROOT, machine


def instructions(tree: Path, n: int, path: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             str(ROOT / "bench" / "_asgi.py"), str(tree), str(n), path],
            capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no count from valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--low", type=int, default=100)
    parser.add_argument("--high", type=int, default=600)
    args = parser.parse_args()
    print(f"instructions: {machine()}; tree {args.tree}; requests {args.low} and {args.high}")
    for path in ("webhooks", "/health"):
        low = instructions(args.tree, args.low, path)
        high = instructions(args.tree, args.high, path)
        per = (high - low) / (args.high - args.low)
        print(f"{path:<10} {per / 1e6:8.3f} M instructions per request")


if __name__ == "__main__":
    main()
