"""The Python host/device builder and guest program steps."""

from __future__ import annotations

import pytest

import msixcore
from msixcore import guest
from msixcore.host import Device, Host
from msixcore.policies import NoresizePolicy


def test_probe_program_shape() -> None:
    steps = guest.probe(4, used=3, gap=1e-3)
    assert [s["action"]["op"] for s in steps] == [
        "negotiate",
        "enable",
        "unmask",
        "unmask",
        "unmask",
    ]
    assert [s["delay_ns"] for s in steps] == [0, 0, 0, 1_000_000, 1_000_000]
    with pytest.raises(ValueError, match="used"):
        guest.probe(4, used=5)
    with pytest.raises(ValueError, match="after"):
        guest.unmask(0, after=-1.0)


def test_host_runs_and_noresize_loses_while_dynamic_does_not() -> None:
    host = Host(ncpus=4)
    for _ in range(2):
        host.attach(Device(entries=16, rate=100_000, program=guest.probe(16, gap=1e-4)))
    lossy = host.run("noresize", seed=3, duration=0.01)
    clean = host.run("dynamic", seed=3, duration=0.01)
    assert lossy.outcomes["lost"] > 0
    assert clean.outcomes["lost"] == 0
    assert lossy.stats.resizes == 32
    assert clean.stats.peak_usage.cpu_vectors == 32


def test_simulation_with_a_python_policy_matches_the_builtin() -> None:
    host = Host(ncpus=2)
    host.attach(Device(entries=8, rate=50_000, program=guest.probe(8, gap=1e-4)))
    a = host.simulation("noresize", seed=5, duration=0.005)
    b = host.simulation(NoresizePolicy(), seed=5, duration=0.005)
    a.run()
    b.run()
    assert a.books() == b.books()


def test_bad_host_values_are_typed_errors() -> None:
    host = Host(ncpus=0)
    host.attach(Device(entries=8, program=guest.probe(8)))
    with pytest.raises(msixcore.InvalidArgument, match=r"host\.ncpus"):
        host.run("noresize", duration=0.001)
    host = Host()
    host.attach(Device(entries=4096))
    with pytest.raises(msixcore.InvalidArgument, match=r"devices\[0\]\.entries"):
        host.run("noresize", duration=0.001)
    with pytest.raises(msixcore.InvalidArgument, match="policy"):
        Host(devices=[Device(entries=4)]).run("teleport", duration=0.001)
