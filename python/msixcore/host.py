"""Build a host and its passed-through devices in Python, then simulate.

>>> from msixcore import guest
>>> from msixcore.host import Device, Host
>>> host = Host(ncpus=4)
>>> nic = host.attach(Device(entries=8, rate=10_000, program=guest.probe(8, gap=1e-3)))
>>> result = host.run("noresize", seed=1, duration=0.02)
>>> result.fired == sum(result.outcomes.values())
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from msixcore._core import Simulation
from msixcore.guest import Step
from msixcore.simulation import RunResult, run_config

Semantics = Literal["edge", "edge_intx", "level", "pba"]


@dataclass
class Spoof:
    """Forged MSI writes by a malicious device (docs/spoof.md)."""

    victims: list[int]
    """Devices (indices in the host) whose messages it forges, in turn."""
    rate: float
    """Forged writes per second, over every kind."""
    kinds: list[str]
    """What it writes, in turn (``msixcore.engine_config.SPOOF_KINDS``)."""
    start: float = 0.0
    """When the first write may come, seconds."""

    def to_config(self) -> dict[str, Any]:
        """The engine's ``SpoofConfig``."""
        return {
            "victims": list(self.victims),
            "rate": float(self.rate),
            "kinds": list(self.kinds),
            "start_ns": round(self.start * 1e9),
        }


@dataclass
class Device:
    """A passed-through device function and its guest driver's program."""

    entries: int
    """MSI-X table size (1..2048)."""
    rate: float = 0.0
    """Poisson rate of each live vector, interrupts per second."""
    semantics: Semantics = "edge"
    """What an event does while MSI-X is disabled (lost, INTx, latched, PBA)."""
    program: list[Step] = field(default_factory=list)
    """The guest driver's steps (see :mod:`msixcore.guest`)."""
    repeat: bool = False
    """Run the program again after its last step."""
    vm: int = 0
    """The VM it belongs to (a guest kill takes down all its devices)."""
    start: float = 0.0
    """Time of the first step, seconds."""
    rates: dict[int, float] = field(default_factory=dict)
    """Per-entry rate overrides."""
    spoof: Spoof | None = None
    """Forged writes this device makes besides its own interrupts."""

    def to_config(self) -> dict[str, Any]:
        """The engine's ``DeviceConfig`` for this device."""
        config: dict[str, Any] = {
            "vm": self.vm,
            "entries": self.entries,
            "semantics": self.semantics,
            "rate": float(self.rate),
            "rates": [[k, float(r)] for k, r in sorted(self.rates.items())],
            "program": self.program,
            "repeat": self.repeat,
            "start_ns": round(self.start * 1e9),
        }
        if self.spoof is not None:
            config["spoof"] = self.spoof.to_config()
        return config


@dataclass
class Host:
    """An x86 host: CPUs, reservation mode, IOMMUs, and the devices attached."""

    ncpus: int = 8
    reservation_mode: bool = True
    iommu: Literal["intel", "amd"] = "intel"
    iommus: int = 1
    irte_entries: int = 65_536
    amd_table_size: int = 512
    posted_msi: bool = False
    devices: list[Device] = field(default_factory=list)

    def attach(self, device: Device) -> int:
        """Attach a device; returns its index (its requester id is derived from it)."""
        self.devices.append(device)
        return len(self.devices) - 1

    def config(
        self,
        policy: str,
        *,
        seed: int = 0,
        duration: float | None = None,
        resizes: int | None = None,
        mode: Literal["event", "aggregated"] = "event",
        **policy_options: Any,
    ) -> dict[str, Any]:
        """The engine config: this host and its devices under ``policy`` (a built-in
        name), ending after ``duration`` seconds and/or ``resizes`` resize requests.
        ``policy_options`` are the engine's ``PolicyConfig`` fields (``on_failure``,
        ``grant``, ``grant_n``, ``upfront_count``, ``ims_store``)."""
        host = asdict(self)
        del host["devices"]
        stop: dict[str, int] = {}
        if duration is not None:
            stop["max_time_ns"] = round(duration * 1e9)
        if resizes is not None:
            stop["max_resizes"] = resizes
        return {
            "seed": seed,
            "mode": mode,
            "host": host,
            "policy": {"kind": policy, **policy_options},
            "devices": [d.to_config() for d in self.devices],
            "stop": stop,
        }

    def run(self, policy: str, **kwargs: Any) -> RunResult:
        """Run to the stop condition with a built-in policy (see :meth:`config`)."""
        return run_config(self.config(policy, **kwargs))

    def simulation(self, policy: str | object, **kwargs: Any) -> Simulation:
        """A :class:`Simulation` to step and drain; ``policy`` is a built-in name or
        a Python policy object (:mod:`msixcore.policies`)."""
        if isinstance(policy, str):
            return Simulation(json.dumps(self.config(policy, **kwargs)))
        return Simulation(json.dumps(self.config("noresize", **kwargs)), policy)
