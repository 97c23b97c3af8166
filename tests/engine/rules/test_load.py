"""The loader: good playbooks load in order; every bad fixture gives exactly its messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.errors import PlaybookError
from engine.rules.lint import load_checked
from engine.rules.load import expand_paths, load_playbooks, load_tests
from tests.fixtures.common import assert_wrapped
from tests.fixtures.playbooks import PLAYBOOK_DATA, small_actions

BAD = PLAYBOOK_DATA / "bad"
BAD_CASES = sorted(p.stem for p in BAD.glob("*.errors"))
MSGSPEC = re.compile(r"\{msgspec(?:: ([^}]*))?\}$")
"""Ends a line of a .errors file where msgspec's own text follows ours: ``{msgspec}``, or
``{msgspec: str, int}`` to name tokens it must mention. Everything before it stays exact."""


def _as_expected(problems: list[str], expected: list[str]) -> list[str]:
    """``problems``, each of whose expected line ends in ``{msgspec}`` becomes that line once
    its part before the placeholder is exact and msgspec's part has its stable shape."""
    seen = list(problems)
    for i, (got, want) in enumerate(zip(problems, expected, strict=False)):
        if placeholder := MSGSPEC.search(want):
            mentions = placeholder[1].split(", ") if placeholder[1] else []
            assert_wrapped(got, want[: placeholder.start()], *mentions)
            seen[i] = want
    return seen


def test_good_playbooks_load_in_file_order_with_priorities() -> None:
    playbooks = load_playbooks([PLAYBOOK_DATA / "good"], small_actions())
    assert [r.id for r in playbooks.rules] == [
        "adf-source-blob-missing", "adf-copy-wrapper", "adf-user-errors",
        "dbx-cluster-unreachable", "dbx-inactivity", "dbx-disabled",
    ]
    blob = playbooks.rules[0]
    assert (blob.line, blob.col, blob.playbook) == (5, 5, "adf")
    assert blob.condition.groups == frozenset({"what"})
    assert (blob.cooldown_s, blob.budget_window_s, blob.verify_timeout_s) == (600, 86400, 7200)
    assert blob.verify_interval_s == 60
    assert blob.actions[0].delay_s == 900
    assert blob.actions[0].ref == "adf.yaml:adf-source-blob-missing/actions[0]"
    assert blob.on_failure[0].ref == "adf.yaml:adf-source-blob-missing/on_failure[0]"
    assert [t.case.name for t in playbooks.tests] == [
        "a missing blob is rerun after 15 minutes",
        "a copy wrapper notifies and then opens a ticket",
    ]


def test_a_directory_means_its_playbooks_and_test_files_hold_tests_only() -> None:
    playbooks, tests = expand_paths([PLAYBOOK_DATA / "good"])
    assert [p.name for p in playbooks] == ["adf.yaml", "databricks.yaml"]
    assert [p.name for p in tests] == ["databricks.test.yaml"]
    # naming a test file brings the playbooks of its directory along
    playbooks, tests = expand_paths([PLAYBOOK_DATA / "good" / "databricks.test.yaml"])
    assert [p.name for p in playbooks] == ["adf.yaml", "databricks.yaml"]
    loaded = load_playbooks(playbooks, small_actions())
    cases = load_tests([PLAYBOOK_DATA / "good"], loaded, small_actions())
    assert len(cases) == 6
    assert cases[2].file.endswith("databricks.test.yaml") and cases[2].line == 2


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_playbooks_report_exactly_their_expected_messages(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    target = case if (BAD / case).is_dir() else f"{case}.yaml"
    with pytest.raises(PlaybookError) as raised:  # warnings are problems under --strict
        load_checked([target], small_actions(), strict=True)
    expected = (BAD / f"{case}.errors").read_text().splitlines()
    assert _as_expected(raised.value.problems, expected) == expected


def test_every_bad_fixture_has_its_expected_messages() -> None:
    fixtures = {p.stem for p in BAD.glob("*.yaml")} | {p.name for p in BAD.iterdir() if p.is_dir()}
    assert fixtures == set(BAD_CASES)
    assert len(BAD_CASES) >= 10


def test_several_problems_of_two_files_are_all_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD)
    with pytest.raises(PlaybookError) as raised:
        load_playbooks(["two-files/b.yaml", "match.yaml", "two-files/a.yaml"], small_actions())
    files = [p.split(":")[0] for p in raised.value.problems]
    # every problem, grouped by file in the order given, each file's by position
    assert files == ["two-files/b.yaml"] * 2 + ["match.yaml"] * 11 + ["two-files/a.yaml"]
    # files are compiled in name order, so a.yaml defines the id first
    assert raised.value.problems[0] == (
        "two-files/b.yaml:3:9: duplicate rule id `shared-id`; first defined at"
        " two-files/a.yaml:3:9"
    )


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_priorities_order_files_and_rules(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", """
name: a
rules:
  - {id: a1, match: {error_code: A1}}
  - {id: a2, priority: 5, match: {error_code: A2}}
""")
    _write(tmp_path, "b.yaml", """
name: b
priority: 10
rules:
  - {id: b1, match: {error_code: B1}}
  - {id: b2, match: {error_code: B2}}
""")
    playbooks = load_playbooks([tmp_path], small_actions())
    assert [r.id for r in playbooks.rules] == ["a2", "b1", "b2", "a1"]


def test_a_continue_rule_does_not_make_later_rules_unreachable(tmp_path: Path) -> None:
    _write(tmp_path, "x.yaml", """
name: x
rules:
  - {id: everything, continue: true, match: {}}
  - {id: disabled-catch-all, enabled: false, match: {}}
  - {id: adf, match: {source: adf}}
""")
    assert [r.id for r in load_playbooks([tmp_path], small_actions()).rules] == [
        "everything", "disabled-catch-all", "adf"
    ]


def test_an_unreadable_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    _write(tmp_path, "bin.yaml", "").write_bytes(b"\xff\xfe name")
    with pytest.raises(PlaybookError) as raised:
        load_playbooks([tmp_path / "bin.yaml"], small_actions())
    assert raised.value.problems == [f"{tmp_path}/bin.yaml:1:1: cannot read file: not UTF-8 text"]
