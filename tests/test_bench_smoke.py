"""Smoke versions of the benchmarks (issue 4), so none of them rots: every
pytest-benchmark function runs once at a tiny size, the SimPy baseline agrees
with the storm's closed form (and with msixcore on the same storm), and the
memory script runs on a small host. The criterion benches' workloads are
smoke-run by ``rust/core/tests/bench_smoke.rs`` under ``cargo test``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from simpy_storm import run_storm
from storm import closed_form_lost, cycle_resizes, msixcore_config, msixcore_config_json, resolve

import msixcore.scenarios
from msixcore._core import run_simulation

BENCHES = Path(__file__).resolve().parent.parent / "benches"

# The CLI's storm, small but window-heavy: ~38k fires, ~13k of them lost, in ~0.2 s of SimPy.
SMALL = {"devices": 4, "table": 16, "init": 2, "gap": 100e-6, "rate": 50_000.0, "w0": 50e-6}
CYCLES = 10


def test_every_python_benchmark_runs_once() -> None:
    env = {**os.environ, "MSIXCORE_BENCH_SMOKE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(BENCHES / "test_bench_python.py"), "-q",
         "--benchmark-disable", "-p", "no:cacheprovider"],
        capture_output=True, text=True, env=env, cwd=BENCHES.parent, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "9 passed" in proc.stdout, proc.stdout


def test_simpy_storm_models_the_clis_storm() -> None:
    """The SimPy model reads the parameters the CLI's config is built from."""
    s = resolve(SMALL)
    cfg = msixcore_config(SMALL, 64)
    assert cfg == msixcore.scenarios.SCENARIOS["storm"].build(SMALL, "noresize", 1, 64)
    assert len(cfg["devices"]) == s.devices == 4
    dev = cfg["devices"][0]
    assert (dev["entries"], dev["rate"], dev["semantics"]) == (s.table, s.rate, s.semantics)
    timing = cfg["timing"]
    assert (timing["w0_ns"], timing["w_free_ns"], timing["w_alloc_ns"]) == (50_000, 500, 500)
    assert (s.w0_ns, s.w_free_ns, s.w_alloc_ns) == (50_000, 500, 500) and s.early_enable
    unmasks = [st["delay_ns"] for st in dev["program"] if st["action"]["op"] == "unmask"]
    assert unmasks == [0] * s.init + [s.gap_ns] * (s.table - s.init)
    assert (cfg["host"]["ncpus"], cfg["handler"]["service_ns"]) == (32, 1_000)


def test_simpy_storm_matches_the_closed_form() -> None:
    resizes = CYCLES * cycle_resizes(SMALL)
    c = run_storm(SMALL, resizes, seed=11)
    want = closed_form_lost(SMALL, resizes)
    assert c.resizes == resizes
    assert c.fired == c.lost + c.delivered
    assert abs(c.lost - want) < 4 * want**0.5, (c.lost, want)


def test_msixcore_storm_matches_the_closed_form_too() -> None:
    resizes = CYCLES * cycle_resizes(SMALL)
    r = json.loads(run_simulation(msixcore_config_json(SMALL, resizes, seed=11)))
    want = closed_form_lost(SMALL, resizes)
    lost = r["books"]["outcomes"]["lost"]
    assert abs(lost - want) < 4 * want**0.5, (lost, want)


def test_memory_script_on_a_small_host() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCHES / "memory.py"), "--cpus", "8", "--iommus", "2",
         "--devices", "20", "--entries", "64"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "VmRSS" in proc.stdout and "within the limit" in proc.stdout


def test_profile_table_divides_each_stage_by_its_unit() -> None:
    """``benches/profile_storm.py`` (needs valgrind, not run here): its table turns
    inclusive counts into instructions per event and per resize."""
    from profile_storm import table

    out = table(
        {
            "mode": "event",
            "resizes": 10,
            "fired": 1000,
            "lost": 0,
            "total": 500_000,
            "stages": {"Engine>::fire_until": 300_000, "Host>::enable_vectors": 40_000},
        }
    )
    assert "= 500 per event, 50,000 per resize" in out
    assert "| fire path: draw, pick, learnt route, CPU handler | 300 | event |" in out
    assert "| enable_vectors (alloc + request_irq each vector) | 4,000 | resize |" in out
    assert "no learnt route" not in out  # stages without a count are left out


