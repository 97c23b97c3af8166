"""``python -m sandbox [--host H] [--config-out FILE]``: the emulators in the foreground.

Writes a TOML snippet with the URLs and the CA path (``[sandbox]`` table) to FILE, prints it,
and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

from sandbox.server import Sandbox, start_sandbox

__all__ = ["config_toml", "main"]


def config_toml(sandbox: Sandbox) -> str:
    """The ``[sandbox]`` table: databricks_url, adf_url, synapse_url, openai_url, ca_file."""
    lines = ["[sandbox]"]
    for key in ("databricks_url", "adf_url", "synapse_url", "openai_url", "ca_file"):
        value = getattr(sandbox, key).replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, stop: threading.Event | None = None) -> int:
    """Run until Ctrl-C or SIGTERM (or until ``stop`` is set, for tests); returns the exit
    code. SIGTERM stops it as cleanly as Ctrl-C: the servers close, the temporary CA goes."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config-out", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to keep the CA file (default: next to --config-out, "
                        "else a temporary directory)")
    args = parser.parse_args(argv)
    workdir = args.workdir or (args.config_out.parent if args.config_out else None)
    if stop is None:  # run as a program: SIGTERM asks to stop
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with tempfile.TemporaryDirectory(prefix="remediator-sandbox-") as tmp:
        sandbox = start_sandbox(args.host, workdir or tmp)
        try:
            snippet = config_toml(sandbox)
            if args.config_out is not None:
                args.config_out.write_text(snippet)
            sys.stdout.write(snippet)
            sys.stdout.flush()
            while not stop.wait(0.5):  # a bare wait() would not see Ctrl-C until it ends
                pass
        except KeyboardInterrupt:
            pass
        finally:
            sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
