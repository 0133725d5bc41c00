"""Replay the real Linux 6.1 captures (tests/data/realkernel/) through the models.

Both captures (with and without Intel interrupt remapping) must agree with the models on every
vector, CPU, matrix counter and IRTE the kernel printed; a trace with one value changed must
not.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from msixcore import InvalidArgument
from msixcore.kernel_trace import (
    MATRIX_EVENTS,
    VECTOR_EVENTS,
    ReplayResult,
    main,
    parse_trace,
    replay,
)

DATA = Path(__file__).parent / "data" / "realkernel"
PROBES = {"rk"}  # parse_trace.py's system name for the capture's kprobes

# The one record the replay cannot map: at early boot the timer's re-activation tries its
# node mask before the node masks exist, and the kernel traces that failed attempt.
EXPECTED_UNMAPPED = {"vector_alloc": "failed attempt (ret -22)"}


def domain_events_in_summary(variant: str) -> int:
    """The capture's own count of irq_matrix, irq_vectors and kprobe records."""
    counts = json.loads((DATA / variant / "summary.json").read_text())["counts_per_event"]
    kprobes = {e for e in counts if e.startswith(("km_", "ir_")) or e == "send_cleanup_vector"}
    return sum(n for e, n in counts.items() if e in MATRIX_EVENTS | VECTOR_EVENTS | kprobes)


@pytest.fixture(scope="module", params=["ir", "noir"])
def result(request: pytest.FixtureRequest) -> ReplayResult:
    return replay(DATA / str(request.param))


def test_the_real_kernel_agrees_with_the_models(result: ReplayResult) -> None:
    assert result.disagreements == (), result.summary(20)
    assert result.ok


def test_every_vector_domain_event_is_compared_or_explained(result: ReplayResult) -> None:
    variant = "ir" if result.variant == "ir" else "noir"
    assert result.events == domain_events_in_summary(variant)
    assert result.compared + len(result.unmapped) == result.events
    assert result.compared >= 850
    assert result.fields_compared >= 3 * result.compared
    for u in result.unmapped:
        assert u.event in EXPECTED_UNMAPPED and EXPECTED_UNMAPPED[u.event] in u.reason, u
    assert len(result.unmapped) == 1
    ops = dict(result.operations)
    # Boot, 4 CPUs brought up or back, NVMe probe/unbind/rebind/resets, NIC up/down, the
    # affinity change and its cleanup, CPU 3 offline.
    assert ops["boot"] == 1 and ops["cpu_online"] == 4 and ops["cpu_offline"] == 1
    assert ops["set_affinity"] == 1 and ops["complete_move"] == 1
    assert ops["alloc_managed"] == 32 and ops["alloc_legacy"] == 15
    assert ops["activate"] >= 30 and ops["deactivate"] >= 20 and ops["free"] >= 30


def test_the_ir_capture_checks_every_irte() -> None:
    r = replay(DATA / "ir")
    assert r.variant == "ir"
    summary = json.loads((DATA / "ir" / "summary.json").read_text())
    assert summary["irte_vs_vector_config"]["checked"] == 73
    assert r.events == 1180 and r.compared == 1179


def test_raw_and_parsed_forms_agree() -> None:
    raw = replay(DATA / "ir" / "guest" / "trace.txt.gz")
    parsed = replay(DATA / "ir" / "trace.jsonl.gz")
    for r in (raw, parsed):
        assert r.ok, r.summary()
        assert r.ncpus == 8  # the highest CPU the trace names (7) + 1
    assert (raw.events, raw.compared, raw.operations) == (
        parsed.events,
        parsed.compared,
        parsed.operations,
    )


def corrupt(tmp_path: Path, pattern: str, replacement: str) -> Path:
    """A copy of the ir capture's raw trace with the first match of `pattern` replaced."""
    with gzip.open(DATA / "ir" / "guest" / "trace.txt.gz", "rt") as f:
        text = f.read()
    changed, n = re.subn(pattern, replacement, text, count=1)
    assert n == 1
    out = tmp_path / "trace.txt"
    out.write_text(changed)
    return out


def test_a_changed_vector_is_a_disagreement(tmp_path: Path) -> None:
    # CPU 3's eth0-rx-0 vector after the user moved it there: 36 in the kernel.
    path = corrupt(
        tmp_path, r"vector_config: irq=34 vector=36 cpu=3", "vector_config: irq=34 vector=37 cpu=3"
    )
    r = replay(path)
    assert not r.ok
    (d,) = r.disagreements
    assert (d.event, d.field, d.expected, d.got) == ("vector_config", "vector", "37", "36")
    assert "irq=34 vector=37" in d.text and d.line > 0
    assert f"line {d.line}" in r.summary()


