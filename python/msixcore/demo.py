"""``msixcore demo``: the core models at work on a small host, in a few lines each."""

from __future__ import annotations

import json

from msixcore._core import (
    InterruptRemapper,
    Irte,
    VectorDomain,
    VectorTable,
    __version__,
    run_simulation,
)


def reservation_mode(reserve: bool, vectors: int = 64, requested: int = 4) -> tuple[int, int, int]:
    """Allocate ``vectors`` MSI-X vectors on a 4-CPU host, request only ``requested``.

    Returns (CPU vectors held, global reservations, IRTEs held): reservation
    mode holds CPU vectors back until request_irq, but every allocated vector
    holds an IRTE either way.
    """
    domain = VectorDomain(4, reservation_mode=reserve)
    remapper = InterruptRemapper()
    irqs = []
    for _ in range(vectors):
        irqs.append(domain.alloc_irq())
        remapper.alloc(1)
    for irq in irqs[:requested]:
        domain.activate(irq)
    return domain.vectors_in_use, domain.reserved, remapper.in_use


def _storm(policy: str) -> dict[str, int]:
    """A small resize storm (2 devices x 16 entries, 50k interrupts/s per vector)."""
    program: list[dict[str, object]] = [
        {"action": {"op": "negotiate", "minvec": 1, "maxvec": 16}},
        {"action": {"op": "enable"}},
    ]
    for k in range(16):
        program.append({"delay_ns": 1_000_000, "action": {"op": "unmask", "entry": k}})
    program.append({"delay_ns": 1_000_000, "action": {"op": "disable"}})
    device = {"entries": 16, "rate": 50_000.0, "program": program, "repeat": True}
    cfg = {
        "seed": 1,
        "policy": {"kind": policy},
        "devices": [device, device],
        "stop": {"max_resizes": 3200, "max_time_ns": 10**12},
    }
    result = json.loads(run_simulation(json.dumps(cfg)))
    outcomes: dict[str, int] = result["books"]["outcomes"]
    return {"fired": result["books"]["fired"], **outcomes}


def run_demo() -> str:
    """Run the demo and return its report as text."""
    lines = [f"msixcore {__version__}: the core models at work", ""]

    table = VectorTable(8)
    table.program(3, 0xFEE0_0000, 0x41)
    table.set_control(0x8000)  # MSI-X Enable
    first = table.fire(3)  # entry still masked (reset state): latched in the PBA
    table.unmask(3)  # unmask releases the pending message
    lines.append("VectorTable: fire on a masked entry -> " + first)
    lines.append(f"  unmask sends it: {[(v, hex(a), hex(d)) for v, a, d in table.take_messages()]}")

    for reserve in (True, False):
        held, reserved, irtes = reservation_mode(reserve)
        lines.append(
            f"64 vectors allocated, 4 requested, reservation mode {'on ' if reserve else 'off'}: "
            f"{held} CPU vectors held, {reserved} reservations, {irtes} IRTEs"
        )

    remapper = InterruptRemapper()
    index = remapper.alloc(1)
    remapper.set(index, Irte(present=True, vector=0x41, dest_id=2, sid=0x0100, svt=1))
    ok = remapper.remap(0x0100, 0xFEE0_0010 | (index << 5), 0)
    spoof = remapper.remap(0x0200, 0xFEE0_0010 | (index << 5), 0)
    lines.append(
        f"IOMMU: owner 01:00.0 -> vector {ok.vector:#x} on CPU {ok.dest_id}; "
        f"02:00.0 with the same handle -> blocked ({spoof.fault})"
    )

    lines.append("")
    lines.append("Resize storm, 3200 unmasks of new entries (2 devices x 16 entries, 50k/s):")
    for policy in ("noresize", "dynamic", "hypercall"):
        b = _storm(policy)
        lines.append(
            f"  {policy:9s} fired {b['fired']:>9,}  delivered {b['delivered']:>9,}  "
            f"lost {b['lost']:>6,}"
        )
    return "\n".join(lines)
