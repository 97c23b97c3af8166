"""Shared fixtures; each family lives in its own module under tests/fixtures/."""

from __future__ import annotations

import os

# The SDKs must never pick up a developer's real cloud configuration during tests.
for _name in list(os.environ):
    if _name.startswith(("DATABRICKS_", "AZURE_", "OPENAI_", "REMEDIATOR_")):
        del os.environ[_name]
os.environ["DATABRICKS_CONFIG_FILE"] = os.devnull + ".missing"

# One line per fixture module: append yours on its own line.
pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.app",
    "tests.fixtures.sandbox",
    "tests.fixtures.playbooks",
    "tests.fixtures.engine",
    "tests.fixtures.dashboard",
    "tests.fixtures.service",
    "tests.fixtures.postgres",
]
