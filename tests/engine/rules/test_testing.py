"""The playbook test runner: every case, expected vs got, the explanation, the summary."""

from __future__ import annotations

from pathlib import Path

from engine.rules.load import load_playbooks, load_tests
from engine.rules.testing import format_results, run_tests
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
