"""Compare two builds of msixcore on the workloads users run, interleaved.

Each round runs every workload once under the baseline interpreter and once
under the candidate (this interpreter by default), in alternating order, each
in a fresh process that builds the workload with its own
``SCENARIOS[name].build(...)`` (the CLI's definition in that build) and times
``msixcore._core.run_simulation`` alone. The figure per workload is the
candidate's median time over the baseline's median time in the same run; the
noise is the spread of the per-round ratios.

    python benches/ab_compare.py --baseline /path/to/other/python [--rounds 7]
        [--json benches/results/ab.json] [--only "aggregated"]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

# (label, scenario, policy, params, resizes, mode)
WORKLOADS: list[tuple[str, str, str, dict[str, Any], int | None, str]] = [
    ("storm event 20,480 resizes", "storm", "noresize", {}, 20_480, "event"),
    ("storm aggregated 102,400 resizes", "storm", "noresize", {}, 102_400, "aggregated"),
    ("storm aggregated 1,000,000 resizes", "storm", "noresize", {}, 1_000_000, "aggregated"),
    ("storm dynamic event 20,480 resizes", "storm", "dynamic", {}, 20_480, "event"),
    ("fpga event 4,500 resizes", "fpga", "noresize", {}, 4_500, "event"),
    ("host-packing:no-reservation upfront", "host-packing", "upfront",
     {"reservation_mode": False}, None, "event"),
]  # fmt: skip

_WORKER = r"""
import json, sys, time
from msixcore import _core
from msixcore.scenarios import SCENARIOS
name, policy, params, resizes, mode = json.loads(sys.argv[1])
cfg = SCENARIOS[name].build(params, policy, 1, resizes)
cfg["mode"] = mode
text = json.dumps(cfg, sort_keys=True)
_core.run_simulation(text)  # warm-up
t0 = time.perf_counter()
out = json.loads(_core.run_simulation(text))
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "fired": out["books"]["fired"]}))
"""


def _run(python: str, workload: tuple[str, str, str, dict[str, Any], int | None, str]) -> float:
    _, name, policy, params, resizes, mode = workload
    arg = json.dumps([name, policy, params, resizes, mode])
    out = subprocess.run(
        [python, "-c", _WORKER, arg], capture_output=True, text=True, check=True, timeout=600
    )
    return float(json.loads(out.stdout)["seconds"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="python of the baseline build")
    ap.add_argument("--candidate", default=sys.executable, help="python of the new build")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument(
        "--only", action="append", default=[], help="run the workloads whose label has this text"
    )
    args = ap.parse_args(argv)
    results = []
    for w in WORKLOADS:
        if args.only and not any(o in w[0] for o in args.only):
            continue
        base, cand, ratios = [], [], []
        for r in range(args.rounds):
            order = [(args.baseline, base), (args.candidate, cand)]
            if r % 2:
                order.reverse()
            for python, sink in order:
                sink.append(_run(python, w))
            ratios.append(cand[-1] / base[-1])
        row = {
            "workload": w[0],
            "baseline_median_s": statistics.median(base),
            "candidate_median_s": statistics.median(cand),
            "ratio": statistics.median(cand) / statistics.median(base),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "rounds": args.rounds,
        }
        results.append(row)
        print(
            f"{row['workload']:40s} baseline {row['baseline_median_s']:.3f} s  "
            f"candidate {row['candidate_median_s']:.3f} s  ratio {row['ratio']:.3f} "
            f"[{row['ratio_min']:.3f}, {row['ratio_max']:.3f}]",
            flush=True,
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
