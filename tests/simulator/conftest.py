"""The simulator's tests run it on the shared fake clock: no test waits for a task to render."""

from __future__ import annotations

import pytest

from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)
