"""Event-supplied text marked in templates and escaped per channel (engine/text/markup.py): what a
template's ``{{ }}`` puts in is marked however it was computed, the author's text is not, and
each channel's escaping never cuts an escape in two nor lets a value start a markdown line."""

from __future__ import annotations

from pathlib import Path

from engine.actions.registry import action_table
from engine.rules.load import load_playbooks
from engine.text import markup
from tests.engine.actions.conftest import adf_event

TEXTS = {
    "filtered": "{{ event.resource | upper }}",
    "sliced": "{{ event.resource[:9] }}!",
    "set block": "{% set who %}{{ event.resource }}{% endset %}<{{ who }}>",
    "condition": "{% if event.resource %}on {{ event.resource }}{% endif %}",
}


def test_every_value_a_template_outputs_is_marked_and_only_markup_params_keep_it(
        tmp_path: Path) -> None:
    steps = "".join(
        f"      - action: notify.webhook\n        with: {{channel: c, text: '{text}'}}\n"
        for text in TEXTS.values())
    steps += "      - action: ticket.create\n        with: {title: '{{ event.resource }}'}\n"
    (tmp_path / "p.yaml").write_text(
        f"name: p\nrules:\n  - id: r\n    match: {{source: adf}}\n    actions:\n{steps}")
    event = adf_event(resource="<!here>")
    [(_, planned)] = load_playbooks([tmp_path], action_table()).plan(event)
    *notes, ticket = planned
    slack = [markup.slack(p.params.text, limit=100) for p in notes]
    assert slack == ["&lt;!HERE&gt;", "&lt;!here&gt;!", "<&lt;!here&gt;>", "on &lt;!here&gt;"]
    assert [p.args["text"] for p in notes] == ["<!HERE>", "<!here>!", "<<!here>>", "on <!here>"]
    assert (ticket.params.title, ticket.args["title"]) == ("<!here>", "<!here>")


def test_a_value_cannot_begin_a_markdown_line_in_teams() -> None:
    text = f"Failed:\n{markup.untrusted('1. first')}\n{markup.untrusted('  - second')}"
    assert markup.teams(text, limit=100) == "Failed:\n1\\. first\n  \\- second"
    assert markup.teams(f"see {markup.untrusted('- x')}", limit=100) == "see - x"
    assert markup.teams(markup.untrusted("# title\n- item"), limit=100) == "\\# title - item"


def test_limits_never_cut_an_escape_in_two() -> None:
    assert markup.slack(markup.untrusted("<" * 10), limit=10) == "&lt;&lt;"
    assert markup.teams(markup.untrusted("[" * 10), limit=5) == "\\[\\["
    assert markup.slack("author " + markup.untrusted("<x>"), limit=9) == "author "


def test_marks_left_open_or_stray() -> None:
    assert markup.slack(markup.OPEN + "<b>", limit=100) == "&lt;b&gt;"  # open to the end
    assert markup.slack("<b>" + markup.CLOSE + "<i>", limit=100) == "<b><i>"  # author's
    nested = f"{markup.OPEN}a{markup.OPEN}<b>{markup.CLOSE}<c>{markup.CLOSE}<d>"
    assert markup.slack(nested, limit=100) == "a&lt;b&gt;&lt;c&gt;<d>"
