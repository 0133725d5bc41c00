"""Sweeps: every run of a :class:`~msixcore.sweep_spec.SweepSpec`, on all cores
or a Dask cluster, into one table.

Each finished run is written at once to ``DIR/runs/KEY.json`` (``KEY`` digests
everything that decides the run), so an interrupted sweep keeps its finished
runs and a rerun of the same spec does only the others. At the end the table
is written as ``DIR/results.json`` and ``DIR/results.parquet``: one row per
run, in the spec's order, whatever the number of workers or the order in which
runs finished, so the same spec gives the same files. A run the engine refuses
(``dynamic`` with QEMU 7.2, say) is a row with ``status = "refused"`` and the
one-line reason in ``error``; a bad spec is refused before anything runs.

The columns: ``run``, ``scenario``, ``policy``, ``seed``, ``mode``, each
swept parameter (parsed: seconds, per second, counts, version strings),
``status``, ``error``, ``resizes``, ``fired``, one column per outcome, lost
and intx per million resizes with their 95 % interval (``lost_per_million``,
``lost_per_million_lower``, ``lost_per_million_upper``, and the same for
``intx``), the same per phase prefixed ``probe_`` and ``runtime_``, every run
statistic (usage figures flattened: ``peak_usage_cpu_vectors``), the storm's
``closed_form_lost`` where it has one, and ``config_sha256``.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msixcore._core import InvalidArgument, __version__
from msixcore.extras import require
from msixcore.progress import progress_bar
from msixcore.report import make_record
from msixcore.scenarios import get_scenario, storm_closed_form_lost
from msixcore.simulation import OUTCOMES, PHASES, run_config
from msixcore.sweep_spec import SweepRun, SweepSpec, load_sweep_spec, parse_sweep_spec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SweepOutcome", "run_one", "sweep", "sweep_table"]

FIXED_COLUMNS: tuple[str, ...] = ("run", "scenario", "policy", "seed", "mode")
"""The columns every row starts with, before the swept parameters."""


def _require(module: str) -> Any:
    return require(module, "sweep", "sweep")


def _closed_form(run: SweepRun, config: Mapping[str, Any]) -> float | None:
    """The storm's expected loss (as ``msixcore compare`` reports it)."""
    if not run.scenario.startswith("storm"):
        return None
    if run.policy != "noresize" or run.params.get("semantics") != "edge":
        return 0.0
    return storm_closed_form_lost(run.params, int(config["stop"]["max_resizes"]))


def run_one(run: SweepRun) -> dict[str, Any]:
    """Run one point of a sweep and return its result document:
    ``{"key", "index", "status", "error", "record"}`` with the full run record
    (as in ``msixcore run --json``) when it ran. Pure: the same run gives the
    same document, on any worker."""
    scenario, _variant = get_scenario(run.scenario)
    doc: dict[str, Any] = {"key": run.key, "index": run.index, "record": None, "error": None}
    try:
        config = scenario.build(run.params, run.policy, run.seed, run.resizes)
        config["mode"] = run.mode
        result = run_config(config)
    except InvalidArgument as exc:
        reason = " ".join(str(exc).split()).removeprefix("invalid argument: ")
        return {**doc, "status": "refused", "error": reason}
    record = make_record(
        run.scenario,
        run.policy,
        run.seed,
        run.params,
        result,
        closed_form_lost=_closed_form(run, config),
        config=config,
    )
    return {**doc, "status": "ok", "record": record.to_json()}


def _flatten(prefix: str, value: Mapping[str, Any], out: dict[str, Any]) -> None:
    # Sorted: a document read back from its file and a fresh one give the
    # same columns in the same order.
    for name, v in sorted(value.items()):
        if isinstance(v, Mapping):
            _flatten(f"{prefix}{name}_", v, out)
        else:
            out[f"{prefix}{name}"] = v


def _rate_columns(prefix: str, rate: Mapping[str, Any], out: dict[str, Any]) -> None:
    out[prefix] = rate["value"]
    out[f"{prefix}_lower"] = rate["lower"]
    out[f"{prefix}_upper"] = rate["upper"]


