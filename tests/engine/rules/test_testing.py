"""The playbook test runner: every case, expected vs got, the explanation, the summary."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from engine.actions.base import ActionSpec, Params
from engine.rules.load import load_playbooks, load_tests
from engine.rules.testing import format_results, run_tests, same_json
from tests.fixtures.playbooks import small_actions

PLAYBOOK = """name: t
rules:
  - id: blob
    match: {source: adf, error_code: BlobMissing}
    actions: [{action: ticket.create, with: {title: "{{ event.resource }}", severity: 2}}]
tests:
  - name: right
    event: {source: adf, kind: activity_run, error_code: BlobMissing, resource: pl}
    expect: {rule: blob, actions: [ticket.create], params: {ticket.create: {title: pl}}}
  - name: wrong
    event: {source: adf, kind: activity_run, error_code: Other, resource: pl}
    expect: {rule: blob, actions: [ticket.create], params: {ticket.create: {severity: 3}}}
  - name: second event of a payload
    source: adf
    payload: payload.json
    index: 1
    expect: {rule: null}
"""


def test_failures_show_expected_got_and_the_rules_tried(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(PLAYBOOK)
    (tmp_path / "payload.json").write_text("[1, 2]")
    actions = small_actions()
    playbooks = load_playbooks([tmp_path], actions)
    tests = load_tests([tmp_path], playbooks, actions)
    seen = []

    def parse(source: str, body: bytes) -> list:
        seen.append((source, body))
        return []  # a payload that yields no event

    results = run_tests(playbooks, tests, parse)
    assert seen == [("adf", b"[1, 2]")]
    assert [r.passed for r in results] == [True, False, False]
    assert format_results(results) == [
        f"PASSED {tmp_path}/t.yaml::right",
        f"FAILED {tmp_path}/t.yaml::wrong (line 10)",
        "    event: adf activity_run firing resource='pl' error_code='Other'",
        "    rule:",
        '      expected: "blob"',
        "      got:      null",
        "    actions:",
        '      expected: ["ticket.create"]',
        "      got:      []",
        "    params.ticket.create:",
        '      expected: {"severity": 3}',
        "      got:      null",
        "    rules tried:",
        f"      blob ({tmp_path}/t.yaml:3): error_code: expected 'BlobMissing', got 'Other'",
        f"FAILED {tmp_path}/t.yaml::second event of a payload (line 13)",
        "    payload gave 0 event(s); index 1 is out of range",
        "1 passed, 2 failed",
    ]


class _FallbackParams(Params, frozen=True, kw_only=True):
    fallbacks: tuple[str, ...]
    retries: int = 1
    force: bool = False


LISTS = """name: t
rules:
  - id: move
    match: {source: databricks}
    actions: [{action: move, with: {fallbacks: [a, b], retries: 2, force: true}}]
tests:
  - name: a list equals the tuple parameter
    event: {source: databricks, kind: cluster}
    expect: {params: {move: {fallbacks: [a, b], retries: 2.0, force: true}}}
  - name: but order, kinds and length still count
    event: {source: databricks, kind: cluster}
    expect: {params: {move: {fallbacks: [b, a], retries: "2", force: 1}}}
"""


def test_params_compare_as_json_values(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(LISTS)
    actions = {"move": ActionSpec("move", "Move.", _FallbackParams, mutating=False)}
    playbooks = load_playbooks([tmp_path], actions)
    results = run_tests(playbooks, load_tests([tmp_path], playbooks, actions), lambda s, b: [])
    assert results[0].passed
    assert results[1].failures == [
        'params.move.fallbacks:\n  expected: ["b", "a"]\n  got:      ["a", "b"]',
        'params.move.retries:\n  expected: "2"\n  got:      2',
        "params.move.force:\n  expected: 1\n  got:      true",
    ]


@pytest.mark.parametrize(("a", "b", "same"), [
    ([1, [2]], (1, (2,)), True), ({"k": 1}, {"k": 1.0}, True), (True, 1, False),
    (0, False, False), ("1", 1, False), ([1], [1, 2], False), ({"k": 1}, {"j": 1}, False),
    (None, None, True), (None, "", False),
])
def test_same_json(a: object, b: object, same: bool) -> None:
    assert same_json(msgspec.to_builtins(a), msgspec.to_builtins(b)) is same
