"""Fixtures of the zoo tests."""

from __future__ import annotations

import pytest

from simulator import zoo


@pytest.fixture(autouse=True)
def _forget_user_models():
    """Each test starts and ends with the user models it found (names do not leak)."""
    before = set(zoo.registered_models())
    yield
    for name in set(zoo.registered_models()) - before:
        zoo.unregister_model(name)
