"""Replay a real Linux kernel's interrupt-vector trace through the models and compare.

A capture (see ``docs/kernel_trace.md``) is an ftrace of the kernel's ``irq_matrix:*`` and
``irq_vectors:vector_*`` tracepoints, plus kprobes (``km_*``, ``send_cleanup_vector`` and, with
Intel interrupt remapping, ``ir_*``). :func:`replay` reads it (a capture folder, the raw
``trace.txt[.gz]`` or the parsed ``trace.jsonl[.gz]``), rebuilds the kernel-level operations
(boot, allocations, activations, affinity changes, CPU hotplug, frees), drives
:class:`~msixcore.VectorDomain` and, when the trace has IRTEs, an
:class:`~msixcore.InterruptRemapper` with them, and compares every vector, CPU, matrix counter
and IRTE the trace prints with what the models did.

``python -m msixcore.kernel_trace PATH`` prints a short report and exits 1 on any
disagreement (2 on unusable input).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from msixcore._core import (
    InterruptRemapper,
    InvalidArgument,
    Irte,
    MsixError,
    NoSpace,
    VectorDomain,
    compose_msi,
)

if TYPE_CHECKING:
    from msixcore._core import _IrqState

__all__ = [
    "MATRIX_EVENTS",
    "VECTOR_EVENTS",
    "Disagreement",
    "ReplayResult",
    "TraceRecord",
    "Unmapped",
    "main",
    "parse_trace",
    "replay",
]

#: ``MANAGED_IRQ_SHUTDOWN_VECTOR``: what a reserved or shut-down interrupt points at.
SHUTDOWN_VECTOR = 0xEF
#: ``FIRST_EXTERNAL_VECTOR``: the matrix's first allocatable bit on x86.
FIRST_EXTERNAL_VECTOR = 0x20
#: ``ISA_IRQ_VECTOR(0)``.
ISA_IRQ0_VECTOR = 0x30
#: ``PIC_CASCADE_IR``: its ISA vector is a system vector when the PIC is there.
PIC_CASCADE_IR = 2

MATRIX_EVENTS = frozenset(
    (
        "irq_matrix_online",
        "irq_matrix_offline",
        "irq_matrix_reserve",
        "irq_matrix_remove_reserved",
        "irq_matrix_assign_system",
        "irq_matrix_alloc_reserved",
        "irq_matrix_reserve_managed",
        "irq_matrix_remove_managed",
        "irq_matrix_alloc_managed",
        "irq_matrix_assign",
        "irq_matrix_alloc",
        "irq_matrix_free",
    )
)
VECTOR_EVENTS = frozenset(
    (
        "vector_config",
        "vector_update",
        "vector_clear",
        "vector_reserve_managed",
        "vector_reserve",
        "vector_alloc",
        "vector_alloc_managed",
        "vector_activate",
        "vector_deactivate",
        "vector_teardown",
        "vector_setup",
        "vector_free_moved",
    )
)
#: kprobe records of the matrix, and the tracepoint each one shadows.
PROBE_OF = {
    "irq_matrix_alloc": "km_alloc_ret",
    "irq_matrix_alloc_managed": "km_alloc_managed_ret",
    "irq_matrix_free": "km_free",
    "irq_matrix_offline": "km_offline",
}
KM_PROBES = frozenset(PROBE_OF.values())
IR_PROBES = frozenset(
    (
        "ir_domain_alloc",
        "ir_domain_free",
        "ir_activate",
        "ir_compose_msi",
        "ir_set_affinity",
        "ir_deactivate",
    )
)
#: The capture's kprobes the replay uses.
KNOWN_PROBES = KM_PROBES | IR_PROBES | {"send_cleanup_vector"}
#: Events whose payload has a ``cpu=`` field (the parsed JSON form puts it where the executing
#: CPU would be).
CPU_FIELD_EVENTS = frozenset(
    {e for e in MATRIX_EVENTS if e not in ("irq_matrix_online", "irq_matrix_offline")}
    - {"irq_matrix_reserve", "irq_matrix_remove_reserved", "irq_matrix_assign_system"}
    | {"vector_config", "vector_update", "vector_clear", "vector_free_moved"}
    | {"km_free", "send_cleanup_vector"}
)
#: Fields an event must have for the replay to use it.
REQUIRED: Mapping[str, tuple[str, ...]] = {
    "irq_matrix_assign_system": ("bit", "global_avl"),
    "irq_matrix_online": ("global_avl",),
    "irq_matrix_assign": ("bit", "cpu"),
    "irq_matrix_reserve_managed": ("cpu",),
    "irq_matrix_alloc": ("cpu",),
    "vector_config": ("irq", "vector", "cpu", "apicdest"),
    "vector_update": ("irq", "vector", "cpu", "prev_vector", "prev_cpu"),
    "vector_clear": ("irq", "vector", "cpu", "prev_vector", "prev_cpu"),
    "vector_reserve": ("irq", "ret"),
    "vector_reserve_managed": ("irq", "ret"),
    "vector_alloc": ("irq", "vector", "reserved", "ret"),
    "vector_alloc_managed": ("irq", "vector", "ret"),
    "vector_activate": ("irq", "is_managed", "can_reserve", "reserve"),
    "vector_deactivate": ("irq", "is_managed", "can_reserve", "reserve"),
    "vector_setup": ("irq", "is_legacy", "ret"),
    "vector_teardown": ("irq", "is_managed", "has_reserved"),
    "vector_free_moved": ("irq", "cpu", "vector", "is_managed"),
    "km_free": ("cpu", "bit", "managed"),
    "km_alloc_ret": ("bit",),
    "km_alloc_managed_ret": ("bit",),
    "send_cleanup_vector": ("irq", "vector", "cpu", "dest_apicid", "prev_vector", "prev_cpu"),
    "ir_domain_alloc": ("virq", "nr_irqs"),
    "ir_domain_free": ("virq", "nr_irqs"),
    "ir_activate": ("irq", "reserve", "index", "sub_handle"),
    "ir_compose_msi": ("irq", "index", "sub_handle", "irte_lo", "irte_hi"),
    "ir_set_affinity": ("irq", "index", "sub_handle", "irte_lo", "irte_hi"),
    "ir_deactivate": ("irq", "index", "sub_handle", "irte_lo", "irte_hi"),
}
#: Fields of an ``irq_matrix_*`` line compared with the model's event.
MATRIX_FIELDS = (
    "bit",
    "cpu",
    "online",
    "avl",
    "alloc",
    "managed",
    "online_maps",
    "global_avl",
    "global_rsvd",
    "total_alloc",
)

# ------------------------------------------------------------------------------ results


@dataclass(frozen=True, eq=False)
class TraceRecord:
    """One line of the trace: its number (1-based) and text, the event, the executing task's
    pid and CPU (-1 when the parsed form lost it) and the integer fields it prints."""

    line: int
    text: str
    event: str
    pid: int
    cpu: int
    fields: Mapping[str, int]
    probe: bool = False

    @property
    def vector_domain(self) -> bool:
        """An ``irq_matrix_*`` / ``irq_vectors`` tracepoint or one of the capture's kprobes."""
        return self.probe or self.event in MATRIX_EVENTS or self.event in VECTOR_EVENTS

    def __getitem__(self, name: str) -> int:
        return self.fields[name]


