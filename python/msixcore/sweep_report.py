"""Reports of sweeps: figures (matplotlib) and one HTML page (jinja2) from a
sweep's ``results.json``.

The figures, each drawn when the sweep has what it needs:

- ``loss``: lost interrupts per million resizes with the 95 % interval as a
  band, one line per policy (and per value of the other swept parameters),
  across the first swept numeric parameter; the probe and runtime phases side
  by side; a log axis where the values span decades. Seeds are replications:
  their counts are added, so the interval is the exact one of the sum.
- ``resources``: host resources at their peak across the same parameter (CPU
  vectors, IRTEs); for ``host-packing``, the VMs placed before a host
  allocation failed, with reservation mode on and off when it is swept.
- ``heatmap``: lost per million resizes over two swept parameters, for the
  policy that loses the most.
- ``versions``: the kernel × QEMU matrix of which pairs lose interrupts, per
  policy: measured when the sweep varies both, else from the core's version
  rules (a pair whose new entries are resizes loses under edge semantics).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msixcore._core import InvalidArgument, __version__
from msixcore.extras import require
from msixcore.scenarios import get_scenario
from msixcore.stats import per_million

__all__ = ["Figure", "load_results", "render_report", "write_figures"]

_KERNELS = ("5.10", "5.15", "6.1", "6.6", "6.12")
# Lines of equal values would hide each other: each line gets its own style.
_STYLES = [(m, ls) for ls in ("-", "--", "-.", ":") for m in "osD^vP*X"]
_QEMUS = ("7.2", "8.2")


def _require(module: str) -> Any:
    return require(module, "report", "report")


@dataclass(frozen=True)
class Figure:
    """One figure of a report: its file name, title and caption."""

    name: str
    title: str
    caption: str


def load_results(out: str | Path) -> dict[str, Any]:
    """Read a sweep's ``results.json`` from its directory."""
    path = Path(out) / "results.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidArgument(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InvalidArgument(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list) or "spec" not in doc:
        raise InvalidArgument(f"{path}: not the results of msixcore sweep")
    return doc


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _numeric_axes(spec: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Swept parameters with numbers and more than one value."""
    out = []
    for axis in spec["axes"]:
        values = {r.get(axis) for r in runs}
        if len(values) > 1 and all(_is_number(v) for v in values):
            out.append(axis)
    return out


def _varied_axes(spec: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[str]:
    return [a for a in spec["axes"] if len({str(r.get(a)) for r in runs}) > 1]


def _curve_axes(
    spec: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]
) -> tuple[str, list[str]] | None:
    """The x axis of a curve (the first swept numeric parameter) and the other
    swept parameters, whose values label the lines; ``None`` without one."""
    axes = _numeric_axes(spec, runs)
    if not axes:
        return None
    return axes[0], [a for a in _varied_axes(spec, runs) if a != axes[0]]


def _group(
    runs: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> dict[tuple[Any, ...], list[Mapping[str, Any]]]:
    """Runs by the values of ``keys`` (insertion order: the sweep's)."""
    out: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in runs:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def _rate(rows: Sequence[Mapping[str, Any]], lost: str, resizes: str) -> tuple[float, ...] | None:
    """Lost per million resizes over replications (counts added), with its
    interval, or ``None`` when no row ran or no resize happened."""
    ok = [r for r in rows if r.get("status") == "ok"]
    n = sum(int(r[lost]) for r in ok)
    m = sum(int(r[resizes]) for r in ok)
    if not ok or m == 0:
        return None
    rate = per_million(n, m)
    if rate.value is None or rate.lower is None or rate.upper is None:
        return None
    return (rate.value, rate.lower, rate.upper)


def _tick(v: object) -> str:
    """A swept value as a tick label: whole numbers without ``.0``."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _label(policy: str, others: Sequence[str], values: Sequence[Any]) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in zip(others, values, strict=True))
    return f"{policy} ({extra})" if extra else policy


def _log_if_decades(ax: Any, values: Sequence[float], axis: str) -> None:
    positive = [v for v in values if v > 0]
    if len(positive) >= 2 and max(positive) / min(positive) >= 100:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _fig_loss(plt: Any, spec: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Any:
    curve = _curve_axes(spec, runs)
    if curve is None:
        return None
    x_axis, others = curve
    fig, panels = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    drawn = False
    all_y: list[float] = []
    for panel, phase in zip(panels, ("probe", "runtime"), strict=True):
        for (policy, *vals), rows in _group(runs, ["policy", *others]).items():
            xs, ys, lo, hi = [], [], [], []
            for (x,), pts in _group(rows, [x_axis]).items():
                r = _rate(pts, f"{phase}_lost", f"{phase}_resizes")
                if r is None:
                    continue
                xs.append(float(x))
                ys.append(r[0])
                lo.append(r[1])
                hi.append(r[2])
            if not xs:
                continue
            drawn = True
            label = _label(policy, others, vals)
            if not any(ys):
                # Nothing lost: draw the interval's upper bound alone (a band
                # down to 0 has no place on a log axis).
                panel.plot(xs, hi, ls=":", marker="v", label=f"{label}: 0 lost, 95% upper bound")
                continue
            all_y += [y for y in ys if y > 0]
            marker, ls = _STYLES[len(panel.lines) % len(_STYLES)]
            (line,) = panel.plot(xs, ys, marker=marker, ls=ls, label=label)
            panel.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
        panel.set_title(f"{phase}")
        panel.set_xlabel(x_axis)
        panel.grid(True, alpha=0.3)
        _log_if_decades(panel, [float(r[x_axis]) for r in runs], "x")
    if not drawn:
        plt.close(fig)
        return None
    panels[0].set_ylabel("lost per million resizes (95% interval)")
    _log_if_decades(panels[0], all_y, "y")
    for panel in panels:
        if panel.lines:
            panel.legend(fontsize=8, loc="best")
            break
    fig.suptitle(f"{spec['scenario']}: lost per million resizes across {x_axis}")
    fig.tight_layout()
    return fig


def _vms_placed(spec: Mapping[str, Any], row: Mapping[str, Any]) -> int | None:
    """VMs that kept running: the scenario's VMs less the ones killed."""
    scenario, variant = get_scenario(str(spec["scenario"]))
    if scenario.name != "host-packing" or row.get("status") != "ok":
        return None
    merged = {**(scenario.variant(variant) if variant else {}), **spec["params"]}
    merged.update({a: row[a] for a in spec["axes"]})
    vms = int(scenario.resolve(merged)["vms"])
    return vms - int(row["guest_kills"])


def _fig_resources(plt: Any, spec: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Any:
    curve = _curve_axes(spec, runs)
    if curve is None:
        return None
    x_axis, others = curve
    packing = str(spec["scenario"]).startswith("host-packing")
    metrics = [("peak_usage_cpu_vectors", "peak CPU vectors"), ("peak_usage_irtes", "peak IRTEs")]
    if packing:
        metrics.insert(0, ("vms_placed", "VMs placed before a host allocation failed"))
    fig, panels = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2))
    for panel, (metric, title) in zip(panels, metrics, strict=True):
        for (policy, *vals), rows in _group(runs, ["policy", *others]).items():
            xs, ys = [], []
            for (x,), pts in _group(rows, [x_axis]).items():
                values = [
                    _vms_placed(spec, p) if metric == "vms_placed" else p.get(metric)
                    for p in pts
                    if p.get("status") == "ok"
                ]
                nums = [float(v) for v in values if v is not None]
                if nums:
                    xs.append(float(x))
                    ys.append(sum(nums) / len(nums))
            if xs:
                marker, ls = _STYLES[len(panel.lines) % len(_STYLES)]
                panel.plot(xs, ys, marker=marker, ls=ls, label=_label(policy, others, vals))
        panel.set_title(title)
        panel.set_xlabel(x_axis)
        panel.grid(True, alpha=0.3)
        _log_if_decades(panel, [float(r[x_axis]) for r in runs], "x")
    panels[-1].legend(fontsize=8, loc="best")
    fig.suptitle(f"{spec['scenario']}: host resources across {x_axis} (mean over seeds)")
    fig.tight_layout()
    return fig


def _fig_heatmap(plt: Any, spec: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Any:
    varied = _varied_axes(spec, runs)
    if len(varied) < 2:
        return None
    a1, a2 = varied[0], varied[1]
    by_policy = _group(runs, ["policy"])
    best, best_lost = None, -1
    for (policy,), rows in by_policy.items():
        lost = sum(int(r["lost"]) for r in rows if r.get("status") == "ok")
        if lost > best_lost:
            best, best_lost = policy, lost
    rows = by_policy[(best,)]
    xs = list(dict.fromkeys(r[a1] for r in runs))
    ys = list(dict.fromkeys(r[a2] for r in runs))
    grid = [[math.nan for _ in xs] for _ in ys]
    for (x, y), pts in _group(rows, [a1, a2]).items():
        r = _rate(pts, "lost", "resizes")
        if r is not None:
            grid[ys.index(y)][xs.index(x)] = r[0]
    fig, ax = plt.subplots(figsize=(1.2 * len(xs) + 3, 0.6 * len(ys) + 2.5))
    image = ax.imshow(grid, aspect="auto", cmap="viridis", origin="lower")
    ax.set_xticks(range(len(xs)), [_tick(x) for x in xs], rotation=30)
    ax.set_yticks(range(len(ys)), [_tick(y) for y in ys])
    ax.set_xlabel(a1)
    ax.set_ylabel(a2)
    for j, row in enumerate(grid):
        for i, v in enumerate(row):
            text = "n/a" if math.isnan(v) else f"{v:.3g}"
            ax.text(i, j, text, ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, ax=ax, label="lost per million resizes")
    ax.set_title(f"{best}: lost per million resizes over {a1} × {a2}")
    fig.tight_layout()
    return fig


def _version_cells(
    spec: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], policy: str
) -> tuple[list[str], list[str], list[list[str]], bool]:
    """Rows (kernels), columns (QEMUs) and each cell: ``loses``, ``none`` or
    ``refused`` (measured), or ``resizes`` / ``dynamic`` from the rules."""
    if {"kernel", "qemu"} <= set(spec["axes"]):
        kernels = list(dict.fromkeys(str(r["kernel"]) for r in runs))
        qemus = list(dict.fromkeys(str(r["qemu"]) for r in runs))
        cells = []
        for k in kernels:
            row = []
            for q in qemus:
                pts = [
                    r
                    for r in runs
                    if r["policy"] == policy and str(r["kernel"]) == k and str(r["qemu"]) == q
                ]
                ok = [r for r in pts if r.get("status") == "ok"]
                if not ok:
                    row.append("refused")
                else:
                    row.append("loses" if any(int(r["lost"]) > 0 for r in ok) else "none")
            cells.append(row)
        return kernels, qemus, cells, True
    from msixcore.versions import behaviours

    cells = []
    for k in _KERNELS:
        row = []
        for q in _QEMUS:
            b = behaviours(k, q)
            if policy == "noresize":
                row.append("resizes")  # a NORESIZE host: every new entry is a resize
            elif policy == "dynamic":
                dynamic = b["vfio_dynamic_msix"] and b["qemu_honours_noresize"]
                row.append("no resize" if dynamic else "refused")
            else:
                row.append("no resize")  # every vector set up before the driver uses it
        cells.append(row)
    return list(_KERNELS), list(_QEMUS), cells, False


_CELL_COLOURS = {
    "loses": "#d62728",
    "resizes": "#ff9896",
    "none": "#2ca02c",
    "no resize": "#98df8a",
    "refused": "#c7c7c7",
}


def _fig_versions(plt: Any, spec: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Any:
    policies = list(dict.fromkeys(str(r["policy"]) for r in runs))
    fig, panels = plt.subplots(1, len(policies), figsize=(3.2 * len(policies) + 1, 4.0))
    if len(policies) == 1:
        panels = [panels]
    measured = False
    for panel, policy in zip(panels, policies, strict=True):
        kernels, qemus, cells, measured = _version_cells(spec, runs, policy)
        for j, row in enumerate(cells):
            for i, cell in enumerate(row):
                panel.add_patch(
                    plt.Rectangle((i, j), 1, 1, color=_CELL_COLOURS[cell], ec="white", lw=2)
                )
                panel.text(i + 0.5, j + 0.5, cell, ha="center", va="center", fontsize=8)
        panel.set_xlim(0, len(qemus))
        panel.set_ylim(0, len(kernels))
        panel.set_xticks([i + 0.5 for i in range(len(qemus))], [f"QEMU {q}" for q in qemus])
        panel.set_yticks([j + 0.5 for j in range(len(kernels))], kernels)
        panel.set_title(policy)
    panels[0].set_ylabel("host kernel")
    how = "measured in this sweep" if measured else "from the version rules (not swept)"
    fig.suptitle(f"Which kernel × QEMU pairs lose interrupts: {how}")
    fig.tight_layout()
    return fig


_FIGURES: list[tuple[str, str, str, Any]] = [
    (
        "loss",
        "Lost interrupts per million resizes",
        "Each line is a policy (and the other swept values); the band is the 95 % Garwood "
        "interval of the seeds' summed counts. Probe-time resizes (the driver initialising) and "
        "runtime ones are apart.",
        _fig_loss,
    ),
    (
        "resources",
        "Host resources",
        "Peak host CPU vectors and IRTEs (mean over seeds); for host-packing, the VMs placed "
        "before a host allocation failed.",
        _fig_resources,
    ),
    (
        "heatmap",
        "Loss over two parameters",
        "Lost per million resizes of the policy that loses the most, over the first two swept "
        "parameters (seeds added).",
        _fig_heatmap,
    ),
    (
        "versions",
        "Kernel × QEMU",
        "Red: the pair loses interrupts under that policy; grey: the engine refuses the pair "
        "(e.g. dynamic MSI-X needs QEMU 8.2).",
        _fig_versions,
    ),
]


def write_figures(doc: Mapping[str, Any], outdir: str | Path) -> list[Figure]:
    """Draw every figure the sweep supports as ``OUTDIR/NAME.png``."""
    matplotlib = _require("matplotlib")
    matplotlib.use("Agg")
    plt = _require("matplotlib.pyplot")
    out = Path(outdir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgument(f"{out}: cannot create: {exc.strerror or exc}") from None
    spec, runs = doc["spec"], doc["runs"]
    figures = []
    for name, title, caption, draw in _FIGURES:
        fig = draw(plt, spec, runs)
        if fig is None:
            continue
        # A fixed date and no software tag keep the PNG bytes reproducible.
        fig.savefig(out / f"{name}.png", dpi=110, metadata={"Software": None})
        plt.close(fig)
        figures.append(Figure(name, title, caption))
    return figures


def render_report(
    results_dir: str | Path, output: str | Path, png_dir: str | Path | None = None
) -> list[Figure]:
    """Write the HTML page ``output`` for the sweep in ``results_dir``, its
    figures in ``output``'s ``NAME_files/`` folder (or ``png_dir``)."""
    jinja2 = _require("jinja2")
    doc = load_results(results_dir)
    page = Path(output)
    folder = Path(png_dir) if png_dir is not None else page.with_name(f"{page.stem}_files")
    figures = write_figures(doc, folder)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("msixcore", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    rows = doc["runs"]
    ok = [r for r in rows if r.get("status") == "ok"]
    try:
        rel = folder.resolve().relative_to(page.resolve().parent)
    except ValueError:
        rel = folder.resolve()
    text = env.get_template("report.html.j2").render(
        version=__version__,
        spec=doc["spec"],
        spec_json=html.escape(json.dumps(doc["spec"], indent=1, sort_keys=True)),
        runs=len(rows),
        ok=len(ok),
        refused=len(rows) - len(ok),
        figures=[(f, f"{rel.as_posix()}/{f.name}.png") for f in figures],
    )
    try:
        page.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"{page}: cannot write: {exc.strerror or exc}") from None
    return figures