def _row(run: SweepRun, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The table row of one run, from its result document."""
    row: dict[str, Any] = {
        "run": run.index,
        "scenario": run.scenario,
        "policy": run.policy,
        "seed": run.seed,
        "mode": run.mode,
    }
    row.update(run.swept)
    row["status"] = doc["status"]
    row["error"] = doc["error"]
    rec = doc["record"]
    if rec is None:
        return row
    row["resizes"] = rec["resizes"]
    row["fired"] = rec["fired"]
    row.update({name: rec["outcomes"][name] for name in OUTCOMES})
    _rate_columns("lost_per_million", rec["lost_per_million_resizes"], row)
    _rate_columns("intx_per_million", rec["intx_per_million_resizes"], row)
    for phase in PHASES:
        p = rec["phases"][phase]
        row[f"{phase}_resizes"] = p["resizes"]
        row[f"{phase}_fired"] = p["fired"]
        row.update({f"{phase}_{name}": p["outcomes"][name] for name in OUTCOMES})
        _rate_columns(f"{phase}_lost_per_million", p["lost_per_million_resizes"], row)
    _flatten("", rec["stats"], row)
    row["closed_form_lost"] = rec.get("closed_form_lost")
    row["config_sha256"] = rec["config_sha256"]
    return row


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep did: every row, and how many runs it ran now."""

    spec: SweepSpec
    rows: list[dict[str, Any]]
    ran: int
    """Runs done by this call (the rest were found in the output directory)."""
    refused: int
    seconds: float


class _Store:
    """The output directory: the spec, one file per finished run, the tables."""

    def __init__(self, out: Path, spec: SweepSpec) -> None:
        self.out = out
        self.runs_dir = out / "runs"
        spec_doc = json.dumps(spec.to_json(), sort_keys=True, indent=2) + "\n"
        spec_path = out / "spec.json"
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            if spec_path.exists() and spec_path.read_text(encoding="utf-8") != spec_doc:
                raise InvalidArgument(
                    f"--out: {out} holds the results of another sweep spec; "
                    "give an empty or new directory"
                )
            _atomic_write(spec_path, spec_doc)
        except OSError as exc:
            raise InvalidArgument(f"--out: cannot write {out}: {exc.strerror or exc}") from None

    def done(self, run: SweepRun) -> dict[str, Any] | None:
        """The stored result of ``run``, if a previous call finished it."""
        path = self.runs_dir / f"{run.key}.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("key") != run.key:
            return None
        return {**doc, "index": run.index}

    def save(self, doc: Mapping[str, Any]) -> None:
        """Keep a finished run (written whole or not at all)."""
        text = json.dumps(dict(doc), sort_keys=True, indent=1, allow_nan=False) + "\n"
        _atomic_write(self.runs_dir / f"{doc['key']}.json", text)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _local(runs: Sequence[SweepRun], workers: int) -> Iterator[dict[str, Any]]:
    """Run on ``workers`` threads (the engine releases the GIL while it runs),
    yielding documents as runs finish. Ctrl-C cancels the runs not started."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: set[Future[dict[str, Any]]] = set()
        queue = iter(runs)
        try:
            for run in itertools.islice(queue, 2 * workers):
                pending.add(pool.submit(run_one, run))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(run_one, nxt))
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


def _dask(
    runs: Sequence[SweepRun], cluster: str | None, scheduler: str | None, workers: int
) -> Iterator[dict[str, Any]]:
    """Run on a Dask cluster: a new ``LocalCluster`` of ``workers`` worker
    processes (``cluster == "local"``), or the scheduler at ``scheduler``."""
    _require("dask")
    distributed = _require("distributed")
    if scheduler is not None:
        client = distributed.Client(scheduler, timeout="30s")
        local = None
    else:
        if cluster != "local":
            raise InvalidArgument(f"--cluster: only 'local' is known, got {cluster!r}")
        local = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(local)
    try:
        futures = client.map(run_one, list(runs), pure=False)
        for fut in distributed.as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if local is not None:
            local.close()


def run_sweep(
    spec: SweepSpec,
    out: str | Path | None = None,
    *,
    workers: int | None = None,
    cluster: str | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> SweepOutcome:
    """Run every run of ``spec`` not already in ``out`` (when given), on
    ``workers`` threads (default: every core), or on Dask with ``cluster =
    "local"`` or a ``scheduler`` address; write the tables to ``out``."""
    t0 = time.monotonic()
    runs = spec.runs()
    clash = set(spec.axes) & set(FIXED_COLUMNS)
    if clash:
        raise InvalidArgument(f"{spec.source}: {sorted(clash)[0]}: is a column name of its own")
    nworkers = workers if workers is not None else (os.cpu_count() or 1)
    if nworkers < 1:
        raise InvalidArgument(f"--workers: must be ≥ 1, got {nworkers}")
    store = _Store(Path(out), spec) if out is not None else None
    docs: dict[int, Mapping[str, Any]] = {}
    for run in runs:
        found = store.done(run) if store is not None else None
        if found is not None:
            docs[run.index] = found
    pending = [r for r in runs if r.index not in docs]
    source: Iterable[dict[str, Any]]
    if cluster is not None or scheduler is not None:
        source = _dask(pending, cluster, scheduler, nworkers) if pending else ()
    else:
        source = _local(pending, nworkers) if pending else ()
    with progress_bar(len(runs), len(docs), show=progress) as bar:
        for doc in source:
            if store is not None:
                store.save(doc)
            docs[int(doc["index"])] = doc
            bar.update(1)
    rows = [_row(run, docs[run.index]) for run in runs]
    refused = sum(1 for r in rows if r["status"] != "ok")
    if store is not None:
        _write_tables(store.out, spec, rows)
    return SweepOutcome(spec, rows, len(pending), refused, time.monotonic() - t0)


def _columns(spec: SweepSpec, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every column in a fixed order: the fixed ones, the axes, then the rest
    in first-seen order (a refused row has fewer)."""
    cols = [*FIXED_COLUMNS, *spec.axes]
    for row in rows:
        cols.extend(c for c in row if c not in cols)
    return cols


def sweep_table(outcome: SweepOutcome) -> pd.DataFrame:
    """The rows as a pandas DataFrame (counts as nullable integers)."""
    _require("pandas")
    import pandas as pd

    cols = _columns(outcome.spec, outcome.rows)
    df = pd.DataFrame.from_records(
        [[row.get(c) for c in cols] for row in outcome.rows], columns=cols
    )
    for c in cols:
        values = [row.get(c) for row in outcome.rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            df[c] = df[c].astype("Int64")
        elif present and all(isinstance(v, str) for v in present):
            df[c] = df[c].astype("string")
    return df


def _write_tables(out: Path, spec: SweepSpec, rows: Sequence[Mapping[str, Any]]) -> None:
    cols = _columns(spec, rows)
    doc = {
        "msixcore": __version__,
        "spec": spec.to_json(),
        "columns": cols,
        "runs": [{c: row.get(c) for c in cols} for row in rows],
    }
    _atomic_write(
        out / "results.json", json.dumps(doc, sort_keys=True, indent=1, allow_nan=False) + "\n"
    )
    outcome = SweepOutcome(spec, list(map(dict, rows)), 0, 0, 0.0)
    df = sweep_table(outcome)
    _require("pyarrow")
    tmp = out / f".results.parquet.{os.getpid()}.tmp"
    df.to_parquet(tmp, index=False)
    os.replace(tmp, out / "results.parquet")


def sweep(
    spec: SweepSpec | Mapping[str, Any] | str | Path,
    out: str | Path | None = None,
    *,
    workers: int | None = None,
    cluster: str | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Run a sweep and return its table as a pandas DataFrame.

    ``spec`` is a path to a ``.toml``/``.json`` spec, the spec as a dict, or a
    :class:`~msixcore.sweep_spec.SweepSpec`. With ``out`` the runs and tables
    are kept there and a rerun does only the runs not yet done.
    """
    if isinstance(spec, SweepSpec):
        checked = spec
    elif isinstance(spec, Mapping):
        checked = parse_sweep_spec(spec)
    else:
        checked = load_sweep_spec(spec)
    _require("pandas")
    outcome = run_sweep(
        checked, out, workers=workers, cluster=cluster, scheduler=scheduler, progress=progress
    )
    return sweep_table(outcome)
