"""Shared test set-up.

``engine_spy`` records every config the CLI hands to the engine while the
real engine runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from msixcore import _core


@pytest.fixture
def engine_spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Wrap ``run_simulation``; yields the list of configs it ran."""
    calls: list[dict[str, Any]] = []
    real = _core.run_simulation

    def run_simulation(text: str, policy: object | None = None) -> str:
        calls.append(json.loads(text))
        return real(text, policy)

    monkeypatch.setattr(_core, "run_simulation", run_simulation)
    yield calls


SMALL_NVME: dict[str, Any] = {
    "vcpus": 4,
    "online": 3,
    "hotplug_gap": 0.01,
    "io_timeout": 0.2,
    "hold": 0.3,
    "duration": 0.4,
}
"""The nvme scenario shrunk for tests: 4 queues, a 0.2 s I/O timeout, 0.4 s of
simulated time (the defaults, 30 s and 42 s, behave the same way)."""
