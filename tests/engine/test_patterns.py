"""engine/text/patterns.py: every pattern on event text is RE2's, refusals say why, globs mean
what fnmatch means, and an event's message is bounded (issue 14)."""

from __future__ import annotations

import ast
import fnmatch
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import ErrorEvent
from engine.text import patterns
from tests.fixtures.common import ROOT

# The modules that may import `re`, and why: none of them runs a pattern on event text.
# Every other module of engine/, receivers/ and cli/ compiles its patterns with
# engine.text.patterns.
MAY_IMPORT_RE = {
    "engine/text/patterns.py": "words a refused pattern's error, reads our own templates",
    "engine/rules/durations.py": "durations from playbooks and the command line",
    "engine/rules/load.py": "rule ids from playbook files",
    "cli/setup_azure.py": "resource names from the command line",
    "engine/analysis/catalog.py": "the shipped catalog's Markdown, at build time",
    "engine/config.py": "settings values and msgspec's messages about them",
}


def _sources() -> list[Path]:
    return sorted(p for top in ("engine", "receivers", "cli") for p in (ROOT / top).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_only_the_listed_modules_import_re_and_each_says_why_on_the_import_line() -> None:
    importers = {}
    for path in _sources():
        imported = _imports(path)
        assert not imported & {"fnmatch", "sre_compile", "sre_parse", "regex"}, path
        if imported & {"re", "re._parser", "re._compiler"}:
            line = next(ln for ln in path.read_text().splitlines()
                        if ln.startswith(("import re", "from re ")))
            importers[str(path.relative_to(ROOT))] = line
    assert set(importers) == set(MAY_IMPORT_RE)
    for module, line in importers.items():
        assert re.fullmatch(r"import re  # re: .+never event text", line), (module, line)


def _values(value: Any, depth: int = 0) -> list[Any]:
    """``value`` and what it holds (tuples, lists, dicts, sets), a few levels down."""
    found = [value]
    if depth < 4:
        items: Any = ()
        if isinstance(value, dict):
            items = [*value.keys(), *value.values()]
        elif isinstance(value, tuple | list | set | frozenset):
            items = value
        for item in items:
            found.extend(_values(item, depth + 1))
    return found


def _modules() -> list[Any]:
    import cli
    import engine
    import receivers

    names = [name for package in (engine, receivers, cli)
             for _, name, _ in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]
    return [importlib.import_module(name) for name in names]


def test_every_compiled_pattern_of_a_module_that_sees_event_text_is_re2() -> None:
    allowed = {m.removesuffix(".py").replace("/", ".") for m in MAY_IMPORT_RE}
    kinds: dict[str, set[type]] = {}
    for module in _modules():
        for name, value in vars(module).items():
            if name.startswith("__"):
                continue
            for item in _values(value):
                if isinstance(item, re.Pattern | patterns.Pattern):
                    kinds.setdefault(module.__name__, set()).add(type(item))
    with_re = {name for name, types in kinds.items() if re.Pattern in types}
    assert with_re <= allowed, with_re - allowed
    # the modules that hold the patterns of issue 14, and that they are RE2's
    for name in ("engine.text.redact", "engine.events", "engine.analysis.offline",
                 "engine.text.errorcodes", "engine.cloud.errors", "engine.cloud.targets",
                 "engine.rules.templates", "receivers.api"):
        assert kinds[name] == {patterns.Pattern}, name


def test_a_pattern_is_compiled_by_re2() -> None:
    compiled = patterns.compile(r"(?P<code>\w+)Exception\b")
    assert type(compiled._re).__module__ == "re2"
    assert compiled.search("java.lang.NullPointerException: x")["code"] == "NullPointer"


@pytest.mark.parametrize(("pattern", "reason"), [
    ("(?<!x)y", "negative lookbehind `(?<!` is not supported: patterns run in linear time "
                "(RE2 syntax)"),
    ("(?<=x)y", "lookbehind `(?<=` is not supported: patterns run in linear time (RE2 syntax)"),
    ("x(?=y)", "lookahead `(?=` is not supported: patterns run in linear time (RE2 syntax)"),
    ("x(?!y)", "negative lookahead `(?!` is not supported: patterns run in linear time "
               "(RE2 syntax)"),
    (r"(a)\1", "backreference `\\1` is not supported: patterns run in linear time (RE2 syntax)"),
    ("(?P<n>a)(?P=n)", "backreference `(?P=name)` is not supported: patterns run in linear time "
                       "(RE2 syntax)"),
    ("(?>a+)b", "atomic group `(?>` is not supported: patterns run in linear time (RE2 syntax)"),
    ("a++b", "possessive `++` is not supported: patterns run in linear time (RE2 syntax)"),
    ("(a)?(?(1)b|c)", "conditional `(?(` is not supported: patterns run in linear time "
                      "(RE2 syntax)"),
    ("(?P<name>unclosed", "missing ), unterminated subpattern at position 0"),
    ("a{1001}", "repeat count {1001} is too large: RE2 allows at most 1000, nested repeats "
                "multiplied (RE2 syntax)"),
    (r"a\Z", "`\\Z` is not supported: write `\\z` (RE2 syntax)"),
    ("(?x) a", "`(?x` is not supported: the inline flags are i, m, s and U (RE2 syntax)"),
    ("(?#note)a", "comments `(?#...)` are not supported (RE2 syntax)"),
])
def test_a_pattern_re2_cannot_run_is_refused_with_the_reason(pattern: str, reason: str,
                                                              capfd: Any) -> None:
    with pytest.raises(patterns.PatternError) as refused:
        patterns.compile(pattern)
    assert str(refused.value) == reason
    assert capfd.readouterr() == ("", "")  # RE2 logs nothing of its own


GLOB_ALPHABET = st.sampled_from(list("ab-!]^[*?\\z\n&é"))


@settings(max_examples=3000)
@given(st.text(GLOB_ALPHABET, max_size=8), st.text(GLOB_ALPHABET, max_size=6))
def test_a_glob_means_what_fnmatch_means(glob: str, text: str) -> None:
    assert (patterns.glob(glob).fullmatch(text) is not None) == fnmatch.fnmatchcase(text, glob)


def test_sub_replaces_with_templates_and_functions_on_any_text() -> None:
    number = patterns.compile(r"(?P<n>\d+)")
    assert number.sub("<n>", "é1é22x") == "é<n>é<n>x"
    assert number.sub(r"[\1]", "a1b22") == "a[1]b[22]"
    assert number.sub(r"[\g<n>]", "a1b22") == "a[1]b[22]"
    assert number.sub(lambda m: str(int(m[0]) * 2), "a1b22") == "a2b44"
    assert patterns.compile("x*").sub("-", "abxé") == re.sub("x*", "-", "abxé")
    assert number.sub("<n>", "no digits") == "no digits"
    # a lone surrogate (UTF-8 cannot carry it) is read as "?", never raises
    assert number.sub("<n>", "7\ud800") == "<n>?"
    assert number.search("x\ud8009")[0] == "9"


def test_an_event_keeps_at_most_text_limit_characters_of_its_message() -> None:
    long = "A" * (patterns.TEXT_LIMIT * 3)
    made = ErrorEvent(source="generic", kind="alert", status="firing", dedup_key="k",
                      message=long, failure_type=long)
    cut = "A" * (patterns.TEXT_LIMIT - 1) + "…"
    assert (made.message, made.failure_type) == (cut, cut)
    short = ErrorEvent(source="generic", kind="alert", status="firing", dedup_key="k")
    assert msgspec.structs.replace(short, message=long).message == cut  # enrichment's way
    stored = msgspec.json.encode({**msgspec.to_builtins(short), "message": long})
    assert msgspec.json.decode(stored, type=ErrorEvent).message == cut  # read back
    exact = "B" * patterns.TEXT_LIMIT
    assert msgspec.structs.replace(short, message=exact).message == exact
