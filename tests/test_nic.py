"""The ``nic`` scenario (an SR-IOV VF growing its channels under load) and
the ``host_profile`` parameter it defaults to ``quiet``."""

from __future__ import annotations

import pytest

from msixcore import SCENARIOS, InvalidArgument, run_config
from msixcore.host_profiles import HOST_PROFILES

NIC = SCENARIOS["nic"]
RESIZES = 480
"""Resize target of a run: several cycles of every variant (a cycle of a
``table``-entry VF has ``table`` resizes under noresize)."""


def _lost_per_resize(variant: str, policy: str) -> float:
    r = run_config(NIC.build(NIC.variant(variant), policy, 5, RESIZES))
    assert r.resizes == RESIZES
    assert sum(r.outcomes.values()) == r.fired
    return r.outcomes["lost"] / r.resizes


def test_variants_are_ice_like_vf_sizes_growing_from_a_quarter() -> None:
    for name, want in {"vf5": (5, 1), "vf17": (17, 4), "vf33": (33, 8), "vf65": (65, 16)}.items():
        p = NIC.resolve(NIC.variant(name))
        assert (p["table"], p["init"]) == want
        assert p["host_profile"] == "quiet"


def test_only_noresize_loses_and_more_channels_lose_more_per_resize() -> None:
    lost = [_lost_per_resize(v, "noresize") for v in ("vf5", "vf17", "vf33", "vf65")]
    assert all(x > 0 for x in lost)
    # More channels live during each resize, and longer windows (w_free per vector).
    assert lost == sorted(lost) and lost[0] < lost[-1]
    for policy in ("upfront", "hypercall", "dynamic"):
        assert _lost_per_resize("vf17", policy) == 0


def test_the_grow_resizes_happen_at_runtime() -> None:
    cycles = 20
    r = run_config(NIC.build(None, "noresize", 5, 17 * cycles))
    probe, runtime = r.phases["probe"], r.phases["runtime"]
    # Each cycle: at probe entries 0..init are new highest entries (5), at
    # runtime the growth from init to table - 1 channels (12).
    assert (probe.resizes, runtime.resizes) == (5 * cycles, 12 * cycles)
    assert runtime.outcomes["lost"] > 0


def test_the_quiet_profile_sets_every_host_step() -> None:
    cfg = NIC.build(None, "noresize", 1)
    assert cfg["timing"] == dict(HOST_PROFILES["quiet"])
    custom = NIC.build({"host_profile": "custom", "w0": "30us"}, "noresize", 1)
    assert custom["timing"] == {"w0_ns": 30_000, "w_free_ns": 500, "w_alloc_ns": 500}
    busy = SCENARIOS["fpga"].build({"host_profile": "busy"}, "noresize", 1)
    assert busy["timing"] == dict(HOST_PROFILES["busy"])


def test_a_profile_and_its_own_timings_are_refused_together() -> None:
    with pytest.raises(InvalidArgument, match=r"^w_free: host_profile=quiet sets it"):
        NIC.build({"w_free": "1us"}, "noresize", 1)
    with pytest.raises(InvalidArgument, match=r"^host_profile: "):
        NIC.build({"host_profile": "idle"}, "noresize", 1)
    # The storm keeps its closed form's three timings: no profile.
    with pytest.raises(InvalidArgument, match=r"^host_profile: unknown parameter of storm"):
        SCENARIOS["storm"].build({"host_profile": "quiet"}, "noresize", 1)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"table": 2}, r"^table: "),
        ({"table": 5, "init": 4}, r"^init: init \(4\) must be < table - 1"),
    ],
)
def test_bad_shapes_are_refused(overrides: dict[str, int], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        NIC.build(overrides, "noresize", 1)