def test_profile_storm_charges_each_instruction_to_the_source_it_was_written_in() -> None:
    """``profile_storm.py --by-source``: an instruction-level callgrind file is read
    with relative and repeated positions, a call's inclusive cost is not charged to
    the caller's instruction, and each address goes to its innermost frame of ours."""
    from profile_storm import by_source, innermost_sources, instruction_counts, sources_table

    callgrind = "\n".join(
        [
            "version: 1",
            "positions: instr line",
            "events: Ir",
            "ob=(1) /repo/target/storm",
            "fl=(1) /src/a.rs",
            "fn=(1) f",
            "0x1000 10 5",
            "+4 11 7",
            "* * 1",
            "cob=(2) /lib/libc.so.6",
            "cfn=(3) memcpy",
            "calls=1 0x1000 0",
            "+2 12 40",
            "cfn=(2) g",
            "calls=3 0x2000 20",
            "+2 12 900",
            "-8 10 2",
            "fn=(2) g",
            "0x2000 20 9",
            "ob=(2)",
            "fn=(3)",
            "0x1000 0 40",
        ]
    )
    counts, other = instruction_counts(callgrind, "/repo/target/storm")
    # libc's offset 0x1000 is not the binary's instruction 0x1000.
    assert counts == {0x1000: 7, 0x1004: 8, 0x2000: 9} and other == 40
    addr2line = "\n".join(
        [
            "0x0000000000001000",
            "core::slice::index",
            "/rustc/abc/library/core/src/slice/index.rs:10",
            "msixcore_core::irte::IrteTable::set",
            "/repo/rust/core/src/irte.rs:588",
            "msixcore_core::host::X::program",
            "/repo/rust/core/src/host/remapper.rs:55",
            "0x0000000000001004",
            "msixcore_core::host::X::program",
            "/repo/rust/core/src/host/remapper.rs:59",
            "0x0000000000002000",
            "memset",
            "??:0",
        ]
    )
    where = innermost_sources(addr2line, "/repo/rust/core/src")
    assert where == {0x1000: "irte.rs", 0x1004: "host/remapper.rs"}
    sources = by_source(counts, where, other)
    assert sources == {"?": 49, "host/remapper.rs": 8, "irte.rs": 7}
    out = sources_table(
        {"mode": "aggregated", "resizes": 2, "fired": 100, "sources": sources}, top=2
    )
    assert "| ? | 24 |" in out and "| host/remapper.rs | 4 |" in out and "irte.rs" not in out


def test_hundred_million_script_at_two_cycles() -> None:
    """``benches/hundred_million.py`` at 2 × 1 storm cycle (1,000 rounds up to 2,048):
    the merged loss agrees with the closed form; bad counts are refused."""
    from hundred_million import main, measure

    r = measure(1000, 2)
    assert r["resizes"] == 2048 and r["replications"] == 2
    expected = r["closed_form_lost"]
    assert abs(r["lost"] - expected) <= 4 * expected**0.5
    lo, hi = r["ci95"]
    assert lo < r["lost_per_million"] < hi
    with pytest.raises(ValueError, match="replications"):
        measure(2048, 0)
    assert main(["--resizes", "0"]) == 2


def test_soak_checks_can_fail() -> None:
    """``benches/soak.py``'s workloads cover every scenario, policy and mode,
    and its checks catch a thread-count difference and unconserved books."""
    from soak import MODES, check_run, workloads

    labels = {label for label, *_ in workloads()}
    for name, scenario in msixcore.scenarios.SCENARIOS.items():
        for policy in scenario.policies:
            assert {f"{name}/{policy}/{m}" for m in MODES} <= labels
    cfg = msixcore_config_json(SMALL, 64, mode="aggregated")
    from msixcore._core import run_replications

    two, one = run_replications(cfg, [5, 6], 2), run_replications(cfg, [5, 6], 1)
    fired, problems = check_run("small", [5, 6], two, one)
    assert problems == [] and fired > 0
    _, problems = check_run("small", [5, 6], two, run_replications(cfg, [5, 7], 1))
    assert problems == ["small seeds [5, 6]: results differ between 1 and 2 threads"]
    broken = json.loads(two)
    broken["replications"][0]["outcomes"]["lost"] += 1
    broken["books"]["fired"] += 1
    _, problems = check_run("small", [5, 6], json.dumps(broken), json.dumps(broken))
    assert problems == [
        "small seeds [5, 6]: merged books do not conserve",
        "small seed 5: books do not conserve",
        "small seeds [5, 6]: the merge lost fired interrupts",
    ]
