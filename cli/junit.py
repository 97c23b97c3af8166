"""``remediator test --junit-xml FILE``: the playbook tests' results as JUnit XML, the report
format CI systems read (GitLab, Jenkins, Azure Pipelines, GitHub test reporters).

One ``<testsuite>`` per test file, one ``<testcase>`` per case (``classname`` the file,
``name`` the case), a failed case with one ``<failure>`` whose text is the expected/got
report of ``remediator test``. Written with ``xml.etree`` (it escapes ``<``, ``&`` and
quotes); the characters XML 1.0 cannot carry at all (control characters from a payload) are
replaced by U+FFFD (``str.translate``: one pass), so the file always parses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from engine.rules.testing import CaseResult, format_results

__all__ = ["junit_xml", "write_junit"]

_NOT_XML = {c: "\ufffd" for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20),
                                    *range(0xD800, 0xE000), 0xFFFE, 0xFFFF)}
"""The characters XML 1.0 cannot carry (and lone surrogates, which UTF-8 cannot), each
replaced by U+FFFD."""


def _text(value: str) -> str:
    return value.translate(_NOT_XML)


def junit_xml(results: Sequence[CaseResult]) -> ET.ElementTree:
    """The results as a JUnit ``<testsuites>`` document."""
    root = ET.Element("testsuites", name="remediator test", tests=str(len(results)),
                      failures=str(sum(not r.passed for r in results)))
    suites: dict[str, ET.Element] = {}
    for result in results:
        file = result.test.file
        suite = suites.get(file)
        if suite is None:
            suite = suites[file] = ET.SubElement(root, "testsuite", name=_text(file),
                                                 tests="0", failures="0")
        suite.set("tests", str(int(suite.get("tests", "0")) + 1))
        case = ET.SubElement(suite, "testcase", classname=_text(file),
                             name=_text(result.test.case.name), file=_text(file),
                             line=str(result.test.line))
        if not result.passed:
            suite.set("failures", str(int(suite.get("failures", "0")) + 1))
            report = "\n".join(format_results([result])[:-1])
            failure = ET.SubElement(case, "failure", message=_text(result.failures[0][:300]))
            failure.text = _text(report)
    return ET.ElementTree(root)


def write_junit(results: Sequence[CaseResult], path: str | Path) -> None:
    """Write :func:`junit_xml` to ``path`` (UTF-8, with the XML declaration)."""
    tree = junit_xml(results)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
