"""The shipped playbooks: they validate, every playbook test passes, and together they cover
every code of the error catalog (playbooks/testdata/error-catalog.md, a copy of
../shared/reference/error-catalog.md kept so that the repository is self-contained).

The CLI runs in-process through click's CliRunner: the same commands a playbook author runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from cli import main
from cli.sandbox import remediator_toml
from engine.actions.registry import action_table
from engine.rules.lint import NOT_CHECKED
from engine.rules.load import load_playbooks

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
CATALOG = PLAYBOOKS / "testdata" / "error-catalog.md"

# Which sources must handle the codes of each section of the catalog.
SECTION_SOURCES = {
    "Azure Data Factory / Synapse pipelines": ("adf", "synapse"),
    "Databricks clusters": ("databricks",),
    "Databricks runs": ("databricks",),
}
_CODE = re.compile(r"^[A-Za-z0-9_.-]+$")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _test_cases() -> list[tuple[str, str]]:
    """Every (test file, case name) written in the shipped test files, read independently."""
    yaml = YAML(typ="safe")
    cases = []
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        doc = yaml.load(path.read_text()) or {}
        for case in doc.get("tests") or []:
            cases.append((path.name, case["name"]))
    return cases


def _catalog_codes() -> dict[str, list[str]]:
    """The codes in the first column of each table of the catalog, by section.

    A section is named by the start of its title (the key of SECTION_SOURCES); notes in
    the cell such as `azure_error_code: QuotaExceeded` are not codes.
    """
    codes: dict[str, list[str]] = {}
    section = ""
    for line in CATALOG.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            section = next((s for s in SECTION_SOURCES if title.startswith(s)), title)
            continue
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        codes.setdefault(section, []).extend(
            code for code in re.findall(r"`([^`]+)`", first_cell) if _CODE.match(code)
        )
    return codes


def _match_codes(spec: Any) -> set[str]:
    """Every value an ``error_code`` / ``error_codes`` condition names, at any depth."""
    found: set[str] = set()
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key in ("error_code", "error_codes"):
                values = value.get("equals", value) if isinstance(value, dict) else value
                found.update(str(v) for v in (values if isinstance(values, list) else [values]))
            else:
                found |= _match_codes(value)
    elif isinstance(spec, list):
        for item in spec:
            found |= _match_codes(item)
    return found


def _sources(spec: dict[str, Any]) -> set[str]:
    source = spec.get("source")
    return set(source) if isinstance(source, list) else {source} if source else set()


def test_the_shipped_playbooks_validate() -> None:
    code, output = _run("validate", str(PLAYBOOKS))
    assert code == 0, output


def test_the_shipped_playbooks_are_clean_under_strict(tmp_path: Path) -> None:
    """No warning (.ci/run runs the same): no attribute, code or template that no sender
    gives, and, with the settings `remediator sandbox` writes (plus the on-call channel and the
    ticket webhook the playbooks use), no channel, ticket system or cloud missing."""
    result = CliRunner().invoke(main, ["validate", "--strict", str(PLAYBOOKS)],
                                catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (0, f"note: {NOT_CHECKED}\n")
    urls = {"adf_url": "https://127.0.0.1:1", "synapse_url": "https://127.0.0.1:2",
            "databricks_url": "http://127.0.0.1:3", "openai_url": "http://127.0.0.1:4/v1",
            "ca_file": str(tmp_path / "ca.pem")}
    settings = tmp_path / "remediator.toml"
    settings.write_text(remediator_toml(urls, channel_url="https://hooks.example.com/oncall",
                                        ticket_url="https://tickets.example.com/api")
                        + '[llm]\nprovider = "compatible"\nbase_url = "http://127.0.0.1:4/v1"\n')
    result = CliRunner().invoke(main, ["validate", "--strict", "--config", str(settings),
                                       str(PLAYBOOKS)], catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (0, "")


def test_every_shipped_playbook_test_passes() -> None:
    code, output = _run("test", str(PLAYBOOKS))
    assert code == 0, output
    lines = output.splitlines()
    passed = {line.removeprefix("PASSED ") for line in lines if line.startswith("PASSED ")}
    cases = _test_cases()
    expected = {f"{name}::{case}" for name, case in cases}
    # The runner names a case `<file as given>::<name>`; compare by the file's base name.
    got = {f"{Path(title.split('::', 1)[0]).name}::{title.split('::', 1)[1]}" for title in passed}
    assert got == expected
    assert not [line for line in lines if line.startswith("FAILED")]
    assert lines[-1] == f"{len(cases)} passed, 0 failed"


def test_the_catalog_copy_is_the_reference() -> None:
    """The copy stays what it copies (when the reference is there to compare with)."""
    reference = ROOT.parent / "shared" / "reference" / "error-catalog.md"
    if reference.is_file():
        assert CATALOG.read_text() == reference.read_text()
    assert {section: len(codes) for section, codes in _catalog_codes().items()} == {
        "Azure Data Factory / Synapse pipelines": 20,
        "Databricks clusters": 23,
        "Databricks runs": 16,
    }


@pytest.mark.parametrize(("section", "sources"), sorted(SECTION_SOURCES.items()))
def test_every_catalog_code_is_matched_by_a_rule(section: str, sources: tuple[str, ...]) -> None:
    playbooks = load_playbooks([PLAYBOOKS], action_table())
    codes = _catalog_codes()[section]
    for source in sources:
        covered: set[str] = set()
        for rule in playbooks.rules:
            spec = rule.rule.match
            if source in _sources(spec):
                covered |= _match_codes(spec)
        missing = [code for code in codes if code not in covered]
        assert missing == [], f"{section}: no {source} rule matches {missing}"


def test_every_rule_has_a_test_that_hits_it() -> None:
    """Each shipped rule is the expected rule of at least one case."""
    playbooks = load_playbooks([PLAYBOOKS], action_table())
    yaml = YAML(typ="safe")
    expected_rules = set()
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        for case in (yaml.load(path.read_text()) or {}).get("tests") or []:
            if case["expect"].get("rule"):
                expected_rules.add(case["expect"]["rule"])
    untested = [rule.id for rule in playbooks.rules if rule.id not in expected_rules]
    assert untested == []
