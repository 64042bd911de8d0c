"""An autouse fixture for tests of the real anthropic/openai clients against the local fake server:
fake keys in the environment and no base-URL override from the developer's shell.

A test module imports it by name (``from tests.helpers.api_keys import keys``)."""

from __future__ import annotations

import pytest

from tests.test_judging_fixtures import SECRET


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
