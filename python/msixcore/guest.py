"""Guest driver programs: the timed MSI-X actions a guest driver performs.

Each function returns one program step (the engine's ``Step``): the action and
its delay after the previous step *returned* (a trapped unmask returns only
when the host's resize is done). Times are in seconds.
"""

from __future__ import annotations

from typing import Any

Step = dict[str, Any]
"""One program step, as the engine's config takes it."""


def _step(after: float, action: dict[str, Any]) -> Step:
    if not after >= 0.0:
        raise ValueError(f"after: must be a delay ≥ 0 s, got {after!r}")
    return {"delay_ns": round(after * 1e9), "action": action}


def negotiate(minvec: int, maxvec: int, after: float = 0.0) -> Step:
    """``pci_enable_msix_range(minvec, maxvec)``: a hypercall host negotiates here."""
    return _step(after, {"op": "negotiate", "minvec": minvec, "maxvec": maxvec})


def enable(after: float = 0.0) -> Step:
    """Linux's MSI-X enable: Enable|Function Mask, mask every entry, clear Function Mask."""
    return _step(after, {"op": "enable"})


def unmask(entry: int, after: float = 0.0) -> Step:
    """First unmask of ``entry``: ``request_irq``, ``enable_irq`` or a CPU coming online."""
    return _step(after, {"op": "unmask", "entry": entry})


def mask(entry: int, after: float = 0.0) -> Step:
    """The guest masks ``entry`` (``disable_irq``) while the device keeps working: its
    source goes on firing and QEMU holds one interrupt in its emulated PBA, sent at the
    next ``unmask``."""
    return _step(after, {"op": "mask", "entry": entry})


def free(entry: int, after: float = 0.0) -> Step:
    """``free_irq`` on a queue the driver tears down (CPU offline, fewer channels): the
    entry is masked and its source stops."""
    return _step(after, {"op": "free", "entry": entry})


def disable(after: float = 0.0) -> Step:
    """Disable MSI-X (driver remove, reset, ``pci_free_irq_vectors``)."""
    return _step(after, {"op": "disable"})


def reset(after: float = 0.0) -> Step:
    """Function Level Reset with the driver bound: table and PBA back to reset state
    (events latched in the PBA are lost), MSI-X disabled."""
    return _step(after, {"op": "reset"})


def wait(after: float) -> Step:
    """Do nothing for ``after`` seconds."""
    return _step(after, {"op": "wait"})


def probe(entries: int, used: int | None = None, gap: float = 0.0) -> list[Step]:
    """A typical driver probe: negotiate, enable, then unmask entries ``0..used-1``
    in ascending order, ``gap`` seconds apart."""
    n = entries if used is None else used
    if not 0 <= n <= entries:
        raise ValueError(f"used: must be 0..{entries}, got {n}")
    steps = [negotiate(1, entries), enable()]
    steps += [unmask(k, after=0.0 if k == 0 else gap) for k in range(n)]
    return steps
