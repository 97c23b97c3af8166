"""A playbook's YAML aliases are bounded (red-team round after issue 14).

``engine/rules/_yaml.py`` turns ruamel's tree into plain data by walking it, and an alias is
walked (and copied, with a position entry per path) every time it is referenced: nine anchors of
ten aliases each, 741 bytes of YAML ("billion laughs"), make 10^9 nodes. Measured with
``remediator validate``: 10^5 nodes 1.6 s / 105 MB, 10^6 10 s / 594 MB, 10^9 killed by a
1.5 GB address-space limit after 24 s with ``SystemError`` (no file:line:col). The server's
loader (start, SIGHUP, ``POST /api/playbooks/reload``, the dashboard's /playbooks without an
engine) runs the same code. A file that expands past a bound must be refused as a problem at
its position, within a small memory budget."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

LIMIT_BYTES = 1024**3
"""The address space the validating process may use: far more than any real playbook needs."""


def _laughs(depth: int) -> str:
    lines = ["name: laughs", "rules:", "  - id: r1", "    match: {source: adf}", "    actions:",
             "      - action: notify.webhook", "        with:", "          text: hi",
             "          fields:", "            a0: &a0 [" + ",".join(['"lol"'] * 10) + "]"]
    for i in range(1, depth):
        lines.append(f"            a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def test_a_billion_laughs_playbook_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(_laughs(9))
    assert len(path.read_bytes()) < 1000
    done = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "validate", str(path)],
        capture_output=True, text=True, preexec_fn=_limit, timeout=300, check=False)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 1
    problems = done.stderr.splitlines()
    assert problems[0].startswith(f"{path}:"), problems[:3]
    assert problems[-1].endswith("problem(s)")
