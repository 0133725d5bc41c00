"""The resize storm the benchmarks run: the CLI's storm (docs/storm.md#the-resize-storm),
built by ``msixcore.scenarios.SCENARIOS["storm"]`` under ``noresize``, with its
closed-form loss from ``msixcore.storm_closed_form_lost``.

A storm is given as the scenario's parameters in user units (``{"devices": 2,
"table": 8}``; seconds and per second, docs/storm.md#parameters); ``DEFAULT``
(no override) is the CLI's storm: 16 devices × 64 entries, 32 host CPUs, 1 µs
handler. Shared by the pytest-benchmark benchmarks, the SimPy baseline and the
smoke tests so that both simulators run exactly the same storm.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from msixcore import storm_closed_form_lost
from msixcore.parameters import to_ns
from msixcore.scenarios import SCENARIOS
from msixcore.versions import behaviours

Params = Mapping[str, object]
"""Storm scenario parameters (user units); missing ones are at the CLI's defaults."""

DEFAULT: Params = {}
"""The CLI's storm at its defaults (``msixcore run storm``)."""

SCENARIO = SCENARIOS["storm"]
"""The one definition: ``msixcore.scenarios.STORM`` (built by the core's ``storm.rs``)."""


@dataclass(frozen=True)
class Storm:
    """A storm's resolved parameters, in ns and per second (read by the SimPy model)."""

    devices: int
    table: int
    init: int
    gap_ns: int
    rate: float
    w0_ns: int
    w_free_ns: int
    w_alloc_ns: int
    early_enable: bool
    first_entry: int
    """The first entry whose unmask is a resize (1 before QEMU 8.2)."""
    semantics: str

    @property
    def cycle_resizes(self) -> int:
        """Resizes in one cycle: every device unmasks its whole table."""
        return self.devices * self.table

    def window_ns(self, k: int) -> int:
        """Length of the device-wide window W2 of the resize that unmasks entry ``k``:
        ``w0 + w_free·freed`` (+ ``w_alloc·(k+1)`` without early enable); the
        first resize frees the vector QEMU 8.2's enable allocated."""
        freed = max(k, 1)
        alloc = 0 if self.early_enable else self.w_alloc_ns * (k + 1)
        return self.w0_ns + self.w_free_ns * freed + alloc

    def after_window_ns(self, k: int) -> int:
        """Host time of that resize after W2 closed: the function-masked
        allocation under early enable."""
        return self.w_alloc_ns * (k + 1) if self.early_enable else 0


def resolve(params: Params | None = None) -> Storm:
    """``params`` as the CLI resolves them (defaults, parsing, checks), in ns."""
    p = SCENARIO.resolve(params)
    override = None if p["early_enable"] == "auto" else p["early_enable"] == "true"
    has = behaviours(str(p["kernel"]), str(p["qemu"]), override)
    return Storm(
        devices=int(p["devices"]),
        table=int(p["table"]),
        init=int(p["init"]),
        gap_ns=to_ns(float(p["gap"])),
        rate=float(p["rate"]),
        w0_ns=to_ns(float(p["w0"])),
        w_free_ns=to_ns(float(p["w_free"])),
        w_alloc_ns=to_ns(float(p["w_alloc"])),
        early_enable=bool(has["early_enable"]),
        first_entry=int(has["first_resizing_entry"]),
        semantics=str(p["semantics"]),
    )


def cycle_resizes(params: Params | None = None) -> int:
    """Resizes in one cycle of the storm ``params``."""
    return resolve(params).cycle_resizes


def closed_form_lost(params: Params | None, resizes: int) -> float:
    """Expected lost fires of a ``noresize`` run to ``resizes`` requests
    (``msixcore.storm_closed_form_lost``: ``rate · Σ k·W2(k)``, docs/storm.md)."""
    return storm_closed_form_lost(params, resizes)


def msixcore_config(
    params: Params | None, resizes: int, seed: int = 1, mode: str = "event"
) -> dict[str, Any]:
    """The storm under ``noresize`` to ``resizes`` requests, as the CLI builds it
    (``SCENARIOS["storm"].build``, with its time bound), in ``mode``."""
    cfg = SCENARIO.build(params, "noresize", seed, resizes)
    cfg["mode"] = mode
    return cfg


def msixcore_config_json(
    params: Params | None, resizes: int, seed: int = 1, mode: str = "event"
) -> str:
    """:func:`msixcore_config` as the JSON text ``run_simulation`` takes."""
    return json.dumps(msixcore_config(params, resizes, seed, mode))
