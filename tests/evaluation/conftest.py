"""Fixtures for the offline evaluation tools' tests."""

from __future__ import annotations

import pytest

from embeddings.backends import SyntheticEmbedder


@pytest.fixture(scope="session")
def embedder() -> SyntheticEmbedder:
    """A model-free embedder (a seeded random unit vector per text): enough to test caching."""
    return SyntheticEmbedder()