@dataclass(frozen=True)
class Disagreement:
    """A value the kernel printed (``expected``) that the model did not reproduce (``got``)."""

    line: int
    text: str
    event: str
    field: str
    expected: str
    got: str

    def __str__(self) -> str:
        return (
            f"line {self.line}: {self.event} {self.field}: kernel {self.expected}, model {self.got}"
        )


@dataclass(frozen=True)
class Unmapped:
    """A trace record the replay could not map onto the models, and why."""

    line: int
    text: str
    event: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.event}: {self.reason}"


@dataclass(frozen=True)
class ReplayResult:
    """What :func:`replay` found.

    ``events`` counts the trace's vector-domain records (tracepoints and kprobes); each is
    either ``compared`` (at least one of its fields checked against the models;
    ``fields_compared`` counts the checks) or listed in ``unmapped`` with the reason.
    ``operations`` counts the model operations driven, by kind.
    """

    source: str
    variant: str
    ncpus: int
    events: int
    compared: int
    fields_compared: int
    disagreements: tuple[Disagreement, ...]
    unmapped: tuple[Unmapped, ...]
    operations: tuple[tuple[str, int], ...]

    @property
    def ok(self) -> bool:
        """No disagreement."""
        return not self.disagreements

    def summary(self, limit: int = 5) -> str:
        """A short report: counts, then the first ``limit`` unmapped records and
        disagreements."""
        lines = [
            f"{self.source}: {self.variant}, {self.ncpus} possible CPUs",
            f"  {self.events} vector-domain events: {self.compared} compared "
            f"({self.fields_compared} fields), {len(self.unmapped)} unmapped, "
            f"{len(self.disagreements)} disagreements",
            "  operations: " + ", ".join(f"{k} {n}" for k, n in self.operations),
        ]
        for title, items in (("unmapped", self.unmapped), ("disagreements", self.disagreements)):
            if items:
                shown = items[:limit]
                more = f" (first {len(shown)} of {len(items)})" if len(items) > len(shown) else ""
                lines.append(f"  {title}{more}:")
                lines.extend(f"    {item}" for item in shown)
        return "\n".join(lines)


# ------------------------------------------------------------------------------ parsing

_LINE_RE = re.compile(
    r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\d\s]\S*)\s+)?(?P<ts>\d+\.\d+):\s+(?P<event>[\w.]+):\s?(?P<payload>.*)$"
)
_PROBE_RE = re.compile(r"^\((?P<sym>[\w.]+)\+0x[0-9a-fA-F]+/0x[0-9a-fA-F]+(?: <- [\w.]+)?\)\s*")
_KV_RE = re.compile(r"(\w+)=(-?0x[0-9a-fA-F]+|-?\d+)(?=[,\s]|$)")
_LOST_RE = re.compile(r"^\s*CPU:\d+ \[LOST \d+ EVENTS\]\s*$")
_JSON_META = frozenset(
    (
        "event",
        "timestamp",
        "cpu",
        "task",
        "pid",
        "flags",
        "system",
        "step_no",
        "step",
        "probe_symbol",
        "irte",
        "text",
        "raw",
    )
)


def _int(value: str) -> int:
    neg = value.startswith("-")
    body = value[1:] if neg else value
    n = int(body, 16) if body.lower().startswith("0x") else int(body)
    return -n if neg else n


