"""The Dockerfile's key lines (no Docker engine here: the image is not built in the tests)."""

from __future__ import annotations

import re

from tests.fixtures.common import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions() -> list[str]:
    """Instructions with continuation lines joined and comments dropped."""
    text = re.sub(r"\s*\\\n\s*", " ", DOCKERFILE)
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_runs_the_console_script_as_a_non_root_user() -> None:
    lines = _instructions()
    assert lines[0] == "FROM python:3.11-slim"
    assert "RUN pip install -c requirements.lock . && rm -rf build" in lines
    assert lines[-2:] == ['ENTRYPOINT ["remediator"]', 'CMD ["serve", "--host", "0.0.0.0"]']
    users = [line for line in lines if line.startswith("USER ")]
    assert users == ["USER remediator"]
    assert lines.index("USER remediator") < lines.index('ENTRYPOINT ["remediator"]')
    assert "EXPOSE 8080" in lines


def test_the_database_lives_on_the_data_volume() -> None:
    lines = _instructions()
    assert 'VOLUME ["/data"]' in lines
    env = " ".join(line for line in lines if line.startswith("ENV "))
    assert "REMEDIATOR_DB=/data/remediator.db" in env
    assert "chown remediator:remediator /data" in DOCKERFILE


def test_the_healthcheck_asks_health_with_python_urllib() -> None:
    [check] = [line for line in _instructions() if line.startswith("HEALTHCHECK ")]
    assert check.startswith("HEALTHCHECK --interval=30s --timeout=5s --start-period=20s "
                            "--retries=3 CMD [\"python\", \"-c\", ")
    assert "urllib.request.urlopen('http://127.0.0.1:%s/health'" in check


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for pattern in (".git", ".venv", "tests", "*.db", "*.db-wal", ".env", "*.pem"):
        assert pattern in ignored
    for needed in ("engine", "receivers", "playbooks", "pyproject.toml", "README.md",
                   "requirements.lock"):
        assert needed not in ignored
