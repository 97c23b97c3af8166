"""requirements.lock agrees with pyproject.toml: every declared dependency (runtime and every
extra) is pinned there at a version its range admits, and nothing is pinned as ours that
pyproject.toml no longer declares. The lock is what README's commands and .ci/run install."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
REFRESH = ("uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 "
           "-o requirements.lock")
"""The command that writes the lock (its own header says so, and docs/DEVELOPING.md)."""


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return [Requirement(spec) for spec in specs]


def pinned() -> tuple[dict[str, list[Version]], set[str]]:
    """Versions pinned per package (a universal lock may pin one per Python range), and the
    packages the lock says come from pyproject.toml itself."""
    versions: dict[str, list[Version]] = {}
    ours: set[str] = set()
    current = ""
    for line in LOCK.read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if pin:
            current = canonicalize_name(pin[1])
            versions.setdefault(current, []).append(Version(pin[2]))
        elif "remediator (pyproject.toml)" in line:
            ours.add(current)
    return versions, ours


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    versions, _ = pinned()
    wrong = []
    for req in declared():
        name = canonicalize_name(req.name)
        found = versions.get(name, [])
        if not found:
            wrong.append(f"{req.name}: not in requirements.lock")
        wrong += [f"{req.name}=={v}: outside {req.specifier}" for v in found
                  if not req.specifier.contains(v, prereleases=True)]
    assert wrong == [], f"requirements.lock is stale; refresh it with: {REFRESH}"


def test_the_lock_pins_as_ours_exactly_what_pyproject_declares() -> None:
    _, ours = pinned()
    assert ours == {canonicalize_name(r.name) for r in declared()}, (
        f"requirements.lock is stale; refresh it with: {REFRESH}")


def test_the_refresh_command_is_the_one_documented() -> None:
    assert f"#    {REFRESH}\n" in LOCK.read_text()
    assert REFRESH in (ROOT / "docs" / "DEVELOPING.md").read_text()
    readme = (ROOT / "README.md").read_text()
    commands = readme.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert len(commands) == 2
    assert all("pip install -c requirements.lock -e " in c for c in commands)
