"""Matcher semantics: every operator and combinator, order, continue, explanations, index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rules.match import Matcher
from tests.engine.rules.helpers import event, playbook_set

E = event(
    error_code="UserErrorSourceBlobNotExist",
    error_codes=("2200", "UserErrorSourceBlobNotExist"),
    message="The required Blob is missing. ContainerName: https://acct/raw, path: a/b.csv.",
    failure_type="UserError",
    severity=2,
    resource="pl_sales",
    attributes={"factory": "adf-sales-prod", "dimensions": {"Name": "pl_sales"}, "count": 3,
                "tags": ["gold", "daily"], "empty": "",
                # as enrichment lists a cluster's failed libraries
                "failed_libraries": [
                    {"library": {"pypi": {"package": "delta-sharing==1.0.5"}},
                     "messages": ["ReadTimeoutError: Read timed out.", "retrying"]},
                    {"library": {"jar": "dbfs:/libs/x.jar"}, "messages": ["Connection reset"]},
                    {"library": {"whl": "dbfs:/libs/y.whl"}},
                ]},
)

CASES: list[tuple[dict[str, Any], bool]] = [
    ({"source": "adf"}, True),
    ({"source": "databricks"}, False),
    ({"error_code": "UserErrorSourceBlobNotExist"}, True),
    ({"error_code": "usererrorsourceblobnotexist"}, False),  # exact, case-sensitive
    ({"error_code": ["X", "UserErrorSourceBlobNotExist"]}, True),
    ({"error_code": ["X", "Y"]}, False),
    ({"error_codes": "2200"}, True),  # list field: any element
    ({"error_codes": ["2200", "Z"]}, True),
    ({"error_code": {"equals": "UserErrorSourceBlobNotExist"}}, True),
    ({"message": {"regex": r"ContainerName: (?P<c>\S+),"}}, True),
    ({"message": {"regex": "^ContainerName"}}, False),
    ({"message": {"regex": "(?i)required blob"}}, True),
    ({"message": {"contains": "Blob is missing"}}, True),
    ({"message": {"contains": "blob is missing"}}, False),
    ({"attributes.tags": {"contains": "gold"}}, True),
    ({"attributes.factory": {"glob": "adf-*-prod"}}, True),
    ({"attributes.factory": {"glob": "adf-*"}}, True),
    ({"attributes.factory": {"glob": "*-dev"}}, False),
    ({"attributes.dimensions.Name": "pl_sales"}, True),
    ({"attributes.dimensions.Missing": {"exists": False}}, True),
    ({"attributes.dimensions.Name.deeper": {"exists": True}}, False),
    ({"attributes.empty": {"exists": True}}, False),
    ({"run_id": {"exists": False}}, True),
    ({"error_code": {"exists": True}}, True),
    ({"severity": {"lte": 2}}, True),
    ({"severity": {"lt": 2}}, False),
    ({"severity": {"gte": 1, "lte": 3}}, True),
    ({"severity": {"gt": 2}}, False),
    ({"severity": 2}, True),
    ({"attributes.count": {"gt": 2.5}}, True),
    ({"attributes.factory": {"gt": 1}}, False),  # strings are not numbers
    ({"error_code": {"not": ["A", "B"]}}, True),
    ({"error_code": {"not": {"regex": "^UserError"}}}, False),
    ({"all": [{"source": "adf"}, {"severity": 2}]}, True),
    ({"all": [{"source": "adf"}, {"severity": 3}]}, False),
    ({"any": [{"source": "synapse"}, {"failure_type": "UserError"}]}, True),
    ({"any": [{"source": "synapse"}, {"failure_type": "SystemError"}]}, False),
    ({"not": {"error_code": {"exists": True}}}, False),
    ({"not": {"source": "synapse"}}, True),
    ({}, True),
    # a dotted path over a list of objects: the condition holds for any element
    ({"attributes.failed_libraries.messages": {"regex": "Connection reset|timed out"}}, True),
    ({"attributes.failed_libraries.messages": "Connection reset"}, True),
    ({"attributes.failed_libraries.messages": {"regex": "^No matching distribution"}}, False),
    ({"attributes.failed_libraries.messages": {"contains": "retrying"}}, True),
    ({"attributes.failed_libraries.library.pypi.package": {"glob": "delta-sharing==*"}}, True),
    ({"attributes.failed_libraries.library.jar": {"regex": "x\\.jar$"}}, True),
    ({"attributes.failed_libraries.library.egg": {"exists": False}}, True),
    ({"attributes.failed_libraries.library.whl": {"exists": True}}, True),
    ({"attributes.failed_libraries.messages": {"not": {"regex": "Connection"}}}, False),
    ({"attributes.tags.deeper": {"exists": True}}, False),  # strings have no keys
]


@pytest.mark.parametrize(("match", "expected"), CASES)
def test_operator(tmp_path: Path, match: dict[str, Any], expected: bool) -> None:
    playbooks = playbook_set(tmp_path, {"match": match})
    assert [m.rule.id for m in playbooks.match(E)] == (["r0"] if expected else [])
    assert playbooks.explain(E).rule_ids == (["r0"] if expected else [])


def test_regex_groups_come_with_the_match(tmp_path: Path) -> None:
    playbooks = playbook_set(tmp_path, {
        "match": {
            "message": {"regex": r"ContainerName: (?P<container>\S+), path: (?P<path>\S+)\."},
            "any": [{"resource": {"regex": "(?P<other>nomatch)"}},
                    {"resource": {"regex": "pl_(?P<area>\\w+)"}}],
        }
    })
    [m] = playbooks.match(E)
    assert m.groups == {"container": "https://acct/raw", "path": "a/b.csv", "area": "sales"}


def test_first_match_wins_unless_continue(tmp_path: Path) -> None:
    playbooks = playbook_set(
        tmp_path,
        {"match": {"source": "adf"}, "continue": True},
        {"match": {"error_code": "Other"}},
        {"match": {"severity": 2}},
        {"match": {"failure_type": "UserError"}},
    )
    assert [m.rule.id for m in playbooks.match(E)] == ["r0", "r2"]
    explanation = playbooks.explain(E)
    assert [(t.rule_id, t.matched, t.reason) for t in explanation.tried] == [
        ("r0", True, None),
        ("r1", False, "error_code: expected 'Other', got 'UserErrorSourceBlobNotExist'"),
        ("r2", True, None),
        ("r3", False, "not tried: rule `r2` matched first (without `continue`)"),
    ]


def test_explanations_name_the_first_failed_condition(tmp_path: Path) -> None:
    playbooks = playbook_set(
        tmp_path,
        {"match": {"source": "adf", "error_code": ["A", "B"], "severity": 9}},
        {"match": {"message": {"regex": "^x"}}},
        {"match": {"attributes.factory": {"glob": "*-dev"}}},
        {"match": {"attributes.nope": "x"}},
        {"match": {"severity": {"lt": 1}}},
        {"match": {"any": [{"source": "synapse"}, {"severity": {"gt": 3}}]}},
        {"match": {"not": {"source": "adf"}}},
        {"match": {"run_id": {"exists": True}}},
        {"match": {"error_code": {"not": {"regex": "Blob"}}}},
        {"match": {"attributes.failed_libraries.messages": {"regex": "No matching"}}},
        {"enabled": False, "match": {}},
    )
    reasons = [t.reason for t in playbooks.explain(E).tried]
    assert reasons == [
        "error_code: expected any of ['A', 'B'], got 'UserErrorSourceBlobNotExist'",
        "message: expected to match regex '^x', got 'The required Blob is missing. ContainerName:"
        " https://acct/raw, path: a/b.csv.'",
        "attributes.factory: expected to match glob '*-dev', got 'adf-sales-prod'",
        "attributes.nope: expected 'x', got nothing",
        "severity: expected < 1, got 2",
        "any: none matched (source: expected 'synapse', got 'adf'; severity: expected > 3,"
        " got 2)",
        "not: the event matches {'source': 'adf'}",
        "run_id: expected to exist, got ''",
        "error_code: expected not (to match regex 'Blob'), got 'UserErrorSourceBlobNotExist'",
        "attributes.failed_libraries.messages: expected to match regex 'No matching', got"
        " ['ReadTimeoutError: Read timed out.', 'retrying', 'Connection reset']",
        "disabled",
    ]
    assert playbooks.match(E) == []


def test_index_skips_rules_that_cannot_match(tmp_path: Path) -> None:
    playbooks = playbook_set(
        tmp_path,
        {"match": {"source": "databricks", "error_code": "X"}},
        {"match": {"source": "adf", "error_code": ["Y", "UserErrorSourceBlobNotExist"]}},
        {"match": {"source": ["adf", "synapse"], "message": {"regex": "Blob"}}},
        {"match": {"error_code": "Z", "resource": "pl_sales"}},
        {"match": {"message": {"contains": "x"}}},
        {"match": {"source": "adf", "kind": "cluster"}},
        {"match": {"resource": ["pl_sales", "pl_hr"], "failure_type": "UserError"}},
        {"match": {"kind": ["activity_run", "job_run"], "status": "firing"}},
    )
    # every key of a rule must hold: r0 needs another source and code, r3 another code
    # (though E has its resource), r5 another kind (though E has its source)
    assert [r.id for r in playbooks.matcher.candidates(E)] == ["r1", "r2", "r4", "r6", "r7"]
    assert [m.rule.id for m in playbooks.match(E)] == ["r1"]
    # an event built without validation, its source outside the set: enumerated-only rules
    # are all candidates, and their tests decide
    odd = event(source="elsewhere", kind="activity_run", message="x")
    assert [r.id for r in playbooks.matcher.candidates(odd)] == ["r2", "r4", "r5", "r7"]
    assert [m.rule.id for m in playbooks.match(odd)] == ["r4"]


RULE_SPECS = st.sampled_from([
    {"source": "adf"},
    {"source": ["adf", "synapse"]},
    {"source": "databricks", "kind": "cluster"},
    {"error_code": "A"},
    {"error_code": ["A", "B"], "source": "adf"},
    {"resource": "r1"},
    {"resource": {"regex": "^r"}},
    {"message": {"contains": "oops"}},
    {"failure_type": "UserError", "status": "firing"},
    {"any": [{"error_code": "B"}, {"resource": "r2"}]},
    {"not": {"source": "adf"}},
    {"error_code": {"exists": False}},
    {"source": "databricks", "attributes.libs.m": {"regex": "^x"}},
    {"resource": ["r1", "r2"], "error_code": ["A", "C"], "source": "adf"},
    {"error_code": "B", "failure_type": "UserError"},
    {"kind": "cluster", "status": ["firing", "resolved"]},
    {"failure_type": ["", "UserError"]},
    {"attributes.libs.m": {"exists": False}},
])
EVENTS = st.builds(
    event,
    source=st.sampled_from(["adf", "synapse", "databricks", "functions"]),
    kind=st.sampled_from(["activity_run", "cluster"]),
    status=st.sampled_from(["firing", "resolved"]),
    error_code=st.sampled_from(["", "A", "B", "C"]),
    resource=st.sampled_from(["", "r1", "r2", "x"]),
    failure_type=st.sampled_from(["", "UserError"]),
    message=st.sampled_from(["", "oops", "fine"]),
    attributes=st.sampled_from([{}, {"libs": []}, {"libs": [{"m": ["y", "x1"]}, {"m": "z"}]}]),
)


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(st.tuples(RULE_SPECS, st.booleans()), min_size=1, max_size=8),
    events=st.lists(EVENTS, min_size=1, max_size=5),
)
def test_indexed_matching_equals_trying_every_rule(
    specs: list[tuple[dict[str, Any], bool]], events: list[Any]
) -> None:
    class Rule:
        def __init__(self, i: int, spec: dict[str, Any], cont: bool) -> None:
            from engine.rules.match import compile_condition

            self.id, self.where, self.enabled, self.continue_ = f"r{i}", "x", True, cont
            self.condition = compile_condition(spec, lambda *a: pytest.fail(str(a)))

    matcher = Matcher([Rule(i, spec, cont) for i, (spec, cont) in enumerate(specs)])
    for e in events:
        fast = [m.rule.id for m in matcher.match(e)]
        slow = matcher.explain(e).rule_ids
        assert fast == slow
