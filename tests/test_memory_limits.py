"""Memory-heavy settings are checked against what they would allocate: a
config that cannot run in memory is an ``InvalidArgument``, never an abort of
the interpreter (the allocator's failure used to kill the process)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from msixcore import InvalidArgument, validate_engine_config


def _config(ncpus: int, queue_capacity: int, iommu: str = "intel") -> dict[str, Any]:
    return {
        "seed": 1,
        "host": {"ncpus": ncpus, "iommu": iommu},
        "devices": [{"vm": 0, "entries": 8, "program": [{"action": {"op": "enable"}}]}],
        "handler": {"service_ns": 1000, "queue_capacity": queue_capacity},
        "stop": {"max_time_ns": 1_000_000},
    }


def test_each_setting_in_range_but_the_product_too_large_is_refused() -> None:
    cfg = _config(8192, 1 << 24)
    with pytest.raises(InvalidArgument, match=r"needs about \d+ MiB.*limit.*queue_capacity"):
        validate_engine_config(cfg)
    validate_engine_config(_config(8192, 4096))
    validate_engine_config(_config(1, 1 << 24))


def test_a_config_past_the_address_space_limit_is_refused_not_aborted() -> None:
    # 8192 CPUs × 8192 deliveries is about 1.5 GiB of queues: under the 4 GiB
    # estimate limit, over a 1 GiB address-space limit. The child process
    # sets the limit and builds the run.
    cfg = json.dumps(_config(8192, 8192))
    code = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from msixcore import _core, InvalidArgument
try:
    _core.Simulation({cfg!r})
except InvalidArgument as e:
    print("refused:", e)
    sys.exit(0)
print("built")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("refused: invalid argument: config: needs about"), out.stdout
    assert "more than this process can allocate" in out.stdout


def test_the_memory_benchmark_host_is_admitted() -> None:
    # benches/memory.py's host (512 CPUs, 8 × 65,536 IRTEs, 10,000 devices of
    # 2,048 entries: 0.6 GiB resident) is within both the entry count and the
    # memory estimate; the old 2^20-entry guard refused it.
    device = {"entries": 2048, "program": [{"action": {"op": "enable"}}]}
    cfg = {
        "host": {"ncpus": 512, "iommus": 8, "irte_entries": 65_536},
        "devices": [device] * 10_000,
        "stop": {"max_time_ns": 10_000_000},
    }
    validate_engine_config(cfg)


def test_a_start_past_the_end_of_time_never_fires() -> None:
    # start_ns + delay_ns, and a step's delay after the previous one, stop at the end of time.
    from msixcore import run_config

    u64 = (1 << 64) - 1
    device = {
        "entries": 2,
        "rate": 1e6,
        "start_ns": u64 - 10,
        "program": [
            {"delay_ns": 100, "action": {"op": "enable"}},
            {"action": {"op": "unmask", "entry": 0}},
        ],
    }
    later = {
        "entries": 2,
        "rate": 1e6,
        "program": [
            {"action": {"op": "enable"}},
            {"delay_ns": u64 - 5, "action": {"op": "unmask", "entry": 0}},
        ],
    }
    for dev in (device, later):
        r = run_config({"seed": 3, "devices": [dev], "stop": {"max_time_ns": 1_000_000}})
        assert r.fired == 0
        assert r.stats.end_time_ns == 1_000_000
