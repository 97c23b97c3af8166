"""ActivePlaybooks: a broken set is refused whole and the old one stays in force."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import PlaybookError
from engine.rules.active import ActivePlaybooks
from engine.rules.load import load_playbooks
from tests.fixtures.playbooks import small_actions

ONE = "name: a\nrules:\n  - {id: one, match: {source: adf}, actions: [{action: noop}]}\n"
TWO = ONE + "  - {id: two, match: {source: synapse}, actions: [{action: noop}]}\n"


def test_reload_swaps_a_good_set_and_refuses_a_broken_one(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ONE)
    active = ActivePlaybooks([tmp_path], small_actions())
    first = active.current
    assert [r["id"] for r in active.rules_summary()] == ["one"]

    (tmp_path / "a.yaml").write_text(TWO)
    assert active.reload() == []
    assert [r.id for r in active.current.rules] == ["one", "two"]
    assert active.generation == 2 and active.current is not first

    # a new file with an error: the whole set is refused, nothing of it is half loaded
    (tmp_path / "b.yaml").write_text(
        "name: b\nrules:\n  - {id: three, match: {source: functions}, actions: [{action: nope}]}\n"
    )
    good = active.current
    assert active.reload() == [
        f"{tmp_path}/b.yaml:3:64: unknown action `nope`; did you mean `noop`?"
    ]
    assert active.current is good and active.generation == 2


def test_rules_summary_for_the_api(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "name: a\nrules:\n  - id: one\n    description: d\n    match: {source: adf}\n"
        "    actions: [{action: noop}]\n"
        "    on_failure: [{action: ticket.create, with: {title: t}}]\n"
    )
    assert ActivePlaybooks([tmp_path], small_actions()).rules_summary() == [{
        "id": "one", "playbook": "a", "file": f"{tmp_path}/a.yaml", "line": 3,
        "description": "d", "enabled": True, "continue": False, "dry_run": False,
        "approval": "none", "actions": ["noop"], "on_failure": ["ticket.create"],
    }]


def test_a_server_does_not_start_on_broken_playbooks(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nrules: 3\n")
    with pytest.raises(PlaybookError) as raised:
        ActivePlaybooks([tmp_path], small_actions())
    assert raised.value.problems == [
        f"{tmp_path}/a.yaml:2:8: rules: expected a list, got an integer (3)"
    ]


def test_tests_are_not_rules_a_broken_test_does_not_block_the_server(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ONE)
    active = ActivePlaybooks([tmp_path], small_actions())
    broken_tests = (
        "tests:\n"
        "  - {name: gone, source: adf, payload: missing.json, expect: {rule: one}}\n"
        "  - {name: odd, event: {source: adf}, expect: {rule: one}, extra: 1}\n"
    )
    (tmp_path / "a.yaml").write_text(TWO + broken_tests)
    assert active.reload() == []
    assert [r.id for r in active.current.rules] == ["one", "two"]
    assert active.current.tests == ()
    assert [r.id for r in ActivePlaybooks([tmp_path], small_actions()).current.rules] == [
        "one", "two"
    ]
    # validate and test still check them
    with pytest.raises(PlaybookError) as raised:
        load_playbooks([tmp_path], small_actions())
    assert raised.value.problems == [
        f"{tmp_path}/a.yaml:6:40: payload file not found: missing.json",
        f"{tmp_path}/a.yaml:7:60: unknown key `extra`; expected one of event, expect, index,"
        " name, payload, sequence, silences, source",
    ]
    # a broken rule still blocks the reload, tests or not
    (tmp_path / "a.yaml").write_text(ONE + "  - {id: two, match: {sorce: adf}}\n" + broken_tests)
    assert active.reload() == [
        f"{tmp_path}/a.yaml:4:23: unknown event field `sorce`; expected one of"
        " source, kind, status, dedup_key, id, resource, resource_id, run_id, error_code,"
        " error_codes, message, failure_type, severity, occurred_at, attributes, fingerprint,"
        " attributes.<name>, all, any or not"
    ]
