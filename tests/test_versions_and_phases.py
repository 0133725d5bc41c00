"""Kernel and QEMU versions as parameters of every scenario, and the books by
phase (probe, runtime) that every run reports."""

from __future__ import annotations

import pytest
from conftest import SMALL_NVME

from msixcore import SCENARIOS, InvalidArgument, run_config
from msixcore.cli import main
from msixcore.simulation import OUTCOMES, RunStats
from msixcore.versions import behaviours, parse_version

# Small parameters per scenario, so that every scenario runs in well under a second.
SMALL: dict[str, dict[str, object]] = {
    "storm": {"devices": 2, "table": 16, "init": 4},
    "host-packing": {
        "vms": 4,
        "devices_per_vm": 2,
        "table": 16,
        "duration": 0.02,
        "vm_gap": 1e-3,
        "device_gap": 1e-4,
    },
    "nvme": SMALL_NVME,
}


def _cases() -> list[tuple[str, str | None, str]]:
    out = []
    for s in SCENARIOS.values():
        for variant in [*s.variants] or [None]:
            out += [(s.name, variant, p) for p in s.policies]
    return out


@pytest.mark.parametrize(("name", "variant", "policy"), _cases())
def test_phases_sum_to_the_totals_in_every_scenario(
    name: str, variant: str | None, policy: str
) -> None:
    s = SCENARIOS[name]
    params = {**(s.variant(variant) if variant else {}), **SMALL.get(name, {})}
    r = run_config(s.build(params, policy, 3, None if s.time_bounded else 64))
    probe, runtime = r.phases["probe"], r.phases["runtime"]
    assert probe.fired + runtime.fired == r.fired
    for o in OUTCOMES:
        assert probe.outcomes[o] + runtime.outcomes[o] == r.outcomes[o], o
    assert probe.resizes + runtime.resizes == r.resizes
    if not s.time_bounded:
        # Every resize-bounded scenario brings entries up at probe and at runtime.
        assert probe.resizes > 0 and runtime.resizes > 0


def test_fpga_splits_probe_and_runtime_losses() -> None:
    """The early entries come up back to back at probe; the IP block's late
    unmask is the runtime resize: both lose under noresize."""
    r = run_config(SCENARIOS["fpga"].build(None, "noresize", 1, 900))
    assert r.phases["probe"].outcomes["lost"] > 0
    assert r.phases["runtime"].outcomes["lost"] > 0
    # One runtime resize per cycle, `busy` probe-time ones.
    assert r.phases["probe"].resizes == 8 * r.phases["runtime"].resizes


def test_behaviours_follow_the_versions() -> None:
    b = behaviours("6.12", "8.2")
    assert b["early_enable"] and b["vfio_dynamic_msix"] and not b["resizes"]
    old = behaviours("5.10", "7.2")
    assert old["resizes"] and not old["early_enable"] and old["qemu_prerequests_vector0"]
    assert behaviours("5.10", "8.2", early_enable=True)["early_enable"]
    assert behaviours("6.1", "8.2")["resizes"]  # no VFIO dynamic MSI-X before 6.5


@pytest.mark.parametrize("bad", ["6", "6.12.3", "six", "", " 6 .1"])
def test_versions_are_major_minor(bad: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^kernel: expected major\.minor"):
        parse_version("kernel", bad)


def test_a_version_number_is_refused_because_6_10_would_read_as_6_1() -> None:
    with pytest.raises(InvalidArgument, match=r'^qemu: must be a version string such as "6.12"'):
        parse_version("qemu", 8.2)


@pytest.mark.parametrize(
    ("sets", "policy", "message"),
    [
        (["qemu=7.2"], "dynamic", "policy.kind: dynamic needs QEMU 8.2+"),
        (["kernel=6.1"], "dynamic", "policy.kind: dynamic needs VFIO dynamic MSI-X"),
        (["kernel=6.x"], "noresize", "kernel: expected major.minor"),
    ],
)
def test_contradictory_versions_are_one_line_errors(
    sets: list[str], policy: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "storm", "--policy", policy, "--resizes", "16"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("msixcore: error: ") and message in line, line


def test_qemu_before_8_2_resizes_one_entry_less_per_cycle() -> None:
    storm = SCENARIOS["storm"]
    params = {"devices": 2, "table": 16, "init": 4}
    new = run_config(storm.build(params, "noresize", 1, 2 * 16 * 10))
    old = run_config(storm.build({**params, "qemu": "7.2"}, "noresize", 1, 2 * 15 * 10))
    # Ten cycles each: 16 resizes per cycle and device under 8.2, 15 before.
    assert new.stats.end_time_ns == pytest.approx(old.stats.end_time_ns, rel=0.01)
    assert old.resizes == 2 * 15 * 10


def _nvme(policy: str) -> RunStats:
    # A short io_timeout keeps the run small; the defaults (30 s) behave the same.
    params = {"vcpus": 4, "online": 3, "io_timeout": 0.2, "hold": 0.3, "duration": 0.4}
    return run_config(SCENARIOS["nvme"].build(params, policy, 4)).stats


def test_nvme_stale_queues_last_until_the_driver_timeout_under_noresize() -> None:
    s = _nvme("noresize")
    assert s.stalls > 0
    # Every episode ended at its timeout (none open, none cut short).
    assert s.stall_timeouts == s.stalls and s.stalls_open == 0
    assert s.stall_time_ns == s.stalls * 200_000_000


@pytest.mark.parametrize("policy", ["dynamic", "hypercall"])
def test_nvme_has_no_stale_queue_without_resizes(policy: str) -> None:
    s = _nvme(policy)
    assert (s.stalls, s.stall_time_ns) == (0, 0)
