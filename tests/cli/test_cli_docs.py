"""docs/CLI.md against the commands themselves: every command that reports something takes
``--json`` and its shape is documented; every command that reaches a server reads the same
flags and environment variables; the documented shell completion works."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
from click.testing import CliRunner

from cli import main
from cli.admin import FIELDS
from tests.fixtures.common import ROOT

DOC = (ROOT / "docs" / "CLI.md").read_text()
REPORTING = ("validate", "test", "approve", "reject", "pause", "resume", "audit verify",
             "audit list", "setup azure", "setup databricks", "send-test", "incidents")
"""The commands issue 18 names: each reports something a script may want to read."""


def _commands(group: click.Group = main, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def _option(command: click.Command, flag: str) -> click.Option | None:
    return next((p for p in command.params
                 if isinstance(p, click.Option) and flag in p.opts), None)


def _documented_json() -> set[str]:
    table = DOC.split("## JSON output", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for cell in re.findall(r"^\| ([^|]+) \|", table, re.M):
        names.update(re.findall(r"`([a-z -]+)`", cell))
    return names


def test_every_reporting_command_takes_json_and_its_shape_is_documented() -> None:
    commands = dict(_commands())
    assert [name for name in REPORTING if _option(commands[name], "--json") is None] == []
    with_json = {name for name, command in commands.items() if _option(command, "--json")}
    assert sorted(with_json - _documented_json()) == []


def test_every_command_reaches_a_server_by_the_same_names() -> None:
    expected = {"--url": "REMEDIATOR_URL", "--admin-key": "REMEDIATOR_ADMIN_KEY"}
    found = []
    for name, command in _commands():
        for flag, env in expected.items():
            option = _option(command, flag)
            if option is not None and name not in ("setup azure", "setup databricks"):
                found.append((name, flag, option.envvar == env))
        key = _option(command, "--key")
        if key is not None:
            env = "REMEDIATOR_API_KEY" if name in ("send-test", "drill") \
                else "REMEDIATOR_ADMIN_KEY"
            found.append((name, "--key", key.envvar == env))
    assert [entry for entry in found if not entry[2]] == []
    assert {name for name, flag, _ in found if flag == "--url"} >= {
        "approve", "audit list", "audit verify", "incidents", "send-test", "drill"}


def _complete(env: dict[str, str]) -> str:
    result = CliRunner().invoke(main, [], prog_name="remediator", env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_documented_shell_completion_works() -> None:
    for shell in ("bash", "zsh", "fish"):
        assert f"_REMEDIATOR_COMPLETE={shell}_source remediator" in DOC
        script = _complete({"_REMEDIATOR_COMPLETE": f"{shell}_source"})
        assert "_REMEDIATOR_COMPLETE" in script
    assert _complete({"_REMEDIATOR_COMPLETE": "bash_complete", "COMP_WORDS": "remediator aud",
                      "COMP_CWORD": "1"}) == "plain,audit\n"
    states = _complete({"_REMEDIATOR_COMPLETE": "bash_complete",
                        "COMP_WORDS": "remediator incidents --state wait", "COMP_CWORD": "3"})
    assert states == "plain,waiting_approval\n"


def test_the_documented_incidents_fields_are_those_it_prints() -> None:
    table = DOC.split("## JSON output", 1)[1].split("\n## ", 1)[0]
    [row] = [line for line in table.splitlines() if line.startswith("| `incidents` |")]
    shape = row.split("|")[2].split("]")[0]
    assert tuple(re.findall(r'"([a-z_]+)"', shape)) == FIELDS