def _open_text(path: Path) -> Iterator[str]:
    """The file's lines (gzip when it ends in .gz); InvalidArgument when unreadable."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                yield from f
        else:
            with path.open(encoding="utf-8", errors="replace") as f:
                yield from f
    except (OSError, EOFError, zlib.error) as e:
        raise InvalidArgument(f"{path}: cannot read the trace: {e}") from None


def _check_required(path: Path, rec: TraceRecord) -> None:
    for name in REQUIRED.get(rec.event, ()):
        if name not in rec.fields:
            raise InvalidArgument(f"{path}:{rec.line}: {rec.event} has no {name}= field")


def _parse_raw_line(path: Path, lineno: int, text: str) -> TraceRecord | None:
    if not text.strip() or text.lstrip().startswith("#"):
        return None
    if _LOST_RE.match(text):
        return TraceRecord(lineno, text, "_lost_events", -1, -1, {})
    m = _LINE_RE.match(text)
    if not m:
        raise InvalidArgument(f"{path}:{lineno}: not an ftrace event line: {text[:80]!r}")
    payload = m["payload"]
    probe = _PROBE_RE.match(payload)
    if probe:
        payload = payload[probe.end() :]
    fields = {k: _int(v) for k, v in _KV_RE.findall(payload)}
    rec = TraceRecord(
        lineno, text, m["event"], int(m["pid"]), int(m["cpu"]), fields, probe is not None
    )
    _check_required(path, rec)
    return rec


def _parse_json_line(path: Path, lineno: int, text: str) -> TraceRecord | None:
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidArgument(f"{path}:{lineno}: not a JSON record: {e.msg}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        raise InvalidArgument(f"{path}:{lineno}: a record needs an 'event' string")
    event = obj["event"]
    if event == "_unparsed":
        return _parse_raw_line(path, lineno, str(obj.get("raw", "")))
    fields: dict[str, int] = {}
    for k, v in obj.items():
        if k in _JSON_META or isinstance(v, bool):
            continue
        if isinstance(v, int):
            fields[k] = v
        elif isinstance(v, str) and re.fullmatch(r"-?(0x[0-9a-fA-F]+|\d+)", v):
            fields[k] = _int(v)
    cpu = obj.get("cpu")
    header_cpu = -1
    if isinstance(cpu, int) and not isinstance(cpu, bool):
        if event in CPU_FIELD_EVENTS:
            fields["cpu"] = cpu
        else:
            header_cpu = cpu
    pid = obj.get("pid")
    rec = TraceRecord(
        lineno,
        text.rstrip("\n"),
        event,
        pid if isinstance(pid, int) else -1,
        header_cpu,
        fields,
        # parse_trace.py labels kretprobe lines ("(f+0x85/0x160 <- g)") as "other".
        obj.get("system") == "rk" or event in KNOWN_PROBES,
    )
    _check_required(path, rec)
    return rec


def _is_json(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    return name.endswith((".jsonl", ".json"))


def parse_trace(path: str | Path) -> list[TraceRecord]:
    """The records of a raw ftrace text (``trace.txt``, optionally gzipped) or of its parsed
    JSON-lines form (``trace.jsonl[.gz]``). A malformed line raises
    :class:`~msixcore.InvalidArgument` naming the file and the line."""
    path = Path(path)
    parse = _parse_json_line if _is_json(path) else _parse_raw_line
    out: list[TraceRecord] = []
    for lineno, text in enumerate(_open_text(path), start=1):
        rec = parse(path, lineno, text.rstrip("\n"))
        if rec is not None:
            out.append(rec)
    return out


@dataclass
class _Capture:
    trace: Path
    ncpus: int | None = None
    #: step number → irq → smp_affinity_list after that step.
    affinity: dict[int, dict[int, list[int]]] = field(default_factory=dict)


def _cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def _find_capture(path: Path) -> _Capture:
    if not path.exists():
        raise InvalidArgument(f"{path}: no such file or folder")
    if path.is_file():
        return _Capture(path)
    names = ("guest/trace.txt.gz", "guest/trace.txt", "trace.txt.gz", "trace.txt")
    for name in (*names, "trace.jsonl.gz", "trace.jsonl"):
        if (path / name).is_file():
            cap = _Capture(path / name)
            break
    else:
        raise InvalidArgument(f"{path}: no trace.txt[.gz] or trace.jsonl[.gz] in this folder")
    guest = path / "guest"
    try:
        cpus = (guest / "cpus.txt").read_text() if (guest / "cpus.txt").is_file() else ""
        for line in cpus.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "possible" and value.strip():
                cap.ncpus = max(_cpu_list(value)) + 1
        for snap in sorted((guest / "irqaff").glob("[0-9][0-9]_*.txt")):
            step = int(snap.name[:2])
            table: dict[int, list[int]] = {}
            for line in snap.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0].isdigit():
                    table[int(parts[0])] = _cpu_list(parts[1])
            cap.affinity[step] = table
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"{path}: unreadable capture metadata: {e}") from None
    return cap


# ------------------------------------------------------------------------------ the replay


@dataclass
class _Ctx:
    """The operation last driven for one irq."""

    kind: str
    head: TraceRecord
    head_seq: int
    before: _IrqState | None
    freed: list[tuple[int, int]] = field(default_factory=list)
    allocs: int = 0
    allocs_seen: int = 0
    ret: int = 0


_Event = tuple[str, dict[str, int]]


@dataclass
class _Expect:
    name: str
    fields: dict[str, int]
    head: TraceRecord


def _errno(e: MsixError) -> int:
    if isinstance(e, NoSpace):
        return -28
    if isinstance(e, InvalidArgument):
        return -22
    return -16


class _Replayer:
    """One replay: the trace's records in order, the models, and what the comparison found."""

    def __init__(self, records: Sequence[TraceRecord], cap: _Capture, source: str) -> None:
        self.recs = records
        self.pos = {r.line: i for i, r in enumerate(records)}
        self.cap = cap
        self.source = source
        self.dis: list[Disagreement] = []
        self.unmapped: dict[int, Unmapped] = {}
        self.compared: set[int] = set()
        self.fields = 0
        self.ops: Counter[str] = Counter()
        # Matrix events the model made, waiting for the trace's line (tracepoint / kprobe),
        # and the trace's lines waiting for the model's event (they can come first: the
        # kernel prints irq_matrix_reserve before vector_reserve).
        self.exp_mat: deque[_Expect] = deque()
        self.exp_km: deque[_Expect] = deque()
        self.wait_mat: deque[TraceRecord] = deque()
        self.wait_km: deque[TraceRecord] = deque()
        self.last_events: list[_Expect] = []
        # Managed irqs restarted by a CPU coming online: their state before, their events.
        self.stash: dict[int, tuple[_IrqState | None, list[_Event]]] = {}
        self.ctx: dict[int, _Ctx] = {}
        self.seq = 0
        self.step = 0
        self.has_km = any(r.event in KM_PROBES for r in records)
        self.km_on = False
        self.has_ir = any(r.event in IR_PROBES for r in records)
        self.before_all: dict[int, _IrqState] = {}
        self.window_end: int | None = None
        self.boot_online = -1
        self.apic_mode: str | None = None
        self.x2apic = False
        self.rem = InterruptRemapper() if self.has_ir else None
        self.ir_block: dict[int, tuple[int, int]] = {}
        self.k2m: dict[int, int] = {}
        self.m2k: dict[int, int] = {}
        self.hi_of: dict[int, int] = {}
        self.programmed: set[int] = set()
        self.ncpus = cap.ncpus or self._max_cpu() + 1
        self.dom = VectorDomain(1)

    # ---------------------------------------------------------------- bookkeeping

    def _max_cpu(self) -> int:
        top = 0
        for r in self.recs:
            top = max(top, r.cpu, r.fields.get("cpu", 0), r.fields.get("prev_cpu", 0))
        return top

    def cmp(self, rec: TraceRecord, name: str, expected: object, got: object) -> None:
        """One field: the kernel printed `expected`, the model has `got`."""
        self.fields += 1
        self.compared.add(rec.line)
        if expected != got:
            self.dis.append(
                Disagreement(rec.line, rec.text, rec.event, name, _show(expected), _show(got))
            )

    def disagree(self, rec: TraceRecord, name: str, expected: object, got: object) -> None:
        self.fields += 1
        self.compared.add(rec.line)
        self.dis.append(
            Disagreement(rec.line, rec.text, rec.event, name, _show(expected), _show(got))
        )

    def unmap(self, rec: TraceRecord, reason: str) -> None:
        self.unmapped.setdefault(rec.line, Unmapped(rec.line, rec.text, rec.event, reason))

    def state(self, irq: int) -> _IrqState | None:
        try:
            return self.dom.irq_state(irq)
        except InvalidArgument:
            return None

    def target(self, st: _IrqState | None) -> tuple[int, int]:
        """`(vector, cpu)` an irq's message carries: its vector, or the shutdown vector on the
        first online CPU (`vector_assign_managed_shutdown`) without one."""
        if st is None or st["vector"] is None or st["cpu"] is None:
            return SHUTDOWN_VECTOR, self.dom.online_cpus()[0]
        return st["vector"], st["cpu"]

    def apicdest(self, cpu: int) -> int:
        return 1 << cpu if self.apic_mode == "logical" else cpu

    def in_window(self) -> bool:
        return self.window_end is not None

    # ---------------------------------------------------------------- driving the model

    def drive(
        self,
        rec: TraceRecord,
        kind: str,
        call: Callable[[], object],
        irq: int | None = None,
        traced: bool = True,
    ) -> bool:
        """Run one model operation for the trace's `rec`; queue the matrix events it made."""
        self.flush_expectations()
        self.seq += 1
        self.ops[kind] += 1
        self.before_all = {i: self.dom.irq_state(i) for i in self.dom.irqs()}
        before = self.before_all.get(irq) if irq is not None else None
        ok, ret = True, 0
        try:
            call()
        except MsixError as e:
            ok, ret = False, _errno(e)
            self.disagree(rec, "model", "success", f"{type(e).__name__}: {e}")
        events = self.dom.take_trace()
        if irq is not None:
            ctx = _Ctx(kind, rec, self.seq, before, ret=ret)
            for name, f in events:
                if f.get("irq") != irq:
                    continue
                if name == "irq_matrix_free":
                    ctx.freed.append((f["cpu"], f["bit"]))
                elif name in ("irq_matrix_alloc", "irq_matrix_alloc_managed"):
                    ctx.allocs += 1
            self.ctx[irq] = ctx
        self.queue(rec, events, kind, traced)
        return ok

    def queue(self, rec: TraceRecord, events: list[_Event], kind: str, traced: bool) -> None:
        self.last_events = []
        for name, f in events:
            if kind == "cpu_online" and "irq" in f:
                # A managed irq restarted by irq_affinity_online_cpu: its lines come with its
                # own vector_activate, later.
                irq = f["irq"]
                self.stash.setdefault(irq, (self.before_all.get(irq), []))[1].append((name, f))
                continue
            self.expect(_Expect(name, f, rec), traced)
        self.pump()

    def expect(self, e: _Expect, traced: bool) -> None:
        self.last_events.append(e)
        if traced:
            self.exp_mat.append(e)
        if self.km_on and e.name in PROBE_OF:
            self.exp_km.append(e)

    def flush_expectations(self) -> None:
        """Before a new operation: model events of earlier ones the trace never showed."""
        for queue, kprobe in ((self.exp_mat, False), (self.exp_km, True)):
            while queue:
                e = queue.popleft()
                shown = PROBE_OF[e.name] if kprobe else e.name
                self.disagree(e.head, f"{shown} after it", "(none in the trace)", _event_text(e))

    def pump(self) -> None:
        while self.wait_mat and self.exp_mat:
            self.match_matrix(self.wait_mat.popleft(), self.exp_mat.popleft())
        while self.wait_km and self.exp_km:
            self.match_probe(self.wait_km.popleft(), self.exp_km.popleft())

    def match_matrix(self, rec: TraceRecord, e: _Expect) -> None:
        self.cmp(rec, "event", rec.event, e.name)
        if rec.event != e.name:
            return
        for name in MATRIX_FIELDS:
            if name in rec.fields:
                self.cmp(rec, name, rec[name], e.fields.get(name))

    def match_probe(self, rec: TraceRecord, e: _Expect) -> None:
        self.cmp(rec, "event", rec.event, PROBE_OF[e.name])
        if rec.event != PROBE_OF[e.name]:
            return
        if rec.event == "km_free":
            self.cmp(rec, "cpu", rec["cpu"], e.fields.get("cpu"))
            self.cmp(rec, "bit", rec["bit"], e.fields.get("bit"))
            self.cmp(rec, "managed", rec["managed"], e.fields.get("is_managed"))
        elif rec.event in ("km_alloc_ret", "km_alloc_managed_ret"):
            self.cmp(rec, "bit", rec["bit"], e.fields.get("bit"))

    # ---------------------------------------------------------------- the run

    def run(self) -> ReplayResult:
        self.boot()
        offline = self.windows()
        for i, rec in enumerate(self.recs):
            try:
                if i in offline:
                    cpu, end = offline[i]
                    self.begin_offline(rec, cpu, end)
                self.record(rec)
            except InvalidArgument:
                raise
            except (MsixError, ValueError, KeyError, IndexError, OverflowError) as e:
                # A value no kernel prints (a negative CPU, an index past its block, ...).
                raise InvalidArgument(
                    f"{self.source}:{rec.line}: cannot replay this line ({type(e).__name__}: {e})"
                ) from None
            if self.window_end == i:
                self.window_end = None
        self.finish()
        return self.result()

    def boot(self) -> None:
        """The boot prefix: ``irq_matrix_assign_system`` lines, the boot CPU's
        ``irq_matrix_online``, its legacy ``irq_matrix_assign`` lines. They give the system
        vectors, the end of the allocation range (the smallest that explains the boot CPU's
        ``global_avl``) and the number of legacy irqs; the model boots from them."""
        recs = self.recs
        i = 0
        system: list[int] = []
        while i < len(recs) and recs[i].event == "irq_matrix_assign_system":
            system.append(recs[i]["bit"])
            i += 1
        if i == len(recs) or recs[i].event != "irq_matrix_online" or not system:
            where = recs[min(i, len(recs) - 1)].line
            raise InvalidArgument(
                f"{self.source}:{where}: the trace does not start with the boot "
                "(irq_matrix_assign_system lines, then irq_matrix_online): capture from boot"
            )
        online = recs[i]
        if online.cpu > 0:
            raise InvalidArgument(
                f"{self.source}:{online.line}: the boot CPU is {online.cpu}; the model boots on 0"
            )
        self.boot_online = online.line
        j = i + 1
        legacy = 0
        while j < len(recs) and recs[j].event == "irq_matrix_assign":
            if not ISA_IRQ0_VECTOR <= recs[j]["bit"] < ISA_IRQ0_VECTOR + 16:
                break
            legacy = 16
            j += 1
        sysvec = list(system)
        if legacy and sysvec[-1] == ISA_IRQ0_VECTOR + PIC_CASCADE_IR:
            sysvec.pop()
        avl = online["global_avl"]
        bits = set(system)
        first = None
        for end in range(FIRST_EXTERNAL_VECTOR + 1, 257):
            inside = sum(1 for b in bits if FIRST_EXTERNAL_VECTOR <= b < end)
            if end - FIRST_EXTERNAL_VECTOR - inside == avl:
                first = end
                break
        if first is None:
            raise InvalidArgument(
                f"{self.source}:{online.line}: global_avl={avl} fits no allocation range "
                "with these system vectors"
            )
        try:
            self.dom = VectorDomain(
                self.ncpus,
                online=[0],
                system_vectors=sysvec,
                first_system_vector=first,
                legacy_irqs=legacy,
                trace=True,
            )
        except MsixError as e:
            raise InvalidArgument(
                f"{self.source}:{online.line}: cannot boot the model: {e}"
            ) from None
        self.ops["boot"] += 1
        self.queue(recs[0], self.dom.take_trace(), "boot", True)

    def windows(self) -> dict[int, tuple[int, int]]:
        """CPU offline windows: the lines the dying CPU's stop-machine thread wrote (same
        pid), ending with its ``irq_matrix_offline`` (kprobe or tracepoint): start index →
        (cpu, end index)."""
        out: dict[int, tuple[int, int]] = {}
        for j, end in enumerate(self.recs):
            if end.event not in ("km_offline", "irq_matrix_offline"):
                continue
            if end.event == "irq_matrix_offline" and self.recs[j - 1].event == "km_offline":
                continue
            i = j
            while (
                i > 0
                and self.recs[i - 1].pid == end.pid
                and self.recs[i - 1].vector_domain
                and self.recs[i - 1].event not in ("km_offline", "irq_matrix_offline")
            ):
                i -= 1
            if end.cpu >= 0:
                out[i] = (end.cpu, j)
            else:
                self.unmap(end, "the executing CPU is unknown (parsed form): offline not replayed")
        return out

    def begin_offline(self, rec: TraceRecord, cpu: int, end: int) -> None:
        window = self.recs[self.pos[rec.line] : end + 1]
        traced = any(r.event in MATRIX_EVENTS for r in window)
        self.window_end = end
        self.drive(rec, "cpu_offline", lambda: self.dom.cpu_offline(cpu), traced=traced)

    def finish(self) -> None:
        self.flush_expectations()
        for rec in (*self.wait_mat, *self.wait_km):
            self.disagree(rec, "event", rec.event, "(the model made no such change)")
        for irq, (_, events) in self.stash.items():
            for name, f in events:
                e = _Expect(name, f, self.recs[-1])
                self.disagree(
                    e.head, f"restart of irq {irq}", "(none in the trace)", _event_text(e)
                )

    def result(self) -> ReplayResult:
        domain_recs = [r for r in self.recs if r.vector_domain]
        for rec in domain_recs:
            if rec.line not in self.compared and rec.line not in self.unmapped:
                self.unmap(rec, "not used by the replay")
        return ReplayResult(
            source=self.source,
            variant="ir" if self.has_ir else "noir",
            ncpus=self.ncpus,
            events=len(domain_recs),
            compared=sum(1 for r in domain_recs if r.line in self.compared),
            fields_compared=self.fields,
            disagreements=tuple(self.dis),
            unmapped=tuple(sorted(self.unmapped.values(), key=lambda u: u.line)),
            operations=tuple(sorted(self.ops.items())),
        )

    # ---------------------------------------------------------------- one record

    def record(self, rec: TraceRecord) -> None:
        ev = rec.event
        if ev == "tracing_mark_write":
            m = re.search(r"RK_STEP (\d+)", rec.text)
            if m:
                self.step = int(m.group(1))
            # The capture registers its kprobes before its first step marker.
            self.km_on = self.km_on or self.has_km
            return
        if ev == "_lost_events":
            self.unmap(rec, "ftrace lost events here: later comparisons may disagree")
            return
        if not rec.vector_domain:
            return
        handler = self.handlers.get(ev)
        if handler is None:
            self.unmap(rec, "a kprobe the replay does not use")
        else:
            handler(self, rec)

    def on_matrix(self, rec: TraceRecord) -> None:
        if rec.event == "irq_matrix_online" and rec.line != self.boot_online:
            cpu = rec.cpu
            if cpu < 0:
                self.unmap(rec, "the executing CPU (the one coming online) is unknown")
                return
            if cpu in self.dom.online_cpus():
                # Its offline left no line in the trace: replay it unseen.
                self.drive(rec, "cpu_offline", lambda: self.dom.cpu_offline(cpu), traced=False)
                self.exp_km.clear()
            self.drive(rec, "cpu_online", lambda: self.dom.cpu_online(cpu))
        self.wait_mat.append(rec)
        self.pump()

    def on_km(self, rec: TraceRecord) -> None:
        if not self.km_on:
            # No step marker before the first kprobe line: the operation it belongs to was
            # driven already.
            self.km_on = True
            self.exp_km.extend(e for e in self.last_events if e.name in PROBE_OF)
        if rec.event in ("km_alloc_ret", "km_alloc_managed_ret") and rec["bit"] < 0:
            self.unmap(
                rec,
                f"failed matrix allocation (ret {rec['bit']}): the model records only the "
                "changes it makes",
            )
            return
        self.wait_km.append(rec)
        self.pump()

    # ---------------------------------------------------------------- irq_vectors

    def current(self, irq: int, *kinds: str) -> _Ctx | None:
        """The irq's context if the last operation driven was for it (and of one of `kinds`)."""
        ctx = self.ctx.get(irq)
        if ctx is None or ctx.head_seq != self.seq or (kinds and ctx.kind not in kinds):
            return None
        return ctx

    def on_vector_reserve(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        st = self.state(irq)
        if st is None and not self.in_window():
            self.drive(rec, "alloc", lambda: self.dom.alloc_irq(irq=irq), irq)
            st = self.state(irq)
        self.cmp(rec, "ret", rec["ret"], 0 if st is not None else self.ret_of(irq))
        self.cmp(rec, "has_reserved", 1, int(st is not None and st["has_reserved"]))

    def ret_of(self, irq: int) -> int:
        ctx = self.ctx.get(irq)
        return ctx.ret if ctx else -22

    def on_vector_reserve_managed(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        if self.state(irq) is None and not self.in_window():
            if rec["ret"] != 0:
                self.unmap(
                    rec,
                    "failed managed reservation: the failing CPU of the mask is not traced, "
                    "so the mask is unknown",
                )
                for r in [r for r in self.wait_mat if r.event.endswith("_managed")]:
                    self.wait_mat.remove(r)
                    self.unmap(r, "part of a failed managed reservation")
                return
            mask = [r["cpu"] for r in self.wait_mat if r.event == "irq_matrix_reserve_managed"]
            if not mask:
                self.unmap(rec, "the affinity mask is unknown (no irq_matrix_reserve_managed)")
                return
            self.drive(
                rec,
                "alloc_managed",
                lambda: self.dom.alloc_irq(mask, managed=True, irq=irq),
                irq,
            )
        st = self.state(irq)
        self.cmp(rec, "ret", rec["ret"], 0 if st is not None else self.ret_of(irq))
        self.cmp(rec, "is_managed", 1, int(st is not None and st["managed"]))

    def on_vector_setup(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        if rec["is_legacy"] and self.state(irq) is None and not self.in_window():
            self.drive(
                rec,
                "alloc_legacy",
                lambda: self.dom.alloc_legacy_irq(irq, activated=True),
                irq,
            )
        st = self.state(irq)
        self.cmp(rec, "ret", rec["ret"], 0 if st is not None else self.ret_of(irq))
        # A legacy irq that keeps its boot vector is a fixed-assigned vector from the start.
        fixed = (
            st is not None
            and st["vector"] is not None
            and not st["can_reserve"]
            and not st["managed"]
        )
        self.cmp(rec, "is_legacy", rec["is_legacy"], int(fixed))

    def on_vector_clear(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        ctx = self.current(irq)
        if (ctx is None or not ctx.freed) and not self.in_window():
            st = self.state(irq)
            if st is None and irq in self.dom.legacy_vectors_held():
                self.drive(
                    rec,
                    "alloc_legacy",
                    lambda: self.dom.alloc_legacy_irq(irq, activated=False),
                    irq,
                )
            elif st is not None and not st["requested"]:
                # x86_vector_free_irqs of an irq still holding a vector.
                self.drive(rec, "free", lambda: self.dom.free(irq), irq)
            else:
                self.unmap(rec, "a vector cleared outside any operation the replay knows")
                return
            ctx = self.ctx[irq]
        freed = ctx.freed if ctx is not None else []
        cpu, vector = freed[0] if freed else (None, None)
        self.cmp(rec, "vector", rec["vector"], vector)
        self.cmp(rec, "cpu", rec["cpu"], cpu)
        self.cmp(rec, "prev_vector", rec["prev_vector"], freed[1][1] if len(freed) > 1 else 0)
        if rec["prev_vector"]:
            self.cmp(rec, "prev_cpu", rec["prev_cpu"], freed[1][0] if len(freed) > 1 else None)

    def compare_flags(self, rec: TraceRecord, st: _IrqState) -> None:
        self.cmp(rec, "is_managed", rec["is_managed"], int(st["managed"]))
        self.cmp(rec, "can_reserve", rec["can_reserve"], int(st["can_reserve"]))

    def on_vector_activate(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        st = self.state(irq)
        if st is None:
            self.unmap(rec, "activation of an irq the model does not have")
            return
        if rec["reserve"]:
            # msi.c early activation: the shutdown vector only, no matrix change.
            self.compare_flags(rec, st)
            self.cmp(rec, "holds_vector", 0, int(st["vector"] is not None))
            return
        if irq in self.stash:
            # The restart of a managed irq by CPU online: its matrix events come now.
            before, events = self.stash.pop(irq)
            self.compare_flags(rec, before or st)
            ctx = _Ctx("restart", rec, self.seq, before)
            for name, f in events:
                if name in ("irq_matrix_alloc", "irq_matrix_alloc_managed"):
                    ctx.allocs += 1
                self.expect(_Expect(name, f, rec), True)
            self.ctx[irq] = ctx
            self.pump()
            return
        self.compare_flags(rec, st)
        if self.in_window():
            return
        if not st["managed"] and not st["can_reserve"] and st["requested"]:
            # A fixed-assigned vector re-activated by its irqchip: the kernel's chain keeps a
            # vector already on an online CPU of the mask; nothing changes.
            self.cmp(rec, "holds_vector", 1, int(st["vector"] is not None))
            self.ctx[irq] = _Ctx("fixed", rec, self.seq, st)
            return
        self.drive(rec, "activate", lambda: self.dom.activate(irq), irq)

    def on_vector_deactivate(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        st = self.state(irq)
        if st is None:
            self.unmap(rec, "deactivation of an irq the model does not have")
            return
        self.compare_flags(rec, st)
        if self.in_window():
            return
        if not st["managed"] and not st["can_reserve"]:
            # Regular fixed assigned interrupt: x86_vector_deactivate returns at once.
            self.cmp(rec, "holds_vector", 1, int(st["vector"] is not None))
            return
        self.drive(rec, "deactivate", lambda: self.dom.deactivate(irq), irq)

    def on_vector_teardown(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        ctx = self.current(irq, "free")
        if ctx is None:
            if self.state(irq) is None or self.in_window():
                self.unmap(rec, "teardown of an irq the model does not have")
                return
            self.drive(rec, "free", lambda: self.dom.free(irq), irq)
            ctx = self.ctx[irq]
        before = ctx.before
        self.cmp(
            rec, "is_managed", rec["is_managed"], int(before is not None and before["managed"])
        )
        self.cmp(
            rec,
            "has_reserved",
            rec["has_reserved"],
            int(before is not None and before["has_reserved"]),
        )
        self.cmp(rec, "freed", 1, int(self.state(irq) is None))

    def on_vector_alloc(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        if rec["ret"] < 0:
            self.unmap(
                rec,
                f"failed attempt (ret {rec['ret']}) inside assign_irq_vector_any_locked: an "
                "empty search mask (node ∩ affinity, before the node masks exist at early "
                "boot); the model reports no failed fallback steps",
            )
            return
        ctx = self.current(irq, "activate", "restart", "alloc")
        if (ctx is None or ctx.allocs_seen >= max(ctx.allocs, 1)) and not self.in_window():
            self.set_affinity(rec, irq)
            ctx = self.ctx.get(irq)
        if ctx is not None:
            ctx.allocs_seen += 1
        st = self.state(irq)
        before = ctx.before if ctx is not None else None
        self.cmp(rec, "vector", rec["vector"], st["vector"] if st else None)
        self.cmp(
            rec, "reserved", rec["reserved"], int(before is not None and before["has_reserved"])
        )

    def set_affinity(self, rec: TraceRecord, irq: int) -> None:
        """A vector_alloc outside any activation: a user affinity change (done at once with
        interrupt remapping, at the next interrupt without). The mask is the capture's
        snapshot after the step when there is one, else the CPU the vector went to."""
        mask = self.cap.affinity.get(self.step, {}).get(irq)
        if not mask:
            allocs = [r for r in self.wait_mat if r.event == "irq_matrix_alloc"]
            if allocs:
                mask = [allocs[-1]["cpu"]]
            else:
                upd = self.lookahead(rec, "vector_update", irq)
                mask = [upd["cpu"]] if upd else []
        if not mask:
            self.unmap(rec, "an affinity change whose target mask is not in the trace")
            return
        cpus = mask
        self.drive(rec, "set_affinity", lambda: self.dom.set_affinity(irq, cpus), irq)

    def lookahead(self, rec: TraceRecord, event: str, irq: int) -> TraceRecord | None:
        i = self.pos[rec.line]
        for r in self.recs[i + 1 : i + 20]:
            if r.event == event and r.fields.get("irq") == irq:
                return r
        return None

    def on_vector_alloc_managed(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        if rec["ret"] < 0:
            self.unmap(rec, f"failed managed allocation (ret {rec['ret']})")
            return
        ctx = self.ctx.get(irq)
        if ctx is not None:
            ctx.allocs_seen += 1
        st = self.state(irq)
        self.cmp(rec, "vector", rec["vector"], st["vector"] if st else None)

    def on_vector_update(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        st = self.state(irq)
        ctx = self.ctx.get(irq)
        before = ctx.before if ctx is not None else None
        self.cmp(rec, "vector", rec["vector"], st["vector"] if st else None)
        self.cmp(rec, "cpu", rec["cpu"], st["cpu"] if st else None)
        prev = before["vector"] if before is not None else None
        self.cmp(rec, "prev_vector", rec["prev_vector"], prev or 0)
        if rec["prev_vector"]:
            self.cmp(rec, "prev_cpu", rec["prev_cpu"], before["cpu"] if before else None)

    def on_vector_config(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        st = self.state(irq)
        if st is None:
            self.unmap(rec, "configuration of an irq the model does not have")
            return
        vector, cpu = self.target(st)
        self.cmp(rec, "vector", rec["vector"], vector)
        self.cmp(rec, "cpu", rec["cpu"], cpu)
        if self.apic_mode is None and 0 <= rec["cpu"] < 32:
            # The APIC destination mode, from the kernel's own first line.
            if rec["apicdest"] == 1 << rec["cpu"]:
                self.apic_mode = "logical"
            elif rec["apicdest"] == rec["cpu"]:
                self.apic_mode = "physical"
        if self.apic_mode is not None:
            self.cmp(rec, "apicdest", rec["apicdest"], self.apicdest(cpu))

    def on_vector_free_moved(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        st = self.state(irq)
        pending = self.dom.pending_move(irq) if st is not None else None
        if not self.in_window():
            self.drive(rec, "complete_move", lambda: self.dom.complete_move(irq), irq)
        cpu, vector = pending or (None, None)
        self.cmp(rec, "cpu", rec["cpu"], cpu)
        self.cmp(rec, "vector", rec["vector"], vector)
        self.cmp(rec, "is_managed", rec["is_managed"], int(st is not None and st["managed"]))

    # ---------------------------------------------------------------- kprobes

    def on_send_cleanup_vector(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        st = self.state(irq)
        if st is None:
            self.unmap(rec, "an irq the model does not have")
            return
        self.cmp(rec, "vector", rec["vector"], st["vector"])
        self.cmp(rec, "cpu", rec["cpu"], st["cpu"])
        if self.apic_mode is not None and st["cpu"] is not None:
            self.cmp(rec, "dest_apicid", rec["dest_apicid"], self.apicdest(st["cpu"]))
        pending = self.dom.pending_move(irq)
        self.cmp(rec, "prev_vector", rec["prev_vector"], pending[1] if pending else 0)
        if rec["prev_vector"]:
            self.cmp(rec, "prev_cpu", rec["prev_cpu"], pending[0] if pending else None)
        # intel_ir_set_affinity wrote the new IRTE (modify_irte) before the cleanup.
        block = self.ir_block.get(irq)
        if block is not None:
            self.program(block[0], st)

    # ---------------------------------------------------------------- Intel IR kprobes

    def adopt(self, irq: int, rec: TraceRecord) -> int:
        """The model IRTE of the irq; one allocated now for an irq whose IRTE the kprobes did
        not see allocated (at boot)."""
        assert self.rem is not None
        block = self.ir_block.get(irq)
        if block is None:
            block = (self.rem.alloc(1), 1)
            self.ir_block[irq] = block
        return block[0] + rec["sub_handle"]

    def on_ir_domain_alloc(self, rec: TraceRecord) -> None:
        assert self.rem is not None
        virq, nr = rec["virq"], rec["nr_irqs"]
        # The IR domain allocates before its parent, the vector domain.
        self.cmp(rec, "allocated", 0, int(self.state(virq) is not None))
        try:
            self.ir_block[virq] = (self.rem.alloc(nr), nr)
        except MsixError as e:
            self.disagree(rec, "irte_alloc", "success", str(e))

    def on_ir_domain_free(self, rec: TraceRecord) -> None:
        assert self.rem is not None
        virq = rec["virq"]
        # ... and frees before it.
        self.cmp(rec, "allocated", 1, int(self.state(virq) is not None))
        block = self.ir_block.pop(virq, None)
        if block is not None:
            for i in range(block[1]):
                self.programmed.discard(block[0] + i)
            self.rem.free(block[0], block[1])

    def check_index(self, rec: TraceRecord, index: int) -> None:
        """The kernel's IRTE index and the model's pair up one to one for the whole trace
        (first-fit allocation in both, the boot's own entries aside)."""
        k = rec["index"]
        if index not in self.m2k and k not in self.k2m:
            self.m2k[index], self.k2m[k] = k, index
            return
        self.cmp(rec, "index", k, self.m2k.get(index))

    def on_ir_activate(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        self.check_index(rec, self.adopt(irq, rec))
        st = self.state(irq)
        self.cmp(rec, "reserve", rec["reserve"], int(st is None or st["vector"] is None))

    def program(self, index: int, st: _IrqState | None) -> None:
        """Write the IRTE the kernel writes: P, DM (logical destination mode), RH, the vector
        and destination of the model's vector, the requester id from the kernel's IRTE."""
        assert self.rem is not None
        vector, cpu = self.target(st)
        dest = self.apicdest(cpu)
        hi = self.hi_of.get(index, 0)
        irte = Irte(
            present=True,
            dest_mode=self.apic_mode == "logical",
            redir_hint=True,
            vector=vector,
            dest_id=dest if self.x2apic else dest << 8,
            sid=hi & 0xFFFF,
            sq=(hi >> 16) & 3,
            svt=(hi >> 18) & 3,
        )
        self.rem.set(index, irte)
        self.programmed.add(index)

    def compare_irte(
        self, rec: TraceRecord, index: int, deliver: bool, source_known: bool = True
    ) -> None:
        assert self.rem is not None
        lo, hi = rec["irte_lo"], rec["irte_hi"]
        try:
            kernel = Irte.from_u128(hi << 64 | lo)
        except MsixError as e:
            self.disagree(rec, "irte", "a remapped-format IRTE", str(e))
            return
        model = self.rem.get(index)
        for name in ("present", "fpd", "dest_mode", "redir_hint", "trigger_mode"):
            self.cmp(rec, f"irte.{name}", int(getattr(kernel, name)), int(getattr(model, name)))
        for name in ("delivery_mode", "vector", "dest_id"):
            self.cmp(rec, f"irte.{name}", getattr(kernel, name), getattr(model, name))
        if source_known:
            # The requester id was learned from an earlier IRTE of this entry: it must hold.
            for name in ("sid", "sq", "svt"):
                self.cmp(rec, f"irte.{name}", getattr(kernel, name), getattr(model, name))
        if deliver and kernel.present:
            # An MSI from the device through the model remapper lands where the kernel's
            # IRTE sends it.
            addr, data = compose_msi(index, rec["sub_handle"])
            got = self.rem.remap(kernel.sid, addr, data)
            self.cmp(rec, "remap.vector", kernel.vector, got.vector)
            self.cmp(rec, "remap.dest_id", kernel.dest_id, got.dest_id)

    def ir_entry(self, rec: TraceRecord) -> tuple[int, bool]:
        """Map the record's IRTE; note the requester id (the device's, which the vector
        domain does not know: taken from the entry's first IRTE in the trace) and whether
        destinations are x2APIC ids. Returns the model index and whether the requester id
        was known before this record."""
        index = self.adopt(rec["irq"], rec)
        self.check_index(rec, index)
        known = index in self.hi_of
        self.hi_of.setdefault(index, rec["irte_hi"])
        if (rec["irte_lo"] >> 32) & 0xFF:
            self.x2apic = True
        return index, known

    def on_ir_compose_msi(self, rec: TraceRecord) -> None:
        index, known = self.ir_entry(rec)
        self.program(index, self.state(rec["irq"]))
        self.compare_irte(rec, index, deliver=True, source_known=known)

    def on_ir_set_affinity(self, rec: TraceRecord) -> None:
        irq = rec["irq"]
        index, known = self.ir_entry(rec)
        if index not in self.programmed:
            # Written before the kprobes (boot): the IRTE of the vector before this operation.
            self.program(index, self.before_all.get(irq) or self.state(irq))
        self.compare_irte(rec, index, deliver=False, source_known=known)

    def on_ir_deactivate(self, rec: TraceRecord) -> None:
        assert self.rem is not None
        irq = rec["irq"]
        index, known = self.ir_entry(rec)
        if index not in self.programmed:
            self.program(index, self.before_all.get(irq) or self.state(irq))
        self.compare_irte(rec, index, deliver=False, source_known=known)
        self.rem.clear(index)
        self.programmed.discard(index)

    handlers: Mapping[str, Callable[[_Replayer, TraceRecord], None]] = {}


_Replayer.handlers = {
    **{e: _Replayer.on_matrix for e in MATRIX_EVENTS},
    **{e: _Replayer.on_km for e in KM_PROBES},
    "vector_reserve": _Replayer.on_vector_reserve,
    "vector_reserve_managed": _Replayer.on_vector_reserve_managed,
    "vector_setup": _Replayer.on_vector_setup,
    "vector_clear": _Replayer.on_vector_clear,
    "vector_activate": _Replayer.on_vector_activate,
    "vector_deactivate": _Replayer.on_vector_deactivate,
    "vector_teardown": _Replayer.on_vector_teardown,
    "vector_alloc": _Replayer.on_vector_alloc,
    "vector_alloc_managed": _Replayer.on_vector_alloc_managed,
    "vector_update": _Replayer.on_vector_update,
    "vector_config": _Replayer.on_vector_config,
    "vector_free_moved": _Replayer.on_vector_free_moved,
    "send_cleanup_vector": _Replayer.on_send_cleanup_vector,
    "ir_domain_alloc": _Replayer.on_ir_domain_alloc,
    "ir_domain_free": _Replayer.on_ir_domain_free,
    "ir_activate": _Replayer.on_ir_activate,
    "ir_compose_msi": _Replayer.on_ir_compose_msi,
    "ir_set_affinity": _Replayer.on_ir_set_affinity,
    "ir_deactivate": _Replayer.on_ir_deactivate,
}


def _show(value: object) -> str:
    if value is None:
        return "none"
    return str(value)


def _event_text(e: _Expect) -> str:
    fields = " ".join(f"{k}={v}" for k, v in e.fields.items())
    return f"{e.name} {fields}"


def replay(path: str | Path, *, ncpus: int | None = None) -> ReplayResult:
    """Replay the capture at ``path`` through the models and compare.

    ``path`` is a capture folder (``guest/trace.txt.gz`` or ``trace.jsonl.gz`` inside, plus
    ``guest/cpus.txt`` and ``guest/irqaff/`` when present), a raw ftrace text
    (``trace.txt``, optionally gzipped) or its parsed JSON-lines form. ``ncpus`` overrides
    the possible CPUs (default: ``guest/cpus.txt``, else the highest CPU the trace names
    plus one). Raises :class:`~msixcore.InvalidArgument` (one line naming the file and the
    line) for input it cannot use.
    """
    cap = _find_capture(Path(path))
    if ncpus is not None:
        cap.ncpus = ncpus
    records = parse_trace(cap.trace)
    if not records:
        raise InvalidArgument(f"{cap.trace}: the trace has no events")
    return _Replayer(records, cap, str(cap.trace)).run()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m msixcore.kernel_trace PATH``: print the report; 0 = agreement, 1 = a
    disagreement, 2 = unusable input."""
    parser = argparse.ArgumentParser(
        prog="python -m msixcore.kernel_trace",
        description="Replay a real kernel's irq_matrix/irq_vectors trace through the models.",
    )
    parser.add_argument("path", help="capture folder, trace.txt[.gz] or trace.jsonl[.gz]")
    parser.add_argument("--ncpus", type=int, default=None, help="possible CPUs (override)")
    parser.add_argument("--limit", type=int, default=5, help="items listed per section")
    args = parser.parse_args(argv)
    try:
        result = replay(args.path, ncpus=args.ncpus)
    except InvalidArgument as e:
        print(f"msixcore.kernel_trace: error: {e}", file=sys.stderr)
        return 2
    print(result.summary(args.limit))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
