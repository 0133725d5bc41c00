"""The spoof scenario (docs/spoof.md): a malicious VFIO device forges MSI
writes, and the model's IOMMUs must block each for its own reason on Intel
and on AMD, let none reach another device or VM, count what overflows the
fault log, keep the books balanced, and still deliver the forger's own
legitimate interrupts (so a model that blocked everything would fail)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from msixcore import AccountingError, Device, Host, InvalidArgument, Spoof, guest
from msixcore.cli import compare_jobs, main
from msixcore.engine_config import FAULT_REASONS, SPOOF_KINDS
from msixcore.scenarios import SCENARIOS
from msixcore.simulation import RunResult, parse_result, run_config, run_replications

SPOOF = SCENARIOS["spoof"]

# The one reason each kind must be blocked for (Intel: VT-d fault reasons
# 26h, 25h, 20h; a DMA write outside the window on both). The sub-handle
# sweep is checked on its own: where it lands depends on who holds the IRTEs.
INTEL = {
    "foreign_handle": "sid_mismatch",
    "compat_format": "compat_format_blocked",
    "reserved_bits": "reserved_request_field",
    "outside_window": "not_in_interrupt_window",
}
# AMD looks every index up in the forger's own table: a copied index or a
# compat vector names an entry it never allocated (or one of its own).
AMD = {
    "foreign_handle": "not_present",
    "compat_format": "not_present",
    "reserved_bits": "reserved_request_field",
    "outside_window": "not_in_interrupt_window",
}


def config(iommu: str, mode: str = "event", **params: object) -> dict[str, Any]:
    c = SPOOF.build({"iommu": iommu, **params}, "dynamic", seed=5)
    c["mode"] = mode
    return c


@pytest.fixture(scope="module")
def runs() -> dict[str, RunResult]:
    return {v: run_config(config(v)) for v in ("intel", "amd")}


def nonzero(reasons: dict[str, int]) -> dict[str, int]:
    return {r: n for r, n in reasons.items() if n}


def test_intel_blocks_every_forged_write_for_its_reason(runs: dict[str, RunResult]) -> None:
    s = runs["intel"].spoof
    assert s is not None and s.iommu == "intel"
    assert set(s.kinds) == set(SPOOF_KINDS)
    for kind, reason in INTEL.items():
        b = s.kinds[kind]
        assert b.attempts > 700, kind
        assert b.blocked == b.attempts, kind
        assert nonzero(b.reasons) == {reason: b.attempts}, kind
        assert b.own_vector == 0, kind
    # Sub-handles past a victim's handle name the IRTEs that follow it: other
    # devices' (the SID check blocks them), free ones, or the forger's own.
    sweep = s.kinds["sub_handle_sweep"]
    assert set(nonzero(sweep.reasons)) == {"sid_mismatch", "not_present"}
    assert sweep.own_vector > 0
    assert sweep.blocked + sweep.own_vector == sweep.attempts


def test_amd_blocks_or_keeps_every_forged_write_in_the_forgers_own_table(
    runs: dict[str, RunResult],
) -> None:
    s = runs["amd"].spoof
    assert s is not None and s.iommu == "amd"
    for kind, reason in AMD.items():
        b = s.kinds[kind]
        assert b.attempts > 700, kind
        assert nonzero(b.reasons) == {reason: b.blocked}, kind
        if kind != "foreign_handle":
            assert b.blocked == b.attempts, kind
    # A copied index below the forger's own 2 vectors reaches the forger's own
    # vector (an interrupt it may send anyway): the victims have 6 each, so a
    # third of the copies do, the rest name entries it never allocated.
    f = s.kinds["foreign_handle"]
    assert f.blocked + f.own_vector == f.attempts
    assert f.own_vector == pytest.approx(f.attempts / 3, rel=0.05)
    sweep = s.kinds["sub_handle_sweep"]
    assert nonzero(sweep.reasons) == {"not_present": sweep.blocked}
    assert sweep.blocked + sweep.own_vector == sweep.attempts


@pytest.mark.parametrize("mode", ["event", "aggregated"])
@pytest.mark.parametrize("iommu", ["intel", "amd"])
def test_no_forged_write_reaches_another_device_or_vm(iommu: str, mode: str) -> None:
    r = run_config(config(iommu, mode))
    assert r.spoof is not None
    for kind, b in r.spoof.kinds.items():
        assert (b.cross_device, b.cross_vm, b.unowned) == (0, 0, 0), kind


def test_the_fault_log_overflow_is_counted(runs: dict[str, RunResult]) -> None:
    for iommu, capacity in (("intel", 256), ("amd", 512)):
        r = runs[iommu]
        assert r.spoof is not None
        log = r.spoof.fault_log
        blocked = sum(b.blocked for b in r.spoof.kinds.values())
        # Only forged writes fault; the log keeps its capacity, counts the rest.
        assert log.recorded == blocked == r.stats.remap_faults
        assert (log.capacity, log.kept) == (capacity, capacity)
        assert log.overflowed == blocked - capacity > 0
        assert log.suppressed == 0


def test_the_books_conserve(runs: dict[str, RunResult]) -> None:
    for r in runs.values():
        assert r.spoof is not None
        assert r.fired == sum(r.outcomes.values())
        # Every forged write is one fired interrupt: blocked, or delivered to
        # the forger's own vector; nothing else is blocked.
        blocked = sum(b.blocked for b in r.spoof.kinds.values())
        assert r.outcomes["blocked"] == blocked
        own = sum(b.own_vector for b in r.spoof.kinds.values())
        assert r.outcomes["delivered"] >= own
        assert r.fired >= r.spoof.attempts
    merged = run_replications(config("amd"), [5, 6]).merged
    assert merged.spoof is not None
    assert merged.fired == sum(merged.outcomes.values())
    assert merged.outcomes["blocked"] == sum(b.blocked for b in merged.spoof.kinds.values())
    assert merged.spoof.fault_log.capacity == 512


@pytest.mark.parametrize("iommu", ["intel", "amd"])
def test_the_forgers_own_messages_are_still_delivered(iommu: str) -> None:
    # Only the forger's own vectors carry traffic: every delivery but the
    # forged writes that hit its own vector is one of its legitimate
    # interrupts, remapped through its own IRTEs.
    c = config(iommu)
    for d in c["devices"][:2]:
        d["rate"] = 0.0
    c["devices"][2]["rate"] = 20_000.0
    r = run_config(c)
    assert r.spoof is not None
    own = sum(b.own_vector for b in r.spoof.kinds.values())
    legit = r.outcomes["delivered"] - own
    # 2 vectors × 20,000/s × 21 ms ≈ 840, all delivered.
    assert 700 < legit < 1_000, r.outcomes
    # Without its own traffic, only the forged own-vector writes are delivered.
    c["devices"][2]["rate"] = 0.0
    quiet = run_config(c)
    assert quiet.spoof is not None
    assert quiet.outcomes["delivered"] == sum(b.own_vector for b in quiet.spoof.kinds.values())


def test_an_unbalanced_spoof_report_is_refused(runs: dict[str, RunResult]) -> None:
    doc = runs["intel"].to_json()
    assert parse_result(json.dumps(doc)) == runs["intel"]
    bad = copy.deepcopy(doc)
    bad["spoof"]["kinds"]["compat_format"]["attempts"] += 1
    with pytest.raises(AccountingError, match="does not balance"):
        parse_result(json.dumps(bad))
    bad = copy.deepcopy(doc)
    del bad["spoof"]["kinds"]["compat_format"]["reasons"][FAULT_REASONS[0]]
    with pytest.raises(AccountingError, match="every fault reason"):
        parse_result(json.dumps(bad))


def test_a_forger_must_name_other_devices() -> None:
    c = config("intel")
    c["devices"][2]["spoof"]["victims"] = [2]
    with pytest.raises(InvalidArgument, match=r"devices\[2\]\.spoof\.victims\[0\]"):
        run_config(c)
    with pytest.raises(InvalidArgument, match="duration"):
        SPOOF.build({"spoof_start": 0.05}, "dynamic", seed=0)


def test_compare_shows_the_spoof_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = [(j.scenario, j.policy) for j in compare_jobs(0, None, False)]
    assert ("spoof:intel", "dynamic") in jobs and ("spoof:amd", "dynamic") in jobs
    path = tmp_path / "spoof.json"
    assert main(["run", "spoof:intel", "--policy", "dynamic", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Forged MSI writes" in out
    row = next(line for line in out.splitlines() if " foreign_handle " in line)
    assert "sid_mismatch" in row and row.split()[1] == "intel"
    assert "records kept of 256" in out and "overflowed" in out
    (run,) = json.loads(path.read_text())["runs"]
    assert run["spoof"]["kinds"]["foreign_handle"]["cross_device"] == 0


def test_a_host_built_in_python_books_a_forger_the_same_way() -> None:
    # Two devices in two VMs on an AMD host: the forger copies the victim's
    # indices 0..3 into its own table, where only index 0 is its own.
    host = Host(ncpus=2, iommu="amd")
    host.attach(Device(entries=4, program=guest.probe(4)))
    spoof = Spoof(victims=[0], rate=50_000, kinds=["foreign_handle"], start=1e-4)
    host.attach(Device(entries=1, vm=1, program=guest.probe(1), spoof=spoof))
    r = host.run("dynamic", duration=0.01)
    assert r.spoof is not None and r.spoof.iommu == "amd"
    f = r.spoof.kinds["foreign_handle"]
    assert f.own_vector == pytest.approx(f.attempts / 4, rel=0.1)
    assert nonzero(f.reasons) == {"not_present": f.blocked}
    assert (f.cross_device, f.cross_vm) == (0, 0)
    assert r.outcomes["blocked"] == f.blocked
