"""Junk against every receiver: whatever a client sends, the answer is never a 5xx."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from engine.config import RECEIVERS, Secret, Settings
from engine.store.db import Database
from receivers.app import create_app
from scripts.fuzz_parsers import json_parent, json_paths
from tests.fixtures.app import ENDPOINT_OF_SAMPLE, RECEIVER_KEY
from tests.fixtures.common import load_sample

ACCEPTABLE = {202, 400, 413, 415, 422}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Any]]:
    """One app for all examples (building one per example would dominate the run)."""
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    db = Database(path)
    app_settings = Settings(db=str(path), api_keys=(Secret(RECEIVER_KEY),), body_limit=16 * 1024)
    with TestClient(create_app(app_settings, db)) as client:
        yield client
    db.close()


def _post(client: TestClient[Any], endpoint: str, content: bytes) -> int:
    response = client.post(
        f"/{endpoint}", content=content,
        headers={"x-api-key": RECEIVER_KEY, "content-type": "application/json"},
    )
    assert response.status_code in ACCEPTABLE, (response.status_code, response.text, content[:200])
    if response.status_code != 202:
        assert response.json()["error"] in {
            "malformed_payload", "unknown_schema", "payload_too_large", "unsupported_media_type"
        }
    return response.status_code


@pytest.mark.parametrize("endpoint", RECEIVERS)
@FUZZ
@given(content=st.binary(max_size=300))
def test_random_bytes(fuzz_client: TestClient[Any], endpoint: str, content: bytes) -> None:
    _post(fuzz_client, endpoint, content)


@pytest.mark.parametrize("endpoint", RECEIVERS)
@FUZZ
@given(value=json_values)
def test_random_json(fuzz_client: TestClient[Any], endpoint: str, value: Any) -> None:
    _post(fuzz_client, endpoint, json.dumps(value).encode())


def _mutate(sample: dict[str, Any], path: tuple, replacement: Any, delete: bool) -> Any:
    if not path:
        return replacement
    doc = copy.deepcopy(sample)
    parent = json_parent(doc, path)
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return doc


@FUZZ
@given(data=st.data())
def test_mutated_samples(fuzz_client: TestClient[Any], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(ENDPOINT_OF_SAMPLE)))
    sample = load_sample(name)
    path = data.draw(st.sampled_from(json_paths(sample)))
    doc = _mutate(sample, path, data.draw(json_values), data.draw(st.booleans()))
    _post(fuzz_client, ENDPOINT_OF_SAMPLE[name], json.dumps(doc).encode())
