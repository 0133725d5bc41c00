"""Where the storm's time goes: instruction counts by stage, from callgrind.

Runs ``rust/core/examples/storm.rs`` (the CLI's storm, docs/storm.md#the-resize-storm,
built from ``msixcore_core::storm::Storm``, under ``noresize``)
under ``valgrind --tool=callgrind`` in per-event and in aggregated mode, and
prints the inclusive instruction count of each stage of the engine divided by
what the stage is paid per: interrupt events (fires) or resizes. Callgrind
counts instructions, not seconds, so the table is the same on a loaded
machine; instructions per event times a timed run's events/s gives the
instructions retired per second.

    python benches/profile_storm.py                 # both modes, default sizes
    python benches/profile_storm.py --event-resizes 2048 --aggregated-resizes 8192 --json out.json

Needs valgrind (callgrind_annotate) and cargo; builds the example in release
mode with debug info (``CARGO_PROFILE_RELEASE_DEBUG=true``) so symbols resolve.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TypedDict

ROOT = Path(__file__).resolve().parent.parent

# (label, symbol substring, per): the stages, outermost first; each count is inclusive.
# The per-vector host steps (alloc, activate, deactivate) are inlined into the
# enable and disable loops, and the CPU arrival into the fire path (measured:
# see benches/README.md, issue 14), so they have no entry of their own.
STAGES: list[tuple[str, str, str]] = [
    ("fire path: draw, pick, learnt route, CPU handler", "Engine>::fire_until", "event"),
    ("  no learnt route: the device's table and the IOMMU", "Engine>::fire [", "event"),
    ("    route: IOMMU remap on a route-cache miss", "Host>::route_miss", "event"),
    ("    stale-queue episodes opened and closed", "Engine>::track_stall_slow", "event"),
    ("aggregated booking (Poisson counts per class)", "Engine>::book_device", "resize"),
    ("guest step -> policy -> host ops", "policy::step::step", "resize"),
    ("  enable_vectors (alloc + request_irq each vector)", "Host>::enable_vectors", "resize"),
    ("  disable_index (free_irq + free every vector)", "Host>::disable_index", "resize"),
    ("    free_all (pci_free_irq_vectors: free irqs, IRTEs)", "DeviceShare::free_all", "resize"),
    ("released pending interrupts routed and settled", "Engine>::settle_one", "resize"),
]


class Profile(TypedDict):
    """One callgrind run of the storm example."""

    mode: str
    resizes: int
    fired: int
    lost: int
    total: int
    stages: dict[str, int]


LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$")


def build(cargo: str) -> Path:
    env = dict(os.environ, CARGO_PROFILE_RELEASE_DEBUG="true")
    subprocess.run(
        [cargo, "build", "--release", "-p", "msixcore-core", "--example", "storm"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "examples" / "storm"


def run(binary: Path, mode: str, resizes: int) -> Profile:
    """One callgrind run; returns totals and the inclusive count of each stage."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                str(binary),
                mode,
                str(resizes),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        m = re.search(r"fired (\d+), lost (\d+)", proc.stdout)
        if m is None:
            raise RuntimeError(f"unexpected output from the storm example: {proc.stdout!r}")
        fired, lost = int(m.group(1)), int(m.group(2))
        ann = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--show-percs=no", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    total = 0
    counts: dict[str, int] = {}
    for line in ann.splitlines():
        m = LINE.match(line)
        if m is None:
            continue
        n = int(m.group(1).replace(",", ""))
        name = m.group(2)
        if "PROGRAM TOTALS" in name:
            total = n
            continue
        # A function is listed once per source file its code comes from (its own
        # lines, `file:function [binary]`, and the lines inlined into it), and
        # once more as its callers see it; the largest of them is its inclusive
        # count (the `[binary]` entry alone missed most of the fire path).
        for _, sym, _ in STAGES:
            if sym in name and n > counts.get(sym, 0):
                counts[sym] = n
    return {
        "mode": mode,
        "resizes": resizes,
        "fired": fired,
        "lost": lost,
        "total": total,
        "stages": counts,
    }


def table(result: Profile) -> str:
    """The run as a markdown table: each stage's inclusive count per event or per resize."""
    fired, resizes, total = result["fired"], result["resizes"], result["total"]
    stages = result["stages"]
    rows = [
        f"{result['mode']} mode, {resizes:,} resizes, {fired:,} interrupt events: "
        f"{total:,} instructions = {total / fired:,.0f} per event, "
        f"{total / resizes:,.0f} per resize",
        "| stage | instructions | per |",
        "|---|---:|---|",
    ]
    for label, sym, per in STAGES:
        n = stages.get(sym)
        if not n:
            continue
        div, unit = (fired, "event") if per == "event" else (resizes, "resize")
        rows.append(f"| {label.strip()} | {n / div:,.0f} | {unit} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--event-resizes", type=int, default=2048)
    ap.add_argument("--aggregated-resizes", type=int, default=8192)
    ap.add_argument("--json", type=Path, help="write the raw counts here")
    args = ap.parse_args(argv)
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            print(f"profile_storm: {tool} not found (install valgrind)", file=sys.stderr)
            return 2
    cargo = shutil.which("cargo")
    if cargo is None:
        print("profile_storm: cargo not found", file=sys.stderr)
        return 2
    binary = build(cargo)
    results = [
        run(binary, "event", args.event_resizes),
        run(binary, "aggregated", args.aggregated_resizes),
    ]
    for r in results:
        print(table(r))
        print()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
