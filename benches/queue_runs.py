"""Run the cross-thread queue bench N separate times and collect the medians.

Each run is one ``cargo bench -p msixcore-core --bench queue -- queue_spsc``
(a fresh process, so each run gets its own thread timing on the shared
machine). After each run the script reads criterion's median of every case
from ``<target>/criterion/queue_spsc/<case>/new/estimates.json`` and turns it
into items/s with the case's element count (``benchmark.json``). It writes
every run to JSON and prints the table of the README's "Issue 14" section:
ours batched (chunks pushed, batches taken), ours with batches on the
consumer side only, ours item by item, ``ArrayQueue``, and the ratio of ours
batched over ``ArrayQueue`` per run.

    python3 benches/queue_runs.py [--runs 10] [--json benches/results/queue-10-runs.json]
        [--warm-up-time 1] [--measurement-time 3]

The target directory is ``$CARGO_TARGET_DIR`` (``target`` when unset).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GROUP = "queue_spsc"
OURS = "delivery_queue"
OURS_ITEM = "delivery_queue_item"
ARRAY = "crossbeam_array_queue"
OURS_CONSUMER = "delivery_queue_consumer_batch"
CASES = [OURS, OURS_CONSUMER, OURS_ITEM, ARRAY, "crossbeam_seg_queue", "std_sync_channel"]
ROOT = Path(__file__).resolve().parent.parent


def bench_command(warm_up: float, measurement: float) -> list[str]:
    """The cargo command of one run (the queue bench's cross-thread group only)."""
    return [
        "cargo", "bench", "-p", "msixcore-core", "--bench", "queue", "--", GROUP,
        "--warm-up-time", str(warm_up), "--measurement-time", str(measurement),
    ]  # fmt: skip


def items_per_s(case_dir: Path) -> dict[str, float]:
    """Median and its 95% interval of one case, in items/s.

    criterion stores times per iteration in ns; an iteration moves the
    case's ``throughput.Elements`` items, so items/s = elements / seconds
    (the slow end of the time interval is the low end of the rate's).
    """
    estimates = json.loads((case_dir / "new" / "estimates.json").read_text())
    bench = json.loads((case_dir / "new" / "benchmark.json").read_text())
    elements = float(bench["throughput"]["Elements"])
    median = estimates["median"]
    interval = median["confidence_interval"]
    return {
        "median": elements / (median["point_estimate"] * 1e-9),
        "low": elements / (interval["upper_bound"] * 1e-9),
        "high": elements / (interval["lower_bound"] * 1e-9),
    }


def load_average() -> float | None:
    """The 1-minute load average (how busy the shared machine was), if known."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def one_run(target: Path, warm_up: float, measurement: float) -> dict[str, Any]:
    """Run the bench once; return every case's figures and the load around it."""
    load_before = load_average()
    subprocess.run(
        bench_command(warm_up, measurement),
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=1800,
    )
    group = target / "criterion" / GROUP
    return {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_before": load_before,
        "load_after": load_average(),
        "items_per_s": {case: items_per_s(group / case) for case in CASES},
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-run ratios of ours batched over ArrayQueue, their minimum and the wins."""
    ratios = [r["items_per_s"][OURS]["median"] / r["items_per_s"][ARRAY]["median"] for r in runs]
    return {
        "ratios_batched_over_array": ratios,
        "min_ratio": min(ratios, default=None),
        "batched_ahead": sum(x > 1.0 for x in ratios),
        "consumer_batch_ahead": sum(
            r["items_per_s"][OURS_CONSUMER]["median"] > r["items_per_s"][ARRAY]["median"]
            for r in runs
        ),
        "item_ahead": sum(
            r["items_per_s"][OURS_ITEM]["median"] > r["items_per_s"][ARRAY]["median"] for r in runs
        ),
        "runs": len(runs),
    }


def table(runs: list[dict[str, Any]]) -> str:
    """The Markdown table of the runs (M items/s, medians)."""
    lines = [
        "| run | ours batched | ours, consumer batches only | ours item by item | ArrayQueue "
        "| batched / ArrayQueue |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    shown = (OURS, OURS_CONSUMER, OURS_ITEM, ARRAY)
    for i, r in enumerate(runs, 1):
        m = {case: r["items_per_s"][case]["median"] / 1e6 for case in shown}
        lines.append(
            f"| {i} | {m[OURS]:.1f} M/s | {m[OURS_CONSUMER]:.1f} M/s | {m[OURS_ITEM]:.1f} M/s "
            f"| {m[ARRAY]:.1f} M/s | {m[OURS] / m[ARRAY]:.2f}× |"
        )
    s = summary(runs)
    if s["min_ratio"] is not None:
        lines.append(
            f"\nmin ratio {s['min_ratio']:.2f}×; ahead of ArrayQueue in {s['runs']} runs: "
            f"ours batched {s['batched_ahead']}, consumer batches only "
            f"{s['consumer_batch_ahead']}, item by item {s['item_ahead']}"
        )
    return "\n".join(lines)


def git_commit() -> str | None:
    """The commit measured (with a + when the work tree has changes)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", type=Path, default=ROOT / "benches/results/queue-10-runs.json")
    ap.add_argument("--warm-up-time", type=float, default=1.0)
    ap.add_argument("--measurement-time", type=float, default=3.0)
    args = ap.parse_args(argv)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    runs: list[dict[str, Any]] = []
    for i in range(args.runs):
        runs.append(one_run(target, args.warm_up_time, args.measurement_time))
        m = runs[-1]["items_per_s"]
        print(
            f"run {i + 1}/{args.runs}: batched {m[OURS]['median'] / 1e6:.1f} M/s, "
            f"consumer batches {m[OURS_CONSUMER]['median'] / 1e6:.1f} M/s, "
            f"item {m[OURS_ITEM]['median'] / 1e6:.1f} M/s, "
            f"ArrayQueue {m[ARRAY]['median'] / 1e6:.1f} M/s",
            file=sys.stderr,
            flush=True,
        )
    report = {
        "command": " ".join(bench_command(args.warm_up_time, args.measurement_time)),
        "commit": git_commit(),
        "units": "items/s; median and its 95% interval from criterion's estimates",
        "summary": summary(runs),
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
