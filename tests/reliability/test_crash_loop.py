"""kill -9 the real ``remediator serve --live`` three times under load (the short version of
scripts/crash_loop.py): nothing acknowledged is lost, nothing is sent twice, work resumes."""

from __future__ import annotations

from pathlib import Path

from scripts.crash_loop import crash_loop


def test_three_kills_under_load_lose_nothing_and_repeat_nothing(tmp_path: Path) -> None:
    report = crash_loop(3, tmp_path, seed=3, settle_s=60)
    assert report["acknowledged"] > 0, report
    assert report["missing_after_restart"] == [], report
    assert report["sent_twice"] == {}, report
    assert report["never_remediated"] == [], report
    assert set(report["event_states"]) == {"done"}, report
    assert set(report["incident_states"]) == {"resolved"}, report
    assert report["create_run_calls"] == report["acknowledged"] + report[
        "remediated_unacknowledged"], report