@pytest.mark.parametrize(
    ("pattern", "replacement", "field"),
    [
        # A matrix counter.
        (
            r"global_avl=788, global_rsvd=11, total_alloc=16",
            "global_avl=787, global_rsvd=11, total_alloc=16",
            "global_avl",
        ),
        # The vector a migration took during CPU 3's offline (a kprobe).
        (r"(km_alloc_ret: \([^)]*\)) bit=37", r"\1 bit=38", "bit"),
        # An IRTE as the kernel programmed it.
        (r"irte_lo=0x8000022000d", "irte_lo=0x8000023000d", "irte.vector"),
        # The CPU a managed reservation went to.
        (
            r"irq_matrix_reserve_managed: bit=33 cpu=4",
            "irq_matrix_reserve_managed: bit=33 cpu=5",
            "bit",
        ),
    ],
)
def test_other_changes_are_disagreements(
    tmp_path: Path, pattern: str, replacement: str, field: str
) -> None:
    r = replay(corrupt(tmp_path, pattern, replacement))
    assert field in {d.field for d in r.disagreements}, r.summary()


def test_cli_reports_and_exits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "noir")]) == 0
    out = capsys.readouterr().out
    assert "0 disagreements" in out and "noir" in out
    bad = corrupt(tmp_path, r"vector_config: irq=34 vector=36", "vector_config: irq=34 vector=99")
    assert main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "1 disagreements" in out and "vector_config vector: kernel 99, model 36" in out


def test_malformed_input_is_a_one_line_invalid_argument(tmp_path: Path) -> None:
    good = (DATA / "noir" / "guest" / "trace.txt.gz").read_bytes()
    lines = gzip.decompress(good).decode().splitlines()
    broken = tmp_path / "trace.txt"
    broken.write_text("\n".join([*lines[:20], "this is not ftrace", *lines[20:]]) + "\n")
    with pytest.raises(InvalidArgument) as ei:
        replay(broken)
    msg = str(ei.value)
    assert f"{broken}:21:" in msg and "\n" not in msg
    # A known event without a field the replay needs.
    at = next(i for i, line in enumerate(lines) if "vector_config:" in line)
    missing = tmp_path / "missing.txt"
    missing.write_text(
        "\n".join([*lines[:at], lines[at].replace("vector=", "vec="), *lines[at + 1 :]]) + "\n"
    )
    with pytest.raises(InvalidArgument, match=r"missing\.txt:\d+: .* has no .*= field"):
        replay(missing)
    # Parsed form: not JSON, no event.
    js = tmp_path / "trace.jsonl"
    js.write_text('{"event": "tracing_mark_write"}\n{not json\n')
    with pytest.raises(InvalidArgument, match=r"trace\.jsonl:2: not a JSON record"):
        replay(js)
    js.write_text("[1, 2]\n")
    with pytest.raises(InvalidArgument, match=r"trace\.jsonl:1: a record needs"):
        replay(js)
    # Not gzip, empty, no boot, a folder without a trace, no such path.
    fake = tmp_path / "x.txt.gz"
    fake.write_text("plain text")
    with pytest.raises(InvalidArgument, match="cannot read the trace"):
        replay(fake)
    empty = tmp_path / "empty.txt"
    empty.write_text("# tracer: nop\n")
    with pytest.raises(InvalidArgument, match="no events"):
        replay(empty)
    late = tmp_path / "late.txt"
    late.write_text("\n".join(lines[200:]) + "\n")
    with pytest.raises(InvalidArgument, match="does not start with the boot"):
        replay(late)
    with pytest.raises(InvalidArgument, match="no trace"):
        replay(tmp_path / "..")
    with pytest.raises(InvalidArgument, match="no such file"):
        replay(tmp_path / "nope")


def test_cli_bad_input_has_no_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "trace.txt"
    broken.write_text("garbage line\n")
    proc = subprocess.run(
        [sys.executable, "-m", "msixcore.kernel_trace", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and f"{broken}:1:" in proc.stderr


def test_a_capture_folder_copy_with_lost_events(tmp_path: Path) -> None:
    """A capture folder elsewhere (layout as the harness writes it); an ftrace
    "[LOST n EVENTS]" line is listed, not fatal."""
    folder = tmp_path / "cap"
    shutil.copytree(DATA / "noir", folder)
    raw = gzip.decompress((folder / "guest" / "trace.txt.gz").read_bytes()).decode()
    lines = raw.splitlines()
    lines.insert(len(lines) - 1, "CPU:2 [LOST 3 EVENTS]")
    (folder / "guest" / "trace.txt.gz").write_bytes(
        gzip.compress(("\n".join(lines) + "\n").encode())
    )
    r = replay(folder)
    assert r.ok
    assert [u.event for u in r.unmapped].count("_lost_events") == 1


def test_parse_trace_reads_fields_and_kprobes() -> None:
    recs = parse_trace(DATA / "ir" / "guest" / "trace.txt.gz")
    first = recs[0]
    assert first.event == "irq_matrix_assign_system" and first["bit"] == 0 and first.line == 13
    km = next(r for r in recs if r.event == "km_alloc_ret")
    assert km.probe and km["bit"] == 34 and km.vector_domain
    cfg = next(r for r in recs if r.event == "vector_config")
    assert cfg["apicdest"] == 1 and not cfg.probe
    assert next(r for r in recs if r.event == "tracing_mark_write").vector_domain is False
