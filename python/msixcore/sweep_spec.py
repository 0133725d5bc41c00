"""Sweep specifications: which runs a sweep makes, from a TOML (or JSON) file
or a dict.

A spec names one built-in scenario (or a variant), the policies, the seeds
(replications) and the parameters to vary::

    scenario = "storm"                  # or "host-packing:no-reservation"
    policies = ["noresize", "dynamic"]  # default: every policy of the scenario
    seeds = [1, 2, 3]                   # default: [0]
    resizes = 2048                      # optional: the resize target
    mode = "aggregated"                 # optional: event (default) or aggregated
    [params]                            # fixed parameter overrides
    devices = 4
    [grid]                              # the cartesian product of these
    rate = [5000, 10000, 20000, 40000]
    qemu = ["7.2", "8.2"]
    [zip]                               # advanced together, equal lengths
    w0 = ["10us", "20us"]
    w_free = ["500ns", "1us"]
    [[points]]                          # explicit points, one table each
    gap = "2ms"

The runs are every point of ``points`` × every row of ``zip`` × every
combination of ``grid`` (the last grid key varying fastest), each under every
policy and seed, in that order: the order of the result rows. A parameter may
be set in only one of ``params``, ``grid``, ``zip`` and ``points``; ``kernel``
and ``qemu`` are parameters of every scenario. Every value is checked with the
scenario's own parser before anything runs, and an error is one line naming
the file and the field: ``sweep.toml: grid.rate[2]: rate: must be > 0, got 0``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msixcore._core import InvalidArgument
from msixcore.engine_config import POLICIES
from msixcore.nesting import check_depth
from msixcore.parameters import ParamValue
from msixcore.scenario_file import read_document
from msixcore.scenarios import Scenario, get_scenario

__all__ = ["SweepRun", "SweepSpec", "load_sweep_spec", "parse_sweep_spec"]

_KEYS = (
    "scenario",
    "name",
    "description",
    "policies",
    "seeds",
    "resizes",
    "mode",
    "params",
    "grid",
    "zip",
    "points",
)
_MODES = ("event", "aggregated")
_U64 = (1 << 64) - 1
_MAX_RUNS = 1_000_000
"""A spec expanding to more runs than this is refused before anything is built."""


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a scenario point under one policy and seed."""

    index: int
    """Position in the sweep's order (the row of the results)."""
    scenario: str
    """``name`` or ``name:variant``."""
    swept: dict[str, ParamValue]
    """The values of the swept parameters at this point, parsed (user units)."""
    params: dict[str, ParamValue]
    """Every parameter of the scenario at this point, parsed."""
    policy: str
    seed: int
    resizes: int | None
    mode: str
    key: str
    """A digest of everything that decides the run: the name of its result
    file, so a rerun finds the runs already done."""


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep specification."""

    source: str
    scenario: Scenario
    variant: str | None
    policies: tuple[str, ...]
    seeds: tuple[int, ...]
    resizes: int | None
    mode: str
    params: dict[str, object]
    """Fixed overrides, as given."""
    axes: tuple[str, ...]
    """The swept parameters, in order: points' keys, zip's, then grid's."""
    points: tuple[dict[str, object], ...]
    """Each point's swept values, as given, in run order."""
    name: str | None = None

    @property
    def label(self) -> str:
        """The scenario as named in the spec (``name`` or ``name:variant``)."""
        return f"{self.scenario.name}:{self.variant}" if self.variant else self.scenario.name

    def to_json(self) -> dict[str, Any]:
        """The spec in canonical form (for the results file)."""
        return {
            "scenario": self.label,
            "name": self.name,
            "policies": list(self.policies),
            "seeds": list(self.seeds),
            "resizes": self.resizes,
            "mode": self.mode,
            "params": dict(self.params),
            "axes": list(self.axes),
            "points": [dict(p) for p in self.points],
        }

    def runs(self) -> list[SweepRun]:
        """Every run, in order; each point's parameters parsed and checked."""
        out: list[SweepRun] = []
        base = dict(self.scenario.variant(self.variant)) if self.variant else {}
        for p_index, point in enumerate(self.points):
            try:
                params = self.scenario.resolve({**base, **self.params, **point})
            except InvalidArgument as exc:
                where = ", ".join(f"{k}={v!r}" for k, v in point.items()) or "defaults"
                raise InvalidArgument(f"{self.source}: point {p_index} ({where}): {exc}") from None
            swept = {name: params[name] for name in self.axes}
            for policy in self.policies:
                for seed in self.seeds:
                    out.append(
                        SweepRun(
                            index=len(out),
                            scenario=self.label,
                            swept=swept,
                            params=params,
                            policy=policy,
                            seed=seed,
                            resizes=self.resizes,
                            mode=self.mode,
                            key=_run_key(self.label, params, policy, seed, self.resizes, self.mode),
                        )
                    )
        return out


