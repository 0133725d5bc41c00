"""Memory target of issue 4: a host with 512 CPUs, 8 IOMMUs x 65,536 IRTEs and
10,000 devices of 2,048 MSI-X entries must fit in ≤ 1 GiB resident.

Builds that host through the public API (``msixcore._core.Simulation``; each
device's guest program is one Enable step, run by a 1 µs ``step_until`` so
every device's host-side state exists), reads VmRSS and VmHWM from
``/proc/self/status``, prints them and exits 1 when either is over the limit.

    python benches/memory.py               # the target host
    python benches/memory.py --breakdown   # plus where the memory goes

``--breakdown`` rebuilds pieces in fresh subprocesses and prints the resident
growth of each (the engine's private per-device vectors are the difference
between a full device and a bare ``VectorTable``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from msixcore import VectorTable
from msixcore._core import Simulation

MIB = 1024 * 1024
LIMIT = 1024 * MIB


def status_kib() -> dict[str, int]:
    """VmRSS and VmHWM of this process, bytes."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def host_config(cpus: int, iommus: int, irtes: int, devices: int, entries: int) -> dict[str, Any]:
    """A config holding the host and its devices; nothing fires (rate 0)."""
    device = {"entries": entries, "rate": 0.0, "program": [{"action": {"op": "enable"}}]}
    return {
        "host": {"ncpus": cpus, "iommus": iommus, "irte_entries": irtes},
        "devices": [device] * devices,
        "stop": {"max_time_ns": 10**12},
    }


def build(cpus: int, iommus: int, irtes: int, devices: int, entries: int) -> Simulation:
    """Build the host and run every device's Enable step (1 µs of simulated time)."""
    sim = Simulation(json.dumps(host_config(cpus, iommus, irtes, devices, entries)))
    sim.step_until(1_000)
    return sim


PARTS: dict[str, str] = {
    "baseline": "1 CPU, 1 IOMMU of 1 IRTE, 1 device of 1 entry",
    "delivery_queues": "512 CPUs (512 per-CPU delivery queues of 4,096)",
    "iommus": "8 IOMMUs x 65,536 IRTEs",
    "devices": "10,000 devices x 2,048 entries in the engine",
    "vector_tables": "10,000 bare VectorTable(2048)",
}


def part(name: str) -> int:
    """Resident bytes after building one piece (in this fresh process)."""
    keep: list[Any] = []
    if name == "baseline":
        keep.append(build(1, 1, 1, 1, 1))
    elif name == "delivery_queues":
        keep.append(build(512, 1, 1, 1, 1))
    elif name == "iommus":
        keep.append(build(1, 8, 65_536, 1, 1))
    elif name == "devices":
        keep.append(build(1, 1, 1, 10_000, 2048))
    elif name == "vector_tables":
        keep.extend(VectorTable(2048) for _ in range(10_000))
    else:
        raise SystemExit(f"unknown part {name}")
    return status_kib()["VmRSS"]


def breakdown() -> None:
    """Resident growth of each piece over an empty interpreter with msixcore imported."""
    rss: dict[str, int] = {}
    for name in ("empty", *PARTS):
        out = subprocess.run(
            [sys.executable, __file__, "--part", name], check=True, capture_output=True, text=True
        )
        rss[name] = int(out.stdout.strip())
    base = rss["baseline"]
    print("where the memory goes (resident growth over a 1-CPU, 1-device build):")
    for name, what in PARTS.items():
        if name == "baseline":
            print(f"  {'interpreter + msixcore + baseline build':52s} {rss[name] / MIB:8.1f} MiB")
            continue
        grow = rss[name] - (rss["empty"] if name == "vector_tables" else base)
        print(f"  {what:52s} {grow / MIB:8.1f} MiB")
    engine_private = (rss["devices"] - base) - (rss["vector_tables"] - rss["empty"])
    print(
        f"  {'of which engine per-device vectors (devices - tables)':52s} "
        f"{engine_private / MIB:8.1f} MiB = {engine_private / 10_000 / 2048:.1f} B per entry"
    )


def main() -> int:
    """Build the target host (or a smaller one), report VmRSS / VmHWM, check the limit."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", type=int, default=512)
    ap.add_argument("--iommus", type=int, default=8)
    ap.add_argument("--irtes", type=int, default=65_536)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--entries", type=int, default=2048)
    ap.add_argument("--breakdown", action="store_true", help="also show where memory goes")
    ap.add_argument("--json", help="also write {VmRSS, VmHWM} (bytes) to this file")
    ap.add_argument("--part", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        print(part(args.part) if args.part != "empty" else status_kib()["VmRSS"])
        return 0
    sim = build(args.cpus, args.iommus, args.irtes, args.devices, args.entries)
    st = status_kib()
    print(
        f"host: {args.cpus} CPUs, {args.iommus} IOMMUs x {args.irtes} IRTEs, "
        f"{args.devices} devices x {args.entries} entries (simulated {sim.now_ns} ns)"
    )
    print(f"VmRSS {st['VmRSS'] / MIB:.1f} MiB, VmHWM {st['VmHWM'] / MIB:.1f} MiB (limit 1024 MiB)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(st, f)
    if args.breakdown:
        breakdown()
    over = max(st.values()) > LIMIT
    print("over the limit" if over else "within the limit")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
