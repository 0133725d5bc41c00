"""Replay every golden trace of the real kernel/irq/matrix.c through the Python API.

See tests/data/matrix_traces/FORMAT.md. Every record's ret / exception kind, mapped CPU,
WARN sites, pr_warn, debug_show text and whole state must match.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from msixcore import InvalidArgument, InvalidOperation, IrqMatrix, NoSpace

TRACE_DIR = Path(__file__).parent / "data" / "matrix_traces"
TRACES = sorted(TRACE_DIR.glob("*.jsonl.gz"))
RESERVATION_MSG = "Interrupt reservation exceeds available resources"


def _apply(m: IrqMatrix, op: str, a: dict[str, Any]) -> tuple[Any, Any, list[str], str | None]:
    """Run one op; return (ret, mapped_cpu, warnings, text) in the trace's vocabulary."""
    unit_ret: int | None = 0 if op == "reserve_managed" else None
    try:
        if op == "online":
            m.online(a["cpu"])
        elif op == "offline":
            m.offline(a["cpu"])
        elif op == "assign_system":
            m.assign_system(a["cpu"], a["bit"], a["replace"])
        elif op == "reserve_managed":
            m.reserve_managed(a["cpus"])
        elif op == "remove_managed":
            m.remove_managed(a["cpus"])
        elif op == "alloc_managed":
            cpu, bit = m.alloc_managed(a["cpus"])
            return bit, cpu, [], None
        elif op == "assign":
            m.assign(a["cpu"], a["bit"])
        elif op == "reserve":
            m.reserve()
        elif op == "remove_reserved":
            m.remove_reserved()
        elif op == "alloc":
            cpu, bit = m.alloc(a["cpus"], reserved=a["reserved"])
            return bit, cpu, [], None
        elif op == "free":
            m.free(a["cpu"], a["bit"], managed=a["managed"])
        elif op == "available":
            return m.available(a["cpu"] if a["cpudown"] else None), None, [], None
        elif op == "reserved":
            return m.reserved(), None, [], None
        elif op == "allocated":
            return m.allocated(a["cpu"]), None, [], None
        elif op == "debug_show":
            return None, None, [], m.debug_show(a["ind"])
        else:
            raise AssertionError(f"unknown op {op}")
    except InvalidArgument:
        return -22, None, [], None
    except NoSpace:
        return -28, None, [], None
    except InvalidOperation as e:
        return None, None, list(e.sites), None
    return unit_ret, None, [], None


def _replay(path: Path) -> int:
    m: IrqMatrix | None = None
    n = 0
    with gzip.open(path, "rt") as f:
        for lineno, line in enumerate(f):
            rec = json.loads(line)
            ctx = f"{path.name}:{lineno} {rec['op']} {rec['args']}"
            assert rec["seq"] == lineno
            assert rec["bug"] is False
            if rec["op"] == "init":
                assert m is None, ctx
                a = rec["args"]
                m = IrqMatrix(a["matrix_bits"], a["alloc_start"], a["alloc_end"], a["ncpus"])
            else:
                assert m is not None, ctx
                before = m.warnings
                ret, mapped, warnings, text = _apply(m, rec["op"], rec["args"])
                assert ret == rec["ret"], ctx
                assert mapped == rec["mapped_cpu"], ctx
                assert warnings == rec["warnings"], ctx
                assert rec["warned"] == bool(warnings), ctx
                assert m.warnings - before == len(rec["pr_warn_msgs"]), ctx
                assert rec["pr_warn"] == bool(rec["pr_warn_msgs"]), ctx
                assert all(msg == RESERVATION_MSG for msg in rec["pr_warn_msgs"]), ctx
                assert text == rec["text"], ctx
            assert m.state() == rec["state"], ctx
            n += 1
    return n


def test_traces_present() -> None:
    assert len(TRACES) >= 6


@pytest.mark.parametrize("path", TRACES, ids=[p.name.removesuffix(".jsonl.gz") for p in TRACES])
def test_replay(path: Path) -> None:
    assert _replay(path) > 0
