"""The soak: at least 10^9 interrupt events across every scenario, every
policy it applies to and both modes, on both cores, checking what must hold
however long a process runs.

Each round runs every workload (scenario × policy × mode at its defaults) as
two replications (two seeds, new ones each round) twice: on 2 threads and on
1. It checks, for every replication and every merge:

- conservation: every fired interrupt is in exactly one outcome
  (``fired == Σ outcomes``), per replication and merged;
- the result does not depend on the thread count: the merged result and
  every replication are byte-identical at 1 and 2 threads;

and samples the process's memory after every run: resident memory as it is,
resident memory after ``malloc_trim(0)`` hands the allocator's free pages back,
and the live heap (glibc ``mallinfo2``: bytes in use over every arena). glibc
keeps freed memory in per-thread arenas, so resident memory steps up with the
arenas' high-water marks (tens of MiB, then a plateau) while nothing is held;
a leak shows as a live heap that grows. The flatness check reads the live
heap; all three are reported, with the peak RSS (``VmHWM``). Events are
counted once, from the 2-thread runs; the 1-thread runs repeat them. One round
is about 1.4 × 10^9 events; it runs whole rounds, at least ``--rounds``.

    python benches/soak.py                        # ≥ 10^9 events, ≥ 3 rounds
    python benches/soak.py --rounds 3 --json benches/results/soak.json

Exit status 1 when a check fails or the round's peak live heap grows past
``--heap-growth`` (default 10 %) from the first round to the last.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from pathlib import Path
from typing import Any

from msixcore import OUTCOMES, SCENARIOS
from msixcore._core import run_replications

MODES = ("event", "aggregated")


def workloads() -> list[tuple[str, str, str, str]]:
    """``(label, scenario, policy, mode)`` for every built-in scenario, each
    policy it applies to, both modes."""
    out = []
    for name, scenario in SCENARIOS.items():
        for policy in scenario.policies:
            for mode in MODES:
                out.append((f"{name}/{policy}/{mode}", name, policy, mode))
    return out


def config_text(scenario: str, policy: str, mode: str) -> str:
    cfg = SCENARIOS[scenario].build(None, policy, seed=0)
    cfg["mode"] = mode
    return json.dumps(cfg)


def status(field: str) -> int:
    """A ``/proc/self/status`` size in bytes (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _MallInfo2


def trimmed_rss() -> int:
    """``VmRSS`` after the allocator gives its free pages back (glibc ``malloc_trim``)."""
    _LIBC.malloc_trim(0)
    return status("VmRSS")


def live_heap() -> int:
    """Bytes the program holds in malloc's heap over every arena, mmapped chunks included."""
    m = _LIBC.mallinfo2()
    return int(m.uordblks + m.hblkhd)


def conserved(books: dict[str, Any]) -> bool:
    return int(books["fired"]) == sum(int(books["outcomes"][o]) for o in OUTCOMES)


def check_run(label: str, seeds: list[int], text2: str, text1: str) -> tuple[int, list[str]]:
    """Events fired (from the 2-thread run) and every violation found."""
    problems = []
    if text1 != text2:
        problems.append(f"{label} seeds {seeds}: results differ between 1 and 2 threads")
    out = json.loads(text2)
    if not conserved(out["books"]):
        problems.append(f"{label} seeds {seeds}: merged books do not conserve")
    reps = out["replications"]
    for r in reps:
        if int(r["fired"]) != sum(int(r["outcomes"][o]) for o in OUTCOMES):
            problems.append(f"{label} seed {r['seed']}: books do not conserve")
    if sum(int(r["fired"]) for r in reps) != int(out["books"]["fired"]):
        problems.append(f"{label} seeds {seeds}: the merge lost fired interrupts")
    return int(out["books"]["fired"]), problems


def soak(
    events: float, min_rounds: int, heap_growth: float, replications: int = 2
) -> dict[str, Any]:
    work = [(label, config_text(s, p, m)) for label, s, p, m in workloads()]
    total = 0
    per_mode = dict.fromkeys(MODES, 0)
    rounds: list[dict[str, Any]] = []
    problems: list[str] = []
    seed = 1
    t0 = time.perf_counter()
    secs = {1: 0.0, 2: 0.0}
    samples: list[tuple[int, int, int, int]] = []
    while total < events or len(rounds) < min_rounds:
        round_events = 0
        round_peak = round_raw = round_heap = 0
        for label, cfg in work:
            seeds = list(range(seed, seed + replications))
            seed += replications
            t = time.perf_counter()
            text2 = run_replications(cfg, seeds, 2)
            secs[2] += time.perf_counter() - t
            t = time.perf_counter()
            text1 = run_replications(cfg, seeds, 1)
            secs[1] += time.perf_counter() - t
            fired, bad = check_run(label, seeds, text2, text1)
            problems += bad
            round_events += fired
            per_mode[label.rsplit("/", 1)[1]] += fired
            raw = status("VmRSS")
            rss = trimmed_rss()
            heap = live_heap()
            round_peak, round_raw = max(round_peak, rss), max(round_raw, raw)
            round_heap = max(round_heap, heap)
            samples.append((total + round_events, raw, rss, heap))
        total += round_events
        rounds.append(
            {
                "round": len(rounds) + 1,
                "events": round_events,
                "total_events": total,
                "seconds": time.perf_counter() - t0,
                "peak_rss": round_peak,
                "peak_rss_untrimmed": round_raw,
                "peak_live_heap": round_heap,
            }
        )
        r = rounds[-1]
        print(
            f"round {r['round']}: {total:,} events, {r['seconds']:.0f} s, "
            f"peak RSS {r['peak_rss'] / 2**20:.1f} MiB trimmed, "
            f"{r['peak_rss_untrimmed'] / 2**20:.1f} MiB as is, "
            f"live heap {r['peak_live_heap'] / 2**20:.2f} MiB",
            file=sys.stderr,
        )
    early, late = rounds[0]["peak_live_heap"], rounds[-1]["peak_live_heap"]
    growth = late / early - 1.0
    if growth > heap_growth:
        problems.append(f"the live heap grew {growth:.1%} from the first round to the last")
    return {
        "events": total,
        "events_by_mode": per_mode,
        "workloads": len(work),
        "replications_per_run": replications,
        "rounds": rounds,
        "seconds": time.perf_counter() - t0,
        "seconds_2_threads": secs[2],
        "seconds_1_thread": secs[1],
        "speedup_2_over_1": secs[1] / secs[2] if secs[2] else None,
        "peak_rss": status("VmHWM"),
        "rss_by_round": [r["peak_rss_untrimmed"] for r in rounds],
        "rss_trimmed_by_round": [r["peak_rss"] for r in rounds],
        "live_heap_by_round": [r["peak_live_heap"] for r in rounds],
        "heap_growth": growth,
        "samples": samples,
        "violations": problems,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--events", type=float, default=1e9, help="events to reach (default 1e9)")
    ap.add_argument("--rounds", type=int, default=3, help="whole rounds at least (default 3)")
    ap.add_argument(
        "--heap-growth", type=float, default=0.10, help="allowed live-heap growth (0.10)"
    )
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    if not args.events >= 1:
        print(f"soak: --events must be ≥ 1, got {args.events}", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print(f"soak: --rounds must be ≥ 1, got {args.rounds}", file=sys.stderr)
        return 2
    r = soak(args.events, args.rounds, args.heap_growth)
    print(
        f"{r['events']:,} events ({r['events_by_mode']['event']:,} per event, "
        f"{r['events_by_mode']['aggregated']:,} aggregated) over {r['workloads']} workloads in "
        f"{len(r['rounds'])} rounds, {r['seconds']:.0f} s; 2 threads {r['seconds_2_threads']:.0f} s"
        f", 1 thread {r['seconds_1_thread']:.0f} s ({r['speedup_2_over_1']:.2f}x); peak RSS "
        f"{r['peak_rss'] / 2**20:.1f} MiB; per round RSS "
        f"{'/'.join(f'{x / 2**20:.1f}' for x in r['rss_by_round'])} MiB, live heap "
        f"{'/'.join(f'{x / 2**20:.2f}' for x in r['live_heap_by_round'])} MiB "
        f"({r['heap_growth']:+.1%}); "
        f"{len(r['violations'])} violations"
    )
    for p in r["violations"]:
        print("VIOLATION:", p)
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")
    return 1 if r["violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
