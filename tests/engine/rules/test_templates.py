"""Templates: rendering, merged parameters, strict undefined, the sandbox at render."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.rules.templates import RenderError, render_actions
from tests.engine.rules.helpers import event, playbook_set
from tests.fixtures.common import assert_wrapped
from tests.fixtures.playbooks import TicketParams

E = event(
    resource="pl_sales", run_id="run-1", error_code="Boom", message="ContainerName: raw, bad",
    attributes={"factory": "adf-x"},
)


def _render(tmp_path: Path, with_: dict, *, match: dict | None = None, attempts: int = 0):
    playbooks = playbook_set(tmp_path, {
        "match": match or {"message": {"regex": "ContainerName: (?P<container>\\w+)"}},
        "actions": [{"action": "ticket.create", "with": with_, "delay": "1h30m"}],
    })
    [m] = playbooks.match(E)
    return render_actions(m, E, attempts=attempts, incident={"id": "inc-7", "url": "http://x/7"})


def test_every_name_renders_and_params_are_validated(tmp_path: Path) -> None:
    [planned] = _render(tmp_path, {
        "title": "{{ event.resource }} failed {{ attempts }}x in {{ match.container }}",
        "body": "{{ incident.url }} {{ event.attributes.factory }}"
                " {{ event.error_codes | length }}",
        "severity": "{{ 1 + 1 }}",
    }, attempts=3)
    assert planned.params == TicketParams(
        title="pl_sales failed 3x in raw", body="http://x/7 adf-x 0", severity=2
    )
    assert planned.args == {"title": "pl_sales failed 3x in raw", "body": "http://x/7 adf-x 0",
                            "severity": 2}
    assert (planned.action, planned.rule_id, planned.delay_s, planned.mutating) == (
        "ticket.create", "r0", 5400, False
    )
    assert planned.ref.endswith(".yaml:r0/actions[0]")


def test_target_params_come_from_the_event_and_with_wins(tmp_path: Path) -> None:
    playbooks = playbook_set(tmp_path, {
        "match": {"source": "adf"},
        "actions": [{"action": "adf.rerun_pipeline", "with": {"pipeline": "{{ 'other' }}"}}],
    })
    [planned] = render_actions(playbooks.match(E)[0], E, attempts=0)
    assert planned.args == {"factory": "adf-x", "pipeline": "other", "run_id": "run-1",
                            "start_from_failure": True}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ event.attributes.nope }}", "with.title: 'dict object' has no attribute 'nope'"),
        ("{{ match.container.nope }}", "with.title: 'str object' has no attribute 'nope'"),
        ("{{ event|attr('__class__') }}", "with.title: unsafe template: access to attribute"
                                           " '__class__' of 'ErrorEvent' object is unsafe."),
        ("{{ event['__in' ~ 'it__'] }}", "with.title: unsafe template: access to attribute"
                                         " '__init__' of 'ErrorEvent' object is unsafe."),
        ("{{ 1 / 0 }}", "with.title: ZeroDivisionError: division by zero"),
    ],
)
def test_render_failures_are_clear_errors(tmp_path: Path, template: str, message: str) -> None:
    with pytest.raises(RenderError) as raised:
        _render(tmp_path, {"title": template})
    ref = raised.value.ref
    assert ref.endswith(".yaml:r0/actions[0]")
    assert raised.value.problems == [f"{ref}: {message}"]


def test_a_group_of_an_any_branch_that_did_not_match_is_none(tmp_path: Path) -> None:
    [planned] = _render(
        tmp_path, {"title": "{{ match.a or 'no a' }} / {{ match.b }}"},
        match={"any": [{"resource": {"regex": "(?P<a>zzz)"}},
                       {"resource": {"regex": "pl_(?P<b>\\w+)"}}]},
    )
    assert planned.args["title"] == "no a / sales"


def test_rendered_params_that_do_not_validate_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(RenderError) as raised:
        _render(tmp_path, {"title": "t", "severity": "{{ event.resource }}"})
    [problem] = raised.value.problems
    # ours: the ref and the kind; then msgspec's reason, naming the types and the field's path
    assert_wrapped(problem, f"{raised.value.ref}: invalid parameters: ", "int", "str", "$.severity")


def test_mutation_is_refused_by_the_sandbox(tmp_path: Path) -> None:
    with pytest.raises(RenderError) as raised:
        _render(tmp_path, {"title": "{{ event.attributes.update({'x': 1}) }}"})
    assert "unsafe template" in raised.value.problems[0]
    assert E.attributes == {"factory": "adf-x"}
