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
    python benches/profile_storm.py --by-source 25  # and where each instruction's code is written

The stages are functions, and most of the engine is inlined into a few of them.
``--by-source N`` asks callgrind for every instruction's count
(``--dump-instr=yes``) and ``addr2line -i`` for the chain of inlined frames at each
address, and charges each instruction to the innermost frame written in
``rust/core/src`` (a slice index inlined into the IRTE table counts for
``irte.rs``), then prints the N source files with the most. The charge is as good
as the optimised build's line tables, which are approximate where the compiler
merged code from several lines. Needs binutils' ``addr2line``.

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


class Profile(TypedDict, total=False):
    """One callgrind run of the storm example (``sources`` with ``--by-source``)."""

    mode: str
    resizes: int
    fired: int
    lost: int
    total: int
    stages: dict[str, int]
    sources: dict[str, int]


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


def run(binary: Path, mode: str, resizes: int, by_source: bool = False) -> Profile:
    """One callgrind run; returns totals and the inclusive count of each stage (and,
    `by_source`, the instructions by source file)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                *(["--dump-instr=yes"] if by_source else []),
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
        sources = sources_of(binary, out) if by_source else None
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
    result: Profile = {
        "mode": mode,
        "resizes": resizes,
        "fired": fired,
        "lost": lost,
        "total": total,
        "stages": counts,
    }
    if sources is not None:
        result["sources"] = sources
    return result


def instruction_counts(text: str, obj: str) -> tuple[dict[int, int], int]:
    """Each instruction address's own count in object ``obj`` (the binary's path),
    from a callgrind output file written with ``--dump-instr=yes``, and the total of
    every other object (libc, the loader): their addresses are offsets in their own
    files and would collide with the binary's. Positions are ``instr line``, each
    absolute (``0x…``), relative to the previous line's (``+n``/``-n``) or the same
    (``*``); the cost line after a ``calls=`` line is the call's inclusive cost,
    charged to the callee, and is skipped."""
    counts: dict[int, int] = {}
    other = 0
    names: dict[str, str] = {}
    in_obj = False
    prev = 0
    after_call = False
    for line in text.splitlines():
        m = re.match(r"(c?ob)=\((\d+)\)(?: (.*))?$", line)
        if m is not None:
            if m.group(3) is not None:
                names[m.group(2)] = m.group(3)
            if m.group(1) == "ob":
                in_obj = names.get(m.group(2)) == obj
            continue
        if line.startswith("calls="):
            after_call = True
            continue
        if not line or line[0] not in "0123456789+-*":
            continue
        fields = line.split()
        tok = fields[0]
        if tok == "*":
            addr = prev
        elif tok[0] in "+-":
            addr = prev + int(tok, 0)
        else:
            addr = int(tok, 0)
        prev = addr
        if after_call:
            after_call = False
            continue
        n = int(fields[2]) if len(fields) > 2 else 0
        if in_obj:
            counts[addr] = counts.get(addr, 0) + n
        else:
            other += n
    return counts, other


def innermost_sources(addr2line_out: str, src: str) -> dict[int, str]:
    """Parse ``addr2line -a -i -f`` output: for each address, the file (relative to
    ``src``) of the innermost inlined frame written under ``src``; addresses with none
    are left out. Each address is a ``0x…`` line followed by (function, file:line)
    pairs, innermost first."""
    where: dict[int, str] = {}
    lines = addr2line_out.splitlines()
    addr: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.fullmatch(r"0x[0-9a-f]+", line):
            addr = int(line, 16)
            i += 1
            continue
        if addr is not None and i + 1 < len(lines) and addr not in where:
            path = lines[i + 1].rsplit(":", 1)[0]
            if path.startswith(src):
                where[addr] = path[len(src) :].lstrip("/")
        i += 2
    return where


def by_source(counts: dict[int, int], where: dict[int, str], other: int = 0) -> dict[str, int]:
    """Instruction counts summed by source file; ``?`` for code written elsewhere
    (the standard library with no frame of ours inlined around it, and ``other``:
    libc and the loader)."""
    out: dict[str, int] = {"?": other} if other else {}
    for addr, n in counts.items():
        f = where.get(addr, "?")
        out[f] = out.get(f, 0) + n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def sources_of(binary: Path, callgrind_out: Path) -> dict[str, int]:
    """``by_source`` of one instruction-level callgrind run of ``binary``."""
    counts, other = instruction_counts(callgrind_out.read_text(), str(binary))
    addrs = [hex(a) for a in counts]
    where: dict[int, str] = {}
    # addr2line reads its addresses from the command line: a few thousand at a time.
    for i in range(0, len(addrs), 4000):
        out = subprocess.run(
            ["addr2line", "-a", "-i", "-f", "-C", "-e", str(binary), *addrs[i : i + 4000]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        where.update(innermost_sources(out, str(ROOT / "rust" / "core" / "src")))
    return by_source(counts, where, other)


def sources_table(result: Profile, top: int) -> str:
    """The `top` source files by instructions per event (per-event mode) or per resize."""
    per_event = result["mode"] == "event"
    div = result["fired"] if per_event else result["resizes"]
    unit = "event" if per_event else "resize"
    rows = [
        f"{result['mode']} mode, by source file (innermost inlined frame):",
        f"| rust/core/src/… | instructions per {unit} |",
        "|---|---:|",
    ]
    for f, n in list(result.get("sources", {}).items())[:top]:
        rows.append(f"| {f} | {n / div:,.0f} |")
    return "\n".join(rows)


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
    ap.add_argument(
        "--by-source",
        type=int,
        metavar="N",
        help="also print the N source files whose code runs the most instructions",
    )
    args = ap.parse_args(argv)
    if args.by_source is not None and args.by_source < 1:
        ap.error("--by-source: N must be at least 1")
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            print(f"profile_storm: {tool} not found (install valgrind)", file=sys.stderr)
            return 2
    if args.by_source and shutil.which("addr2line") is None:
        print("profile_storm: addr2line not found (install binutils)", file=sys.stderr)
        return 2
    cargo = shutil.which("cargo")
    if cargo is None:
        print("profile_storm: cargo not found", file=sys.stderr)
        return 2
    binary = build(cargo)
    by = args.by_source is not None
    results = [
        run(binary, "event", args.event_resizes, by),
        run(binary, "aggregated", args.aggregated_resizes, by),
    ]
    for r in results:
        print(table(r))
        print()
        if by:
            print(sources_table(r, args.by_source))
            print()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