def _run_key(
    scenario: str,
    params: Mapping[str, ParamValue],
    policy: str,
    seed: int,
    resizes: int | None,
    mode: str,
) -> str:
    doc = {
        "scenario": scenario,
        "params": dict(params),
        "policy": policy,
        "seed": seed,
        "resizes": resizes,
        "mode": mode,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _fail(source: str, msg: str) -> InvalidArgument:
    return InvalidArgument(f"{source}: {msg}")


def _list(doc: Mapping[str, Any], key: str, source: str) -> list[Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise _fail(source, f"{key}: must be a non-empty list, got {value!r}")
    return value


def _values(table: object, where: str, source: str) -> dict[str, list[Any]]:
    """A table of parameter = non-empty list of values."""
    if not isinstance(table, Mapping):
        raise _fail(source, f"{where}: must be a table of parameter = [values]")
    out: dict[str, list[Any]] = {}
    for name, values in table.items():
        if not isinstance(values, list) or not values:
            raise _fail(source, f"{where}.{name}: must be a non-empty list, got {values!r}")
        out[str(name)] = values
    return out


def _check_values(
    scenario: Scenario, where: str, name: str, values: Sequence[object], source: str
) -> None:
    """Parse each value with the scenario's parameter (errors name the element)."""
    try:
        param = scenario.param(name)
    except InvalidArgument as exc:
        raise _fail(source, f"{where}.{name}: {exc}") from None
    for i, v in enumerate(values):
        try:
            param.parse(v)
        except InvalidArgument as exc:
            raise _fail(source, f"{where}.{name}[{i}]: {exc}") from None


def parse_sweep_spec(doc: object, source: str = "sweep spec") -> SweepSpec:
    """Check a parsed spec (a dict) and turn it into a :class:`SweepSpec`."""
    check_depth(doc, source)
    if not isinstance(doc, Mapping):
        raise _fail(source, "must hold a table/object at the top level")
    for key in doc:
        if key not in _KEYS:
            raise _fail(source, f"{key}: unknown key (expected one of {', '.join(_KEYS)})")
    name = doc.get("scenario")
    if not isinstance(name, str):
        raise _fail(source, f"scenario: must name a built-in scenario, got {name!r}")
    try:
        scenario, variant = get_scenario(name)
    except InvalidArgument as exc:
        msg = str(exc)
        raise _fail(source, msg if msg.startswith("scenario") else f"scenario: {msg}") from None
    for key in ("name", "description"):
        if key in doc and not isinstance(doc[key], str):
            raise _fail(source, f"{key}: must be a string, got {doc[key]!r}")

    policies = _list(doc, "policies", source) or list(scenario.policies)
    for i, p in enumerate(policies):
        if not isinstance(p, str) or p not in POLICIES:
            raise _fail(
                source, f"policies[{i}]: unknown policy {p!r} (known: {', '.join(POLICIES)})"
            )
        if p not in scenario.policies:
            raise _fail(
                source,
                f"policies[{i}]: {scenario.name} does not apply to {p!r} "
                f"(it does to {', '.join(scenario.policies)})",
            )
    if len(set(policies)) != len(policies):
        raise _fail(source, "policies: a policy is listed twice")
    seeds = _list(doc, "seeds", source) or [0]
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= _U64:
            raise _fail(source, f"seeds[{i}]: must be an integer in 0..2^64-1, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise _fail(source, "seeds: a seed is listed twice (each is one replication)")
    resizes = doc.get("resizes")
    if resizes is not None:
        if isinstance(resizes, bool) or not isinstance(resizes, int) or not 1 <= resizes <= _U64:
            raise _fail(source, f"resizes: must be an integer ≥ 1, got {resizes!r}")
        if scenario.time_bounded:
            raise _fail(source, f"resizes: {scenario.name} runs for a fixed time, not to a count")
    mode = doc.get("mode", "event")
    if mode not in _MODES:
        raise _fail(source, f"mode: must be event or aggregated, got {mode!r}")

    params = doc.get("params", {})
    if not isinstance(params, Mapping):
        raise _fail(source, "params: must be a table of parameter = value")
    for pname, value in params.items():
        _check_values(scenario, "params", str(pname), [value], source)
    grid = _values(doc.get("grid", {}), "grid", source)
    zipped = _values(doc.get("zip", {}), "zip", source)
    raw_points = doc.get("points", [])
    if not isinstance(raw_points, list) or not all(isinstance(p, Mapping) for p in raw_points):
        raise _fail(source, "points: must be a list of tables of parameter = value")

    seen: dict[str, str] = {pname: "params" for pname in params}
    point_keys: list[str] = []
    for i, point in enumerate(raw_points):
        for pname, value in point.items():
            _check_values(scenario, f"points[{i}]", str(pname), [value], source)
            if pname not in point_keys:
                point_keys.append(str(pname))
    for where, table in (("zip", zipped), ("grid", grid)):
        for pname, values in table.items():
            _check_values(scenario, where, pname, values, source)
    for where, names in (("points", point_keys), ("zip", list(zipped)), ("grid", list(grid))):
        for pname in names:
            if pname in seen:
                raise _fail(source, f"{where}.{pname}: also set in {seen[pname]}")
            seen[pname] = where
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise _fail(source, f"zip: every list must have the same length, got {sorted(lengths)}")

    zip_rows: list[dict[str, object]] = (
        [dict(zip(zipped, row, strict=True)) for row in zip(*zipped.values(), strict=True)]
        if zipped
        else [{}]
    )
    grid_rows = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    point_rows: list[dict[str, object]] = [dict(p) for p in raw_points] or [{}]
    count = len(point_rows) * len(zip_rows) * len(grid_rows) * len(policies) * len(seeds)
    if count > _MAX_RUNS:
        raise _fail(source, f"the sweep has {count:,} runs; at most {_MAX_RUNS:,} are allowed")
    points = tuple(
        {**p, **z, **g} for p, z, g in itertools.product(point_rows, zip_rows, grid_rows)
    )
    axes = tuple(point_keys + list(zipped) + list(grid))
    return SweepSpec(
        source=source,
        name=doc.get("name"),
        scenario=scenario,
        variant=variant,
        policies=tuple(policies),
        seeds=tuple(seeds),
        resizes=resizes,
        mode=mode,
        params=dict(params),
        axes=axes,
        points=points,
    )


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and check a ``.toml`` or ``.json`` sweep spec."""
    return parse_sweep_spec(read_document(path), str(path))
