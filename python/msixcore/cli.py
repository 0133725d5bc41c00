"""The ``msixcore`` command line.

- ``msixcore compare [--seed S] [--resizes N] [--json PATH] [--quick]``: every
  built-in scenario (and variant) under every policy it applies to.
- ``msixcore run [SCENARIO[:VARIANT]] --policy P [--resizes N] [--seed S]
  [--set key=value ...] [--file PATH] [--json PATH] [--replications R]
  [--trace PATH [--trace-from T] [--trace-to T] [--trace-max-events N]]``.
- ``msixcore sweep SPEC.toml --out DIR [--workers N] [--cluster local |
  --scheduler ADDRESS]``: a grid, zip or list of runs (docs/sweeps.md) into
  ``DIR/results.json`` and ``DIR/results.parquet``; a rerun does only the runs
  not yet in ``DIR``.
- ``msixcore report DIR -o report.html [--png OUTDIR]``: the figures of a
  sweep and a page that shows them (docs/reports.md).
- ``msixcore scenarios``: the scenarios with their parameters, defaults and
  units.
- ``msixcore demo``: the core models at work.

User errors (unknown names, bad ``--set``, bad files, impossible parameters)
print one line on stderr (``msixcore: error: ...``) and exit with status 2; a
failed run exits with status 1. No traceback.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from msixcore._core import InvalidArgument, MsixError, __version__
from msixcore.engine_config import MAX_TRACE_EVENTS, POLICIES
from msixcore.parameters import ParamValue, format_seconds, format_value, parse_seconds, to_ns
from msixcore.progress import Progress
from msixcore.report import (
    RunRecord,
    format_spoof,
    format_table,
    make_record,
    results_json,
    write_json,
)
from msixcore.scenario_file import (
    RunSpec,
    apply_config_override,
    load_file,
    parse_assignment,
)
from msixcore.scenarios import SCENARIOS, Scenario, get_scenario, storm_closed_form_lost
from msixcore.simulation import RunResult, run_config, run_replications
from msixcore.trace import TraceOptions, TraceSummary, run_traced
from msixcore.versions import behaviours

__all__ = ["Job", "build_parser", "compare_jobs", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``msixcore: error: ...``, status 2)."""

    def error(self, message: str) -> NoReturn:
        """Report a usage error on one line and exit with status 2."""
        _say(message)
        raise SystemExit(2)


def _say(message: object) -> None:
    text = " ".join(str(message).split())
    print(f"msixcore: error: {text}", file=sys.stderr)


@dataclass(frozen=True)
class Job:
    """One run to do: a label, its engine config and how to report it."""

    scenario: str
    policy: str
    seed: int
    params: dict[str, ParamValue]
    config: dict[str, Any]
    closed_form_lost: float | None = None
    source: str | None = None
    """The file a full engine config came from (named in its errors)."""


def _closed_form(
    scenario: Scenario, params: Mapping[str, ParamValue], policy: str, config: Mapping[str, Any]
) -> float | None:
    """The storm's expected loss: the closed form under noresize with edge
    semantics, 0 under the windowless policies (and for non-edge devices,
    whose fires in a window are delayed or diverted, not lost)."""
    if scenario.name != "storm":
        return None
    if policy != "noresize" or params["semantics"] != "edge":
        return 0.0
    return storm_closed_form_lost(params, int(config["stop"]["max_resizes"]))


def _scenario_job(
    scenario: Scenario,
    variant: str | None,
    overrides: Mapping[str, object],
    policy: str,
    seed: int,
    resizes: int | None,
) -> Job:
    merged = {**(scenario.variant(variant) if variant else {}), **overrides}
    params = scenario.resolve(merged)
    config = scenario.build(params, policy, seed, resizes)
    label = f"{scenario.name}:{variant}" if variant else scenario.name
    return Job(label, policy, seed, params, config, _closed_form(scenario, params, policy, config))


