from __future__ import annotations

from pathlib import Path

import pytest

from webhook.state.fixtures import ObjectStore
from webhook.state.index import StateIndex

FIXTURES = Path(__file__).parent / "fixtures"
CLUSTER = FIXTURES / "cluster.yaml"


@pytest.fixture
def store() -> ObjectStore:
    """A fresh copy of the fixture cluster for each test."""
    loaded = ObjectStore()
    loaded.load([str(CLUSTER)])
    return loaded


@pytest.fixture
def state(store: ObjectStore) -> StateIndex:
    return store.index
