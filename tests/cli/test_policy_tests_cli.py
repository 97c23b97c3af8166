"""remediator test on policies, silences and sequences (issue 18, items 7-8), and
--junit-xml: through click's runner, the real loader, engine and action registry."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from cli import main
from tests.fixtures.playbooks import PLAYBOOK_DATA

POLICIES = PLAYBOOK_DATA / "policies"


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_policies_silences_and_sequences_pass() -> None:
    result = _run("test", str(POLICIES))
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines() == [
        f"PASSED {POLICIES}/finance.yaml::a finance pipeline waits for approval, by policy",
        f"PASSED {POLICIES}/finance.yaml::another pipeline does not",
        f"PASSED {POLICIES}/finance.yaml::a silence in force holds it",
        f"PASSED {POLICIES}/sequence.test.yaml::reruns after the delay, cools down, spends its "
        "budget, then escalates",
        f"PASSED {POLICIES}/sequence.test.yaml::a repeat within the cooldown is ignored",
        f"PASSED {POLICIES}/sequence.test.yaml::a finance rerun waits for approval, then runs",
        f"PASSED {POLICIES}/sequence.test.yaml::a silence holds it until it ends by itself",
        "7 passed, 0 failed",
    ]


def _copy(tmp_path: Path, edits: dict[str, tuple[str, str]]) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    for name, (old, new) in edits.items():
        path = target / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return target


def test_a_wrong_approval_or_silence_expectation_fails_with_why(tmp_path: Path) -> None:
    where = _copy(tmp_path, {"finance.yaml": (
        "expect: {rule: adf-transient, approval: none, silenced: false}",
        "expect: {rule: adf-transient, approval: required, silenced: true}")})
    result = _run("test", str(where))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    start = lines.index(f"FAILED {where}/finance.yaml::another pipeline does not (line 26)")
    assert lines[start + 2:start + 8] == [
        "    approval:",
        '      expected: "required"',
        '      got:      "none (no approval required)"',
        "    silenced:",
        "      expected: true",
        "      got:      false",
    ]


def test_a_wrong_step_expectation_fails_naming_the_step(tmp_path: Path) -> None:
    where = _copy(tmp_path, {"sequence.test.yaml": (
        "blocked: budget, state: escalated", "blocked: cooldown, state: escalated")})
    result = _run("test", str(where))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    start = lines.index(f"FAILED {where}/sequence.test.yaml::reruns after the delay, cools "
                        "down, spends its budget, then escalates (line 2)")
    assert lines[start + 1:start + 5] == [
        "    event: adf activity_run firing resource='pl_sales' error_code='2200'",
        "    step 4 (repeat) at line 14: blocked:",
        '          expected: "cooldown"',
        '          got:      "budget"',
    ]
    assert lines[-1] == "6 passed, 1 failed"


def test_junit_xml_reports_every_case_escaped(tmp_path: Path) -> None:
    where = _copy(tmp_path, {
        "sequence.test.yaml": ("name: a repeat within the cooldown is ignored",
                               'name: "a <repeat> & \\"cooldown\\" \\u0007 case"'),
        "finance.yaml": ("approval: none, silenced: false", "approval: required")})
    report = tmp_path / "out" / "junit.xml"
    report.parent.mkdir()
    result = _run("test", str(where), "--junit-xml", str(report))
    assert result.exit_code == 1
    root = ET.parse(report).getroot()
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "7", "1")
    suites = {s.get("name"): s for s in root}
    assert sorted(suites) == [f"{where}/finance.yaml", f"{where}/sequence.test.yaml"]
    finance = suites[f"{where}/finance.yaml"]
    assert (finance.get("tests"), finance.get("failures")) == ("3", "1")
    [failed] = [c for c in finance if c.find("failure") is not None]
    assert failed.get("name") == "another pipeline does not"
    failure = failed.find("failure")
    assert failure is not None and failure.text is not None
    assert failure.get("message", "").startswith('approval:\n  expected: "required"')
    assert failure.text.splitlines()[0] == (
        f"FAILED {where}/finance.yaml::another pipeline does not (line 26)")
    names = [c.get("name") for c in suites[f"{where}/sequence.test.yaml"]]
    assert names[1] == 'a <repeat> & "cooldown" \ufffd case'
    assert "&lt;repeat&gt; &amp; &quot;cooldown&quot;" in report.read_text()


def test_junit_xml_to_an_unwritable_place_exits_2(tmp_path: Path) -> None:
    result = _run("test", str(POLICIES), "--junit-xml", str(tmp_path / "no" / "junit.xml"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"--junit-xml {tmp_path}/no/junit.xml: No such file or directory")
