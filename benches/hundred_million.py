"""The issue's "100,000,000 resizes in aggregated mode on both cores" target,
measured (not extrapolated): the CLI's storm (docs/storm.md#the-resize-storm: 16
devices × 64 entries, 32 host CPUs, 1 µs handler) under ``noresize``, split
into independent replications (one seed each) run on every core with the GIL
released, merged, and the lost-per-million figure with its 95% interval.

    python benches/hundred_million.py                              # 100 M resizes, 2 replications
    python benches/hundred_million.py --resizes 4000000 --json out.json

Each replication runs whole storm cycles (1,024 resizes each at the defaults), so
the count is rounded up (100 M → 100,001,792) and the closed form applies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from storm import DEFAULT, closed_form_lost, cycle_resizes, msixcore_config_json

from msixcore import per_million
from msixcore._core import run_replications


def measure(resizes: int, replications: int, threads: int = 0) -> dict[str, Any]:
    """Run at least ``resizes`` storm resizes as ``replications`` seeds on ``threads``
    threads (0 = every core): each replication runs whole storm cycles (the count is
    rounded up), so the closed form applies. Wall time, rates, and the merged loss
    with its 95% interval."""
    if replications < 1:
        raise ValueError(f"replications: give at least 1, got {replications}")
    if resizes < 1:
        raise ValueError(f"resizes: give at least 1, got {resizes}")
    cycle = cycle_resizes(DEFAULT)
    each = -(-resizes // (replications * cycle)) * cycle
    cfg = msixcore_config_json(DEFAULT, each, mode="aggregated")
    seeds = list(range(1, replications + 1))
    t0 = time.perf_counter()
    out = json.loads(run_replications(cfg, seeds, threads))
    seconds = time.perf_counter() - t0
    done = out["stats"]["resize_requests"]
    if done != each * replications:
        raise RuntimeError(f"asked for {each * replications} resizes, the runs made {done}")
    lost = out["books"]["outcomes"]["lost"]
    rate = per_million(lost, done)
    return {
        "resizes": done,
        "replications": replications,
        "threads": threads or os.cpu_count(),
        "seconds": seconds,
        "resizes_per_s": done / seconds,
        "fired": out["books"]["fired"],
        "lost": lost,
        "lost_per_million": rate.value,
        "ci95": [rate.lower, rate.upper],
        "closed_form_lost": closed_form_lost(DEFAULT, done),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--resizes", type=int, default=100_000_000)
    ap.add_argument("--replications", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="0 = every core")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    try:
        r = measure(args.resizes, args.replications, args.threads)
    except ValueError as e:
        print(f"hundred_million: {e}", file=sys.stderr)
        return 2
    lo, hi = r["ci95"]
    print(
        f"{r['resizes']:,} resizes ({r['replications']} replications on {r['threads']} threads): "
        f"{r['seconds']:.1f} s, {r['resizes_per_s']:,.0f} resizes/s; "
        f"{r['fired']:,} fired, {r['lost']:,} lost = {r['lost_per_million']:,.1f} per million "
        f"resizes [95% {lo:,.1f}, {hi:,.1f}]; closed form {r['closed_form_lost']:,.0f} lost"
    )
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
