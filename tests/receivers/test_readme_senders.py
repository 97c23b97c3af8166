"""README's "Pointing the senders at it" recommends the alert rules `remediator setup azure`
writes: the ADF log search alert split that names the factory (issue 15, 4)."""

from __future__ import annotations

import re

from cli.setup_azure import AzureTargets, build
from tests.fixtures.common import ROOT


def _section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Pointing the senders at it")
    return readme[start:readme.index("\n## ", start + 1)]


def _split_after(words: str, text: str) -> tuple[str, ...]:
    """The backquoted names of the `split by ...` list that follows ``words``."""
    tail = re.sub(r"\s+", " ", text[text.index(words):])
    listed = tail[tail.index("split by"):].split("(", 1)[0].split(". ", 1)[0]
    return tuple(re.findall(r"`([^`]+)`", listed))


def test_the_readme_recommends_the_split_setup_azure_writes() -> None:
    rules = build(AzureTargets(subscription="s", resource_group="g",
                               url="https://remediator.example.com", factories=("adf",),
                               synapse=("syn",), log_workspace="law"))
    adf_log = next(log for log in rules.log_alerts if "ADFActivityRun" in log.query)
    synapse_log = next(log for log in rules.log_alerts if "SynapseIntegration" in log.query)
    section = _section()
    assert _split_after("a log search alert on `ADFActivityRun`", section) == adf_log.dimensions
    assert _split_after("`SynapseIntegrationPipelineRuns`", section) == synapse_log.dimensions
    assert adf_log.dimensions[0] == "_ResourceId"
