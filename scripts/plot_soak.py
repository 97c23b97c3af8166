"""Plot a soak CSV (scripts/soak.py) to a PNG: RSS, intake latency p50/p95, backlog.

    .venv/bin/python scripts/plot_soak.py soak.csv docs/img/soak.png
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def plot(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    t = [float(r["elapsed_s"]) / 60 for r in rows]
    fig, (mem, lat, queue) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    mem.plot(t, [float(r["rss_mib"]) for r in rows])
    mem.set_ylabel("RSS (MiB)")
    lat.plot(t, [float(r["p50_ms"]) for r in rows], label="p50")
    lat.plot(t, [float(r["p95_ms"]) for r in rows], label="p95")
    lat.set_ylabel("intake latency (ms)")
    lat.legend()
    queue.plot(t, [int(r["pending"]) for r in rows], label="events pending")
    queue.plot(t, [int(r["create_runs"]) for r in rows], label="createRun calls")
    queue.set_ylabel("count")
    queue.set_xlabel("minutes")
    queue.legend()
    fig.suptitle("remediator serve --live soak against the sandbox, faults injected")
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=80)


if __name__ == "__main__":
    plot(Path(sys.argv[1]), Path(sys.argv[2]))
