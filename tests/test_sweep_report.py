"""Sweep reports: the figures, the page, and the page as a browser loads it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

from msixcore import InvalidArgument, parse_sweep_spec
from msixcore.sweep import run_sweep
from msixcore.sweep_report import load_results, render_report, write_figures

SPEC: dict[str, Any] = {
    "scenario": "storm",
    "policies": ["noresize", "hypercall", "dynamic"],
    "seeds": [1, 2],
    "resizes": 128,
    "params": {"devices": 2, "table": 16},
    "grid": {"rate": [5000, 20000], "qemu": ["7.2", "8.2"]},
}


@pytest.fixture(scope="module")
def storm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    run_sweep(parse_sweep_spec(SPEC), out)
    return out


def _png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    img = matplotlib.image.imread(path)
    return int(img.shape[1]), int(img.shape[0])


def test_the_page_shows_every_figure(storm_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    figures = render_report(storm_dir, page)
    assert [f.name for f in figures] == ["loss", "resources", "heatmap", "versions"]
    text = page.read_text(encoding="utf-8")
    srcs = re.findall(r'<img class="figure" src="([^"]+)"', text)
    assert srcs == [f"report_files/{f.name}.png" for f in figures]
    for src in srcs:
        width, height = _png_size(tmp_path / src)
        assert width > 400 and height > 200
    assert "24 runs (20 ran, 4 refused by the engine)" in text


def test_png_only(storm_dir: Path, tmp_path: Path) -> None:
    figures = write_figures(load_results(storm_dir), tmp_path / "png")
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(
        f"{f.name}.png" for f in figures
    )


def test_figures_are_drawn_only_when_the_sweep_has_what_they_need(tmp_path: Path) -> None:
    # One swept value: no curve to draw, no heat map; the version matrix stays.
    out = tmp_path / "one"
    run_sweep(parse_sweep_spec({**SPEC, "grid": {"rate": [5000]}}), out)
    names = [f.name for f in write_figures(load_results(out), tmp_path / "png")]
    assert names == ["versions"]


def test_the_version_matrix_is_measured_when_both_versions_are_swept() -> None:
    from msixcore.sweep_report import _version_cells

    spec = {"axes": ["kernel", "qemu"], "scenario": "storm"}
    runs = [
        {"policy": "noresize", "kernel": "6.12", "qemu": "8.2", "status": "ok", "lost": 3},
        {"policy": "dynamic", "kernel": "6.12", "qemu": "8.2", "status": "ok", "lost": 0},
        {"policy": "dynamic", "kernel": "6.12", "qemu": "7.2", "status": "refused", "lost": None},
    ]
    _, qemus, cells, measured = _version_cells(spec, runs, "dynamic")
    assert measured and qemus == ["8.2", "7.2"] and cells == [["none", "refused"]]
    assert _version_cells(spec, runs, "noresize")[2] == [["loses", "refused"]]
    # Not swept: from the core's rules (dynamic MSI-X needs kernel 6.5+ and QEMU 8.2+).
    kernels, qemus, cells, measured = _version_cells({"axes": ["rate"]}, runs, "dynamic")
    assert not measured
    assert cells[kernels.index("6.12")][qemus.index("8.2")] == "no resize"
    assert cells[kernels.index("6.1")][qemus.index("8.2")] == "refused"
    assert cells[kernels.index("6.12")][qemus.index("7.2")] == "refused"


def test_host_packing_counts_the_vms_placed(tmp_path: Path) -> None:
    from msixcore.sweep_report import _vms_placed

    spec = {
        "scenario": "host-packing",
        "policies": ["upfront"],
        "seeds": [1],
        "params": {"vms": 24},
        "grid": {"cpus": [8, 16], "reservation_mode": [True, False]},
    }
    out = tmp_path / "hp"
    run_sweep(parse_sweep_spec(spec), out)
    doc = load_results(out)
    placed = {(r["cpus"], r["reservation_mode"]): _vms_placed(doc["spec"], r) for r in doc["runs"]}
    # With reservation mode every VM fits; without it, upfront allocation exhausts
    # the CPU vectors after a few VMs, and more CPUs place more.
    assert placed[(8, True)] == placed[(16, True)] == 24
    assert placed[(8, False)] is not None and placed[(16, False)] is not None
    assert placed[(8, False)] < placed[(16, False)] < 24
    names = [f.name for f in write_figures(doc, tmp_path / "png")]
    assert "resources" in names


def test_not_a_sweep_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"results\.json: cannot read"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("[]", encoding="utf-8")
    with pytest.raises(InvalidArgument, match="not the results of msixcore sweep"):
        load_results(tmp_path)


def test_cli_report(storm_dir: Path, tmp_path: Path) -> None:
    run = [sys.executable, "-m", "msixcore", "report", str(storm_dir)]
    proc = subprocess.run([*run, "-o", str(tmp_path / "r.html")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "4 figures" in proc.stdout and (tmp_path / "r_files" / "loss.png").exists()
    proc = subprocess.run(run, capture_output=True, text=True)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == "msixcore: error: report: give -o PAGE.html, --png OUTDIR, or both"
    )


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _loaded(page: Path) -> tuple[int, int]:
    """Open ``page`` in headless Chromium: (figures expected, figures that loaded)."""
    browser = _chromium()
    assert browser is not None
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r'id="figures-loaded" data-expected="(\d+)" data-loaded="(\d+)"', proc.stdout)
    assert m is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    return int(m.group(1)), int(m.group(2))


@pytest.mark.skipif(
    _chromium() is None, reason="headless Chromium is not installed (.ci/run installs it)"
)
def test_headless_chromium_loads_every_figure(storm_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    figures = render_report(storm_dir, page)
    assert _loaded(page) == (len(figures), len(figures))
    # The check can fail: a missing figure is seen as not loaded.
    (tmp_path / "report_files" / "heatmap.png").unlink()
    assert _loaded(page) == (len(figures), len(figures) - 1)
