"""docs/DEPLOY.md's settings examples (issue 18, item 9): every ```toml block loads as the
service loads its file, and together they show every section the settings take, each
commented, so that nobody deploys without a channel, a ticket system or an LLM by not
knowing the section exists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.config import CloudSettings, Settings, load_settings
from receivers.passwords import hash_password
from tests.fixtures.common import ROOT

DOC = (ROOT / "docs" / "DEPLOY.md").read_text()
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC, re.S)


def _tables(struct: type[msgspec.Struct]) -> set[str]:
    """The fields of ``struct`` that are tables in TOML (a Struct or a dict, maybe None)."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    names = set()
    for field in info.fields:
        kinds = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) \
            else (field.type,)
        if any(isinstance(k, msgspec.inspect.StructType | msgspec.inspect.DictType)
               for k in kinds):
            names.add(field.encode_name)
    return names


def _secret(name: str) -> str:
    """A value any secret takes: at least 8 characters, and a named user's password hash."""
    return hash_password(f"password of {name}", cost=(1024, 8, 1))


def _env(text: str) -> dict[str, str]:
    """Every ``env:NAME`` the block reads, set."""
    return {name: _secret(name) for name in re.findall(r'"env:([A-Z0-9_]+)"', text)}


@pytest.mark.parametrize("text", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_settings_block_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   text: str) -> None:
    for n, secret in enumerate(sorted(set(re.findall(r'"file:([^"]+)"', text)))):
        # a secret in a file, as a mounted Key Vault secret: a readable file in its place
        local = tmp_path / f"secret-{n}"
        local.write_text(_secret(secret) + "\n")
        text = text.replace(f'"file:{secret}"', f'"file:{local}"')
    path = tmp_path / "remediator.toml"
    path.write_text(text)
    for name, value in _env(text).items():
        monkeypatch.setenv(name, value)
    load_settings(path, env={})


def test_the_blocks_show_every_section_each_with_a_comment() -> None:
    shown: set[str] = set()
    clouds: set[str] = set()
    for text in BLOCKS:
        data: dict[str, Any] = tomllib.loads(text)
        shown |= set(data)
        clouds |= set(data.get("clouds", {}))
    assert sorted(_tables(Settings) - shown) == []
    assert sorted(_tables(CloudSettings) - clouds) == []
    reference = next(text for text in BLOCKS if "[clouds.ticket]" in text)
    uncommented = [line for line in reference.splitlines()
                   if re.match(r"\[[a-z.-]+\]", line) and "#" not in line
                   and not line.startswith(("[clouds.channels.data-platform]",
                                            "[receivers.databricks-monitor]"))]
    assert uncommented == []
    assert len(BLOCKS) >= 2