def compare_jobs(seed: int, resizes: int | None, quick: bool) -> list[Job]:
    """Every built-in scenario (each variant, if it has any) under every
    policy it applies to. ``resizes`` overrides the default target of the
    resize-bounded scenarios; ``quick`` divides their defaults by 10 and runs the
    time-bounded ones with their ``quick`` overrides."""
    jobs = []
    for scenario in SCENARIOS.values():
        target: int | None = None
        if not scenario.time_bounded and scenario.default_resizes is not None:
            target = resizes or (
                max(scenario.default_resizes // 10, 1) if quick else scenario.default_resizes
            )
        variants: list[str | None] = [*scenario.variants] or [None]
        overrides = scenario.quick if quick else {}
        for variant in variants:
            for policy in scenario.policies:
                jobs.append(_scenario_job(scenario, variant, overrides, policy, seed, target))
    return jobs


@dataclass(frozen=True)
class _Trace:
    """``run --trace``: where to write the trace and what to record."""

    path: str
    options: TraceOptions


def _run_jobs(
    jobs: Sequence[Job], replications: int = 1, mode: str = "event", trace: _Trace | None = None
) -> list[RunRecord]:
    progress = Progress(len(jobs))
    records = []
    notes = []
    for job in jobs:
        config = {**job.config, "mode": mode}
        progress.start(f"{job.scenario} / {job.policy}")
        result, summary = _run_job(job, config, replications, trace)
        if trace is not None and summary is not None:
            notes.append(_trace_note(trace.path, summary))
        progress.done()
        closed = job.closed_form_lost
        if closed is not None:
            closed *= replications
        records.append(
            make_record(
                job.scenario,
                job.policy,
                job.seed,
                job.params,
                result,
                closed_form_lost=closed,
                replications=replications,
                config=job.config,
            )
        )
    progress.close()
    for note in notes:
        print(f"msixcore: {note}", file=sys.stderr)
    return records


def _trace_note(path: str, s: TraceSummary) -> str:
    text = f"trace: {path}: {s.events:,} events"
    if s.dropped:
        first = format_seconds((s.first_dropped_ns or 0) * 1e-9)
        text += (
            f", {s.dropped:,} more dropped by the cap (complete before {first}; "
            "raise --trace-max-events or narrow --trace-from/--trace-to)"
        )
    return text


def _trace_from_args(args: argparse.Namespace) -> _Trace | None:
    """The ``--trace`` request, checked before anything runs."""
    if args.trace is None:
        for flag, value in (
            ("--trace-from", args.trace_from),
            ("--trace-to", args.trace_to),
            ("--trace-max-events", args.trace_max_events),
        ):
            if value is not None:
                raise InvalidArgument(f"{flag}: needs --trace PATH")
        return None
    if args.replications > 1:
        raise InvalidArgument("--trace: traces one run; drop --replications")
    if args.mode == "aggregated":
        raise InvalidArgument(
            "--trace: aggregated mode books counts, not single interrupts; trace with --mode event"
        )
    path = Path(args.trace)
    if path.is_dir():
        raise InvalidArgument(f"--trace: {args.trace!r} is a directory")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise InvalidArgument(f"--trace: directory of {args.trace!r} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidArgument(f"--trace: {args.trace!r} is not writable")
    start = 0
    if args.trace_from is not None:
        start = _trace_time("--trace-from", args.trace_from)
    end = None if args.trace_to is None else _trace_time("--trace-to", args.trace_to)
    if end is not None and end <= start:
        raise InvalidArgument(
            f"--trace-to: must be after --trace-from ({format_seconds(start * 1e-9)}), "
            f"got {format_seconds(end * 1e-9)}"
        )
    return _Trace(args.trace, TraceOptions(start, end, args.trace_max_events))


def _trace_time(flag: str, value: str) -> int:
    """A ``--trace-from``/``--trace-to`` time in whole ns (seconds or with a unit)."""
    seconds = parse_seconds(flag, value)
    if seconds < 0:
        raise InvalidArgument(f"{flag}: must be ≥ 0 s, got {value!r}")
    return to_ns(seconds)


def _run_job(
    job: Job, config: dict[str, Any], replications: int, trace: _Trace | None = None
) -> tuple[RunResult, TraceSummary | None]:
    """Run one job (its config validated by the engine, once), traced if asked."""
    try:
        if trace is not None:
            try:
                return run_traced(config, trace.path, trace.options)
            except OSError as exc:
                raise InvalidArgument(
                    f"--trace: cannot write {trace.path!r}: {exc.strerror or exc}"
                ) from None
        if replications > 1:
            # Seeds S..S+N-1 on every core, merged in seed order (thread count free).
            seeds = [job.seed + r for r in range(replications)]
            return run_replications(config, seeds).merged, None
        return run_config(config), None
    except InvalidArgument as exc:
        if job.source is None:
            raise
        what = str(exc).removeprefix("invalid argument: ")
        raise InvalidArgument(f"{job.source}: config.{what}") from None


def _check_json_path(path: str | None) -> None:
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise InvalidArgument(f"--json: directory of {path!r} does not exist")


def _finish(records: Sequence[RunRecord], json_path: str | None, meta: dict[str, Any]) -> int:
    print(format_table(records))
    spoof = format_spoof(records)
    if spoof is not None:
        print()
        print(spoof)
    if json_path is not None:
        write_json(json_path, results_json(records, meta))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    _check_json_path(args.json)
    jobs = compare_jobs(args.seed, args.resizes, args.quick)
    records = _run_jobs(jobs, mode=args.mode)
    pairs = version_pairs()
    meta = {
        "command": "compare",
        "seed": args.seed,
        "resizes": args.resizes,
        "quick": args.quick,
        "mode": args.mode,
        "version_pairs": pairs,
    }
    rc = _finish(records, args.json, meta)
    print()
    print(format_version_pairs(pairs))
    return rc


# Kernels and QEMUs people run: LTS kernels, Debian 12's 6.1, a current one;
# QEMU before and after dynamic MSI-X.
_KERNELS = ("5.10", "5.15", "6.1", "6.6", "6.12")
_QEMUS = ("7.2", "8.2")


def version_pairs() -> list[dict[str, Any]]:
    """For each kernel × QEMU pair of :data:`_KERNELS` × :data:`_QEMUS`, its
    behaviours (from the core) — above all whether a guest's new entries are
    resizes at all."""
    return [behaviours(k, q) for k in _KERNELS for q in _QEMUS]


def format_version_pairs(pairs: Sequence[Mapping[str, Any]]) -> str:
    """Which kernel/QEMU pairs resize at all: a small matrix for the terminal."""
    lines = ["Which kernel/QEMU pairs resize when a guest adds an MSI-X entry:"]
    lines.append("  kernel  " + "  ".join(f"qemu {q:<6}" for q in _QEMUS))
    for k in _KERNELS:
        cells = []
        for q in _QEMUS:
            b = next(p for p in pairs if p["kernel"] == k and p["qemu"] == q)
            cell = "resizes" if b["resizes"] else "dynamic"
            if b["early_enable"]:
                cell += "*"
            cells.append(f"{cell:<11}")
        lines.append(f"  {k:<6}  " + "  ".join(cells))
    lines.append(
        "  dynamic: per-vector adds (VFIO dynamic MSI-X, kernel 6.5+, with QEMU 8.2+); "
        "*: early enable (kernel 5.14+): new vectors are allocated outside the window"
    )
    return "\n".join(lines)


def _spec_from_args(args: argparse.Namespace) -> RunSpec:
    file_spec = load_file(args.file) if args.file is not None else None
    if args.scenario is None:
        if file_spec is None:
            raise InvalidArgument("run: give a SCENARIO or --file PATH")
        if file_spec.scenario is None and file_spec.config is None:
            raise InvalidArgument(f"{file_spec.source}: base: the file names no scenario")
        return file_spec
    scenario, variant = get_scenario(args.scenario)
    if file_spec is None:
        return RunSpec(source="command line", scenario=scenario, variant=variant)
    if file_spec.config is not None:
        raise InvalidArgument(
            f"{file_spec.source}: config: a full engine config cannot be combined with SCENARIO"
        )
    if file_spec.scenario is not None and (file_spec.scenario, file_spec.variant) != (
        scenario,
        variant,
    ):
        raise InvalidArgument(
            f"{file_spec.source}: base: the file is for {file_spec.scenario.name!r}, "
            f"not {args.scenario!r}"
        )
    return RunSpec(
        source=file_spec.source,
        name=file_spec.name,
        scenario=scenario,
        variant=variant,
        params=file_spec.params,
        policy=file_spec.policy,
        seed=file_spec.seed,
        resizes=file_spec.resizes,
    )


def _config_job(spec: RunSpec, args: argparse.Namespace, seed: int) -> Job:
    assert spec.config is not None
    config = copy.deepcopy(spec.config)
    for item in args.set or []:
        key, value = parse_assignment(item)
        apply_config_override(config, key, value)
    policy = args.policy or spec.policy
    if policy is not None:
        if policy not in POLICIES:
            raise InvalidArgument(
                f"--policy: unknown policy {policy!r} (known: {', '.join(POLICIES)})"
            )
        config.setdefault("policy", {})["kind"] = policy
    if args.seed is not None or spec.seed is not None or "seed" not in config:
        config["seed"] = seed
    resizes = args.resizes if args.resizes is not None else spec.resizes
    if resizes is not None:
        config.setdefault("stop", {})["max_resizes"] = resizes
    name = spec.name or Path(spec.source).stem
    policy_section = config.get("policy", {})
    kind = policy_section.get("kind", "noresize") if isinstance(policy_section, dict) else "?"
    return Job(name, str(kind), int(config["seed"]), {}, config, source=spec.source)


def _cmd_run(args: argparse.Namespace) -> int:
    _check_json_path(args.json)
    trace = _trace_from_args(args)
    spec = _spec_from_args(args)
    seed = args.seed if args.seed is not None else (spec.seed if spec.seed is not None else 0)
    if spec.config is not None:
        job = _config_job(spec, args, seed)
    else:
        assert spec.scenario is not None
        overrides: dict[str, object] = dict(spec.params)
        for item in args.set or []:
            key, value = parse_assignment(item)
            spec.scenario.param(key)
            overrides[key] = value
        policy = args.policy or spec.policy
        if policy is None:
            raise InvalidArgument(
                f"--policy: required (for {spec.scenario.name}: "
                f"{', '.join(spec.scenario.policies)})"
            )
        resizes = args.resizes if args.resizes is not None else spec.resizes
        job = _scenario_job(spec.scenario, spec.variant, overrides, policy, seed, resizes)
    records = _run_jobs([job], args.replications, args.mode, trace)
    meta = {"command": "run", "replications": args.replications, "mode": args.mode}
    return _finish(records, args.json, meta)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from msixcore.sweep import run_sweep
    from msixcore.sweep_spec import load_sweep_spec

    if args.cluster is not None and args.scheduler is not None:
        raise InvalidArgument("--cluster and --scheduler: give one or the other")
    spec = load_sweep_spec(args.spec)
    outcome = run_sweep(
        spec,
        args.out,
        workers=args.workers,
        cluster=args.cluster,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    total = len(outcome.rows)
    print(
        f"{total} runs ({outcome.ran} run now, {total - outcome.ran} already in {args.out}), "
        f"{outcome.refused} refused by the engine, in {outcome.seconds:.1f} s"
    )
    reasons = sorted({str(r["error"]) for r in outcome.rows if r["status"] != "ok"})
    for reason in reasons[:5]:
        print(f"  refused: {reason}")
    out = Path(args.out)
    print(f"results: {out / 'results.json'}, {out / 'results.parquet'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from msixcore.sweep_report import load_results, render_report, write_figures

    if args.output is None and args.png is None:
        raise InvalidArgument("report: give -o PAGE.html, --png OUTDIR, or both")
    if args.output is not None:
        figures = render_report(args.dir, args.output, args.png)
        where = (
            args.png
            if args.png is not None
            else Path(args.output).with_name(f"{Path(args.output).stem}_files")
        )
        print(f"{args.output}: {len(figures)} figures in {where}")
    else:
        figures = write_figures(load_results(args.dir), args.png)
        print(f"{len(figures)} figures in {args.png}")
    for f in figures:
        print(f"  {f.name}.png: {f.title}")
    return 0


def _cmd_scenarios(_args: argparse.Namespace) -> int:
    blocks = []
    for s in SCENARIOS.values():
        lines = [f"{s.name}: {s.description}"]
        lines.append(f"  policies: {', '.join(s.policies)}")
        if s.time_bounded:
            lines.append("  runs for a fixed simulated time (no --resizes)")
        else:
            lines.append(f"  default resizes: {s.default_resizes:,}")
        if s.variants:
            for name, overrides in s.variants.items():
                sets = ", ".join(
                    f"{k}={format_value(s.param(k).kind, v)}" for k, v in overrides.items()
                )
                lines.append(f"  variant {s.name}:{name}: {sets}")
        rows = [(p.name, format_value(p.kind, p.default), p.unit or "-", p.doc) for p in s.params]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines.append("  parameters (name, default, unit, meaning):")
        for name, default, unit, doc in rows:
            lines.append(
                f"    {name.ljust(widths[0])}  {default.rjust(widths[1])}  "
                f"{unit.ljust(widths[2])}  {doc}"
            )
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))
    return 0


def _cmd_demo(_args: argparse.Namespace) -> int:
    from msixcore.demo import run_demo

    print(run_demo())
    return 0


_U64_MAX = (1 << 64) - 1
MAX_REPLICATIONS = 100_000
"""Replications of one run: each is a full run, so more are never meant (and
the seed list alone would not fit in memory)."""


def _int_in(lo: int, hi: int) -> Any:
    """An argparse type: an integer in ``lo..=hi`` (a one-line usage error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be ≥ {lo}, got {value}")
        if value > hi:
            raise argparse.ArgumentTypeError(f"must be ≤ {hi:,}, got {value}")
        return value

    return parse


_MODE_ARG: dict[str, Any] = {
    "choices": ("event", "aggregated"),
    "default": "event",
    "help": "simulate every interrupt (event, default) or sample Poisson counts between "
    "control events (aggregated: cost follows resizes, not interrupts)",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for tests and docs)."""
    parser = _Parser(
        prog="msixcore",
        description="Simulate MSI-X / IMS interrupt allocation, remapping and delivery.",
    )
    parser.add_argument("--version", action="version", version=f"msixcore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    compare = sub.add_parser("compare", help="every built-in scenario under every policy")
    compare.add_argument(
        "--seed", type=_int_in(0, _U64_MAX), default=0, help="RNG seed (default 0)"
    )
    compare.add_argument(
        "--resizes",
        type=_int_in(1, _U64_MAX),
        help="resize target of every resize-bounded scenario",
    )
    compare.add_argument("--json", metavar="PATH", help="write full results as JSON")
    compare.add_argument("--quick", action="store_true", help="a tenth of the default resizes")
    compare.add_argument("--mode", **_MODE_ARG)
    compare.set_defaults(func=_cmd_compare)

    run = sub.add_parser("run", help="one scenario under one policy")
    run.add_argument("scenario", nargs="?", metavar="SCENARIO[:VARIANT]")
    run.add_argument("--policy", help=f"one of {', '.join(POLICIES)}")
    run.add_argument(
        "--resizes", type=_int_in(1, _U64_MAX), help="stop after this many resize requests"
    )
    run.add_argument("--seed", type=_int_in(0, _U64_MAX), help="RNG seed (default 0)")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a parameter (units allowed: gap=2ms), or a config field",
    )
    run.add_argument("--file", metavar="PATH", help="a .toml or .json scenario file")
    run.add_argument("--mode", **_MODE_ARG)
    run.add_argument("--json", metavar="PATH", help="write full results as JSON")
    run.add_argument(
        "--replications",
        type=_int_in(1, MAX_REPLICATIONS),
        default=1,
        help="runs with seeds S, S+1, ... merged",
    )
    run.add_argument(
        "--trace",
        metavar="PATH",
        help="write the run's timeline as Chrome/Perfetto trace-event JSON (docs/trace.md)",
    )
    run.add_argument(
        "--trace-from",
        metavar="T",
        help="trace from simulated time T (seconds, or with a unit: 5ms; default 0)",
    )
    run.add_argument(
        "--trace-to", metavar="T", help="trace up to simulated time T (default: the end)"
    )
    run.add_argument(
        "--trace-max-events",
        type=_int_in(1, MAX_TRACE_EVENTS),
        metavar="N",
        help="keep at most N trace events (default 500,000); the rest are counted as dropped",
    )
    run.set_defaults(func=_cmd_run)

    sweep = sub.add_parser("sweep", help="a grid of runs into a table (docs/sweeps.md)")
    sweep.add_argument("spec", metavar="SPEC", help="a .toml or .json sweep spec")
    sweep.add_argument("--out", required=True, metavar="DIR", help="results directory")
    sweep.add_argument(
        "--workers", type=_int_in(1, 4096), help="parallel runs (default: every core)"
    )
    sweep.add_argument(
        "--cluster",
        choices=("local",),
        help="run on a new Dask LocalCluster of --workers processes",
    )
    sweep.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on the Dask cluster at tcp://HOST:PORT"
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(func=_cmd_sweep)

    report = sub.add_parser("report", help="figures and a page from a sweep's results")
    report.add_argument("dir", metavar="DIR", help="a msixcore sweep --out directory")
    report.add_argument("-o", "--output", metavar="PAGE", help="write the HTML page here")
    report.add_argument("--png", metavar="OUTDIR", help="write the figures (PNG) here")
    report.set_defaults(func=_cmd_report)

    scenarios = sub.add_parser("scenarios", help="list scenarios, parameters and defaults")
    scenarios.set_defaults(func=_cmd_scenarios)

    demo = sub.add_parser("demo", help="show the core models at work on a small host")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        rc: int = args.func(args)
    except BrokenPipeError:
        # The reader went away (msixcore scenarios | head): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (ValueError, OSError) as exc:
        _say(exc)
        return 2
    except RecursionError:
        # Every input path checks its nesting (msixcore.nesting); this is the
        # backstop that keeps a missed one to one line.
        _say("input nested too deeply")
        return 2
    except MsixError as exc:
        _say(exc)
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
