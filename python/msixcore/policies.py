"""Hypervisor policies in Python, and Python templates of the built-ins.

A policy decides which host operations (VFIO calls) a guest's MSI-X actions
cause; it only *decides*. The core runs every policy's operations — the
built-in policies in Rust (``noresize``, ``upfront``, ``hypercall``,
``dynamic``, ``ims``) and a Python object with the methods of :class:`Policy`
alike — through one path (``rust/core/src/policy/step.rs``) that executes them
on the host model and applies the config's ``policy.on_failure`` when the host
refuses one. The engine calls a policy on control-plane events only —
negotiation, enable, unmask, mask, disable — never per interrupt.

Each action method returns a list of operations, run in order on the host model
(build them with the constructors below):

- ``("intx_disable",)``, ``("intx_enable",)``: QEMU's ``vfio_disable_interrupts``
  at MSI-X enable and ``vfio_intx_enable`` after disable (INTx routing only);
- ``("enable_no_vec",)``: ``vfio_enable_msix_no_vec``: host MSI-X on with one
  vector allocated, none requested;
- ``("disable_index",)``: ``vfio_device_irq_disable``: free every host vector,
  MSI-X Enable cleared (a window opens);
- ``("enable_vectors", [bool, ...], closes_resize)``: ``vfio_enable_vectors``:
  allocate ``len(list)`` vectors, Enable set, request the vectors whose flag is
  true; ``closes_resize`` when it re-enables the index a resize just disabled
  (``("enable_vectors", [bool, ...])`` means ``closes_resize=False``);
- ``("set_signalling", entry)``: request one vector already allocated (NORESIZE);
- ``("add_vector", entry)``: dynamic MSI-X: allocate and request one vector;
- ``("switch_to_userspace", entry)``: ``vfio_msix_vector_release``: the vector's
  trigger moves from the KVM irqfd to QEMU's eventfd (no host resource changes);
- ``("hypercall",)``: an ``MSIX_ENABLE`` / ``MSIX_DISABLE`` hypercall's cost;
- ``("untrapped", entry)``: a guest write the host cannot trap (IMS in guest RAM):
  the vector has no host setup.

``negotiate`` answers ``pci_enable_msix_range(minvec, maxvec)``: ``None`` for
no hypercall (the driver takes ``maxvec``), or the most vectors to grant (0, or
fewer than ``minvec``, refuses); the core makes the ``MSIX_ENABLE`` hypercall
and sets the granted vectors up at once. Two methods are optional:
``negotiated(dev, granted)`` hears the host's answer (``granted`` is ``None``
when it refused), and ``rollback(dev)`` is called when the ``fail_request``
failure mode refuses the guest's action: the policy forgets what that action
changed in its own state.

The templates (:class:`NoresizePolicy`, :class:`UpfrontPolicy`,
:class:`DynamicPolicy`, :class:`HypercallPolicy`, :class:`ImsPolicy`) are
transcriptions of the built-ins (``rust/core/src/policy/``, ``rust/core/src/vfio.rs``):
each returns the same operations in the same order, so a run with a template
gives the books and statistics of the built-in. :func:`template` builds the one
matching a config's ``policy`` section. They are named after the built-in with
a ``py-`` prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from msixcore._core import InvalidArgument
from msixcore.engine_config import MAX_ENTRIES
from msixcore.versions import DEFAULT_QEMU, behaviours

__all__ = [
    "DynamicPolicy",
    "Grant",
    "HypercallPolicy",
    "ImsPolicy",
    "ImsStore",
    "NegotiateAnswer",
    "NoresizePolicy",
    "Op",
    "Policy",
    "QemuMsix",
    "QemuPolicy",
    "UpfrontPolicy",
    "add_vector",
    "disable_index",
    "enable_no_vec",
    "enable_vectors",
    "hypercall",
    "intx_disable",
    "intx_enable",
    "set_signalling",
    "switch_to_userspace",
    "template",
    "untrapped",
]

Op = tuple[str] | tuple[str, int] | tuple[str, list[bool]] | tuple[str, list[bool], bool]
"""One host operation (see the module documentation)."""

NegotiateAnswer = int | tuple[int, bool]
"""A hypercall host's answer to ``negotiate``: a count, or ``(count, request_at_grant)``."""

Grant = Literal["all", "n", "refuse"]
"""How a hypercall host answers ``MSIX_ENABLE`` (``policy.grant``)."""

ImsStore = Literal["device", "guest_ram"]
"""Where an IMS device keeps its interrupt messages (``policy.ims_store``)."""


# --------------------------------------------------------------------------
# Operations


def intx_disable() -> Op:
    """``vfio_disable_interrupts`` at MSI-X enable: INTx off."""
    return ("intx_disable",)


def intx_enable() -> Op:
    """``vfio_intx_enable`` after MSI-X disable: INTx back on."""
    return ("intx_enable",)


def enable_no_vec() -> Op:
    """``vfio_enable_msix_no_vec``: MSI-X on with one vector allocated, none requested."""
    return ("enable_no_vec",)


def disable_index() -> Op:
    """``vfio_device_irq_disable``: every host vector freed, MSI-X Enable cleared."""
    return ("disable_index",)


def enable_vectors(flags: Sequence[bool], *, closes_resize: bool = False) -> Op:
    """``vfio_enable_vectors``: ``len(flags)`` vectors allocated, those flagged
    requested; ``closes_resize`` when it re-enables the index a resize disabled."""
    return ("enable_vectors", [bool(f) for f in flags], closes_resize)


def set_signalling(entry: int) -> Op:
    """``SET_IRQS`` for one vector the host already allocated (NORESIZE host)."""
    return ("set_signalling", entry)


def add_vector(entry: int) -> Op:
    """``SET_IRQS`` for one vector on a dynamic host: allocated if needed, requested."""
    return ("add_vector", entry)


def switch_to_userspace(entry: int) -> Op:
    """``vfio_msix_vector_release``: the trigger moves to QEMU's eventfd."""
    return ("switch_to_userspace", entry)


def hypercall() -> Op:
    """An ``MSIX_ENABLE`` / ``MSIX_DISABLE`` hypercall (its cost)."""
    return ("hypercall",)


def untrapped(entry: int) -> Op:
    """A guest write the host cannot trap: ``entry`` has no host setup."""
    return ("untrapped", entry)


# --------------------------------------------------------------------------
# The protocol


class Policy(Protocol):
    """What the engine needs from a Python policy.

    Optional hooks, called only if the object has them:

    - ``negotiated(dev: int, granted: int | None) -> None``: the host's answer
      to a hypercall negotiation: the vectors granted and set up, or ``None``
      when it refused;
    - ``rollback(dev: int) -> None``: the host failed an operation of the last
      action on ``dev`` and the ``fail_request`` failure mode refused the
      guest's write: forget what that action changed in the policy's state.
    """

    name: str
    """Short name for reports."""

    def negotiate(self, dev: int, minvec: int, maxvec: int) -> NegotiateAnswer | None:
        """``pci_enable_msix_range(minvec, maxvec)`` on device ``dev``: ``None`` for
        no hypercall, the most vectors the host grants (0 refuses; each is
        requested at the guest's unmask), or ``(count, request_at_grant)``."""
        ...

    def enable(self, dev: int) -> list[Op]:
        """The guest enabled MSI-X on ``dev`` (``msix_capability_init``)."""
        ...

    def unmask(self, dev: int, entry: int) -> list[Op]:
        """The guest unmasked ``entry`` of ``dev`` (request_irq, enable_irq, CPU online)."""
        ...

    def mask(self, dev: int, entry: int) -> list[Op]:
        """The guest masked ``entry`` of ``dev``."""
        ...

    def disable(self, dev: int) -> list[Op]:
        """The guest disabled MSI-X on ``dev`` (``pci_msix_shutdown``)."""
        ...


# --------------------------------------------------------------------------
# QEMU's vfio-pci MSI-X emulation


class QemuMsix:
    """QEMU's per-device MSI-X state (hw/vfio/pci.c, QEMU ≥ 8.2, with
    hw/pci/msix.c's mask logic) as a pure state machine: guest register writes
    go in, the host operations QEMU performs come out, in order. A line-by-line
    transcription of ``QemuMsix`` in ``rust/core/src/vfio.rs``.

    - ``msix_is_masked(v) = !enabled || maskall || entry_masked[v]``; a change
      of that value fires the use (unmask) or release (mask) notifier
      (``msix_handle_mask_update``), but only once notifiers are set, i.e. while
      ``vfio_msix_enable`` has run.
    - ``vfio_msix_enable``: ``vfio_disable_interrupts`` (INTx off), notifiers set
      (``msix_set_vector_notifiers`` calls use() for each vector already
      unmasked, in a deferred batch), then ``vfio_enable_vectors`` if
      ``nr_vectors`` > 0, else ``vfio_enable_msix_no_vec``.
    - ``vfio_msix_vector_do_use(nr)``: ``resizing = nr_vectors < nr + 1``; first
      use inits the vector; ``nr_vectors = nr + 1`` when resizing; outside the
      batch, NORESIZE + resizing = ``vfio_device_irq_disable`` then
      ``vfio_enable_vectors`` (the whole index off and on again), NORESIZE
      otherwise ``set_irq_signalling`` for nr; a dynamic host adds the vector.
    - ``vfio_msix_vector_release(nr)``: with a KVM virq, switch the vector's
      trigger to the userspace eventfd; it never shrinks ``nr_vectors``.
    - ``vfio_msix_disable``: release every used vector, always
      ``vfio_device_irq_disable``, ``nr_vectors = 0``, ``vfio_intx_enable``.

    ``noresize`` is the host's ``VFIO_IRQ_INFO_NORESIZE`` flag (always set
    before QEMU 8.2, which resizes whatever the host reports); ``upfront``
    pre-sizes ``nr_vectors`` at every enable (capped at the table size);
    ``prerequest_vector0``: QEMU before 8.2 sets vector 0 up at every enable
    (``vfio_msix_vector_do_use(0)``), so the first unmask of entry 0 is no
    resize.
    """

    def __init__(
        self,
        entries: int,
        noresize: bool,
        upfront: int = 0,
        prerequest_vector0: bool = False,
        request_all: bool = False,
    ) -> None:
        if not 1 <= entries <= MAX_ENTRIES:
            raise InvalidArgument(f"MSI-X table size must be 1..=2048, got {entries}")
        self.noresize = noresize
        self.upfront = min(upfront, entries)
        self.prerequest_vector0 = prerequest_vector0
        self.request_all = request_all
        self.enabled = False
        self.maskall = False
        self.entry_masked = [True] * entries
        self.used = [False] * entries
        self.nr_vectors = 0
        self.notifiers = False

    def copy(self) -> QemuMsix:
        """An independent copy of this state."""
        q = QemuMsix.__new__(QemuMsix)
        q.__dict__.update(self.__dict__)
        q.entry_masked = list(self.entry_masked)
        q.used = list(self.used)
        return q

    @property
    def entries(self) -> int:
        """Number of table entries."""
        return len(self.entry_masked)

    def is_used(self, k: int) -> bool:
        """Whether vector ``k`` has been used (unmasked) since the last enable."""
        return 0 <= k < len(self.used) and self.used[k]

    def is_masked(self, k: int) -> bool:
        """``msix_is_masked``: the effective mask of vector ``k``."""
        return (
            not self.enabled
            or self.maskall
            or not 0 <= k < len(self.entry_masked)
            or self.entry_masked[k]
        )

    def write_control(self, enable: bool, maskall: bool) -> list[Op]:
        """Guest write of Message Control's Enable and Function Mask bits
        (``msix_write_config``, then ``vfio_pci_write_config``)."""
        ops: list[Op] = []
        was_enabled = self.enabled
        before = [self.is_masked(k) for k in range(self.entries)]
        self.enabled = enable
        self.maskall = maskall
        # msix_write_config: mask transitions fire notifiers, if set.
        if self.notifiers:
            for k in range(self.entries):
                self._mask_update(k, before[k], ops)
        # vfio_pci_write_config, after pci_default_write_config.
        if not was_enabled and enable:
            self._msix_enable(ops)
        elif was_enabled and not enable:
            self._msix_disable(ops)
        return ops

    def write_entry_mask(self, k: int, masked: bool) -> list[Op]:
        """Guest write of entry ``k``'s Vector Control mask bit."""
        was = self.is_masked(k)
        if not 0 <= k < self.entries:
            raise InvalidArgument(f"entry {k} is past the table of {self.entries}")
        self.entry_masked[k] = masked
        ops: list[Op] = []
        if self.notifiers:
            self._mask_update(k, was, ops)
        return ops

    def linux_enable(self) -> list[Op]:
        """The Linux guest's ``msix_capability_init`` enable sequence: set
        Enable|Function Mask, mask every entry, clear Function Mask."""
        ops = self.write_control(True, True)
        for k in range(self.entries):
            ops += self.write_entry_mask(k, True)
        ops += self.write_control(True, False)
        return ops

    def linux_disable(self) -> list[Op]:
        """The Linux guest's disable: clear Enable (``pci_msix_shutdown`` masks
        every entry first; masks of a disabled function fire no notifier)."""
        ops: list[Op] = []
        for k in range(self.entries):
            ops += self.write_entry_mask(k, True)
        ops += self.write_control(False, self.maskall)
        return ops

    def _mask_update(self, k: int, was_masked: bool, ops: list[Op]) -> None:
        """``msix_handle_mask_update``: fire the notifier on a mask change."""
        is_masked = self.is_masked(k)
        if is_masked == was_masked:
            return
        if is_masked:
            self._release(k, ops)
        else:
            self._vector_use(k, False, ops)

    def _msix_enable(self, ops: list[Op]) -> None:
        """``vfio_msix_enable``."""
        ops.append(intx_disable())
        self.nr_vectors = max(self.nr_vectors, self.upfront)
        if self.prerequest_vector0 and self.nr_vectors == 0:
            # QEMU before 8.2: vfio_msix_vector_do_use(0) then release(0).
            self.used[0] = True
            self.nr_vectors = 1
        # msix_set_vector_notifiers: use() for every vector already unmasked
        # when Enable is set and Function Mask clear, deferred into one batch.
        self.notifiers = True
        if self.enabled and not self.maskall:
            for k in range(self.entries):
                if not self.is_masked(k):
                    self._vector_use(k, True, ops)
        if self.nr_vectors > 0:
            ops.append(self._enable_vectors(False))
        else:
            ops.append(enable_no_vec())

    def _msix_disable(self, ops: list[Op]) -> None:
        """``vfio_msix_disable``."""
        # msix_unset_vector_notifiers releases nothing here (Enable is clear);
        # vfio_msix_disable releases every used vector itself.
        self.notifiers = False
        for k in range(self.nr_vectors):
            if self.is_used(k):
                self._release(k, ops)
        ops.append(disable_index())
        # vfio_msi_disable_common
        self.nr_vectors = 0
        self.used = [False] * len(self.used)
        ops.append(intx_enable())

    def _vector_use(self, k: int, deferred: bool, ops: list[Op]) -> None:
        """``vfio_msix_vector_do_use(k)``."""
        resizing = self.nr_vectors < k + 1
        if 0 <= k < len(self.used):
            self.used[k] = True  # vfio_pci_vector_init on first use
        if resizing:
            self.nr_vectors = k + 1
        if deferred:
            return
        if self.noresize and resizing:
            ops.append(disable_index())
            ops.append(self._enable_vectors(True))
        elif self.noresize:
            ops.append(set_signalling(k))
        else:
            # A dynamic host allocates the vector on demand.
            ops.append(add_vector(k))

    def _release(self, k: int, ops: list[Op]) -> None:
        """``vfio_msix_vector_release(k)``."""
        if self.is_used(k):
            ops.append(switch_to_userspace(k))

    def _enable_vectors(self, closes_resize: bool) -> Op:
        """``vfio_enable_vectors`` with every vector up to ``nr_vectors``;
        ``closes_resize`` when it re-enables the index QEMU just disabled."""
        return enable_vectors(
            [self.request_all or self.is_used(i) for i in range(self.nr_vectors)],
            closes_resize=closes_resize,
        )


# --------------------------------------------------------------------------
# Templates of the built-in policies


def _table_size(entries: Sequence[int] | None, dev: int) -> int:
    """Device ``dev``'s table size from ``entries``; :data:`MAX_ENTRIES` when
    ``entries`` is ``None`` (every operation but an upfront pre-size of the
    whole table is the same for any table at least as large as the device's)."""
    if entries is None:
        return MAX_ENTRIES
    if not 0 <= dev < len(entries):
        raise InvalidArgument(f"no device {dev}")
    return entries[dev]


class QemuPolicy:
    """QEMU's MSI-X emulation (:class:`QemuMsix`) for every device of a run, as
    ``QemuPolicy`` in ``rust/core/src/policy/qemu.rs``.

    ``entries`` are the devices' table sizes (each device's state is built at
    its first action); ``None`` assumes the largest table for every device,
    which changes no operation unless ``upfront`` is 0. ``dynamic``: the host
    supports dynamic MSI-X; ``upfront``: pre-size ``nr_vectors`` at every
    enable (0 = the whole table, ``None`` = no pre-sizing); ``request_all``:
    request every pre-sized vector at enable, used or not.
    """

    name = "py-qemu"

    def __init__(
        self,
        entries: Sequence[int] | None = None,
        *,
        dynamic: bool = False,
        upfront: int | None = None,
        request_all: bool = False,
        qemu: str = DEFAULT_QEMU,
    ) -> None:
        if upfront == 0 and entries is None:
            raise InvalidArgument("upfront of the whole table needs the devices' table sizes")
        self.entries = None if entries is None else list(entries)
        qemu_has = behaviours(qemu=qemu)
        # QEMU before 8.2 resizes whatever the host reports.
        self.noresize = not dynamic or not qemu_has["qemu_honours_noresize"]
        self.prerequest_vector0 = bool(qemu_has["qemu_prerequests_vector0"])
        self.upfront = upfront
        self.request_all = request_all
        self.devs: dict[int, QemuMsix] = {}
        self._undo: tuple[int, QemuMsix] | None = None

    def _device(self, dev: int) -> QemuMsix:
        q = self.devs.get(dev)
        if q is None:
            n = _table_size(self.entries, dev)
            upfront = 0 if self.upfront is None else self.upfront or n
            q = self.devs[dev] = QemuMsix(
                n, self.noresize, upfront, self.prerequest_vector0, self.request_all
            )
        return q

    def _act(self, dev: int, f: Callable[[QemuMsix], list[Op]]) -> list[Op]:
        """Apply ``f`` to device ``dev``'s state, keeping the state before it."""
        q = self._device(dev)
        self._undo = (dev, q.copy())
        return f(q)

    def negotiate(self, dev: int, minvec: int, maxvec: int) -> int | None:
        """No hypercall: the driver takes ``maxvec`` from the emulated capability."""
        return None

    def enable(self, dev: int) -> list[Op]:
        """:meth:`QemuMsix.linux_enable`."""
        return self._act(dev, lambda q: q.linux_enable())

    def unmask(self, dev: int, entry: int) -> list[Op]:
        """:meth:`QemuMsix.write_entry_mask` clearing the mask bit."""
        return self._act(dev, lambda q: q.write_entry_mask(entry, False))

    def mask(self, dev: int, entry: int) -> list[Op]:
        """:meth:`QemuMsix.write_entry_mask` setting the mask bit."""
        return self._act(dev, lambda q: q.write_entry_mask(entry, True))

    def disable(self, dev: int) -> list[Op]:
        """:meth:`QemuMsix.linux_disable`."""
        return self._act(dev, lambda q: q.linux_disable())

    def rollback(self, dev: int) -> None:
        """Restore ``dev``'s state from before its last action."""
        undo, self._undo = self._undo, None
        if undo is None or undo[0] != dev:
            raise RuntimeError(f"rollback of device {dev} without an action to undo")
        self.devs[dev] = undo[1]


class NoresizePolicy(QemuPolicy):
    """``noresize``: QEMU on a host that reports ``VFIO_IRQ_INFO_NORESIZE``.

    A first unmask of an entry at or past ``nr_vectors`` disables the whole
    index and enables it again with ``entry + 1`` vectors (a resize); below it,
    one vector is requested; a mask switches the vector's trigger.
    """

    name = "py-noresize"

    def __init__(self, entries: Sequence[int] | None = None, *, qemu: str = DEFAULT_QEMU) -> None:
        super().__init__(entries, qemu=qemu)


class UpfrontPolicy(QemuPolicy):
    """``upfront``: NORESIZE QEMU pre-sizing ``nr_vectors`` to ``count`` at every
    enable (0 = the whole table, which needs ``entries``); ``request_all``:
    request every one of them at enable, used or not, as Cloud Hypervisor
    enables every entry on the host when the guest enables MSI-X."""

    name = "py-upfront"

    def __init__(
        self,
        count: int = 0,
        *,
        request_all: bool = False,
        entries: Sequence[int] | None = None,
        qemu: str = DEFAULT_QEMU,
    ) -> None:
        super().__init__(entries, upfront=count, request_all=request_all, qemu=qemu)


class DynamicPolicy(QemuPolicy):
    """``dynamic``: QEMU on a host with dynamic MSI-X: each new vector is added
    on its own (``add_vector``), never a resize."""

    name = "py-dynamic"

    def __init__(self, entries: Sequence[int] | None = None, *, qemu: str = DEFAULT_QEMU) -> None:
        super().__init__(entries, dynamic=True, qemu=qemu)


_GRANTS: tuple[Grant, ...] = ("all", "n", "refuse")
_IMS_STORES: tuple[ImsStore, ...] = ("device", "guest_ram")


class HypercallPolicy:
    """``hypercall``: the seed thread's ``MSIX_ENABLE`` / ``MSIX_DISABLE``
    hypercall, negotiated at ``pci_enable_msix_range``, as ``HypercallPolicy``
    in ``rust/core/src/policy/hypercall.rs``.

    ``grant``: grant ``maxvec`` (``"all"``), at most ``grant_n`` (``"n"``) or
    nothing (``"refuse"``). A driver that never negotiated is *unaware*: its
    MSI-X writes are trapped and handled by NORESIZE QEMU if
    ``trap_fallback``, else they cannot be trapped (IMS in guest RAM) and an
    unmask leaves the vector without host setup (``untrapped``). After a refused
    negotiation the driver runs without MSI-X until it disables.

    As the seed proposes it, the grant only allocates the vectors (reservations
    under reservation mode) and each is requested at the guest's unmask, a
    per-vector operation that can still fail; ``request_at_grant`` requests
    every granted vector at ``MSIX_ENABLE`` instead.
    """

    name = "py-hypercall"

    def __init__(
        self,
        grant: Grant = "all",
        grant_n: int = 1,
        trap_fallback: bool = True,
        *,
        entries: Sequence[int] | None = None,
        qemu: str = DEFAULT_QEMU,
        request_at_grant: bool = False,
    ) -> None:
        if grant not in _GRANTS:
            raise InvalidArgument(f"grant: unknown grant {grant!r} (known: {', '.join(_GRANTS)})")
        self.grant: Grant = grant
        self.grant_n = grant_n
        self.request_at_grant = request_at_grant
        self.entries = None if entries is None else list(entries)
        self.fallback = NoresizePolicy(entries, qemu=qemu) if trap_fallback else None
        self.drivers: dict[int, int | None] = {}
        """Each device's driver: absent if unaware, the grant it holds, or
        ``None`` after a refused ``MSIX_ENABLE``."""

    def _set_driver(self, dev: int, granted: int | None, *, unaware: bool = False) -> None:
        _table_size(self.entries, dev)  # no device past the run's
        if unaware:
            self.drivers.pop(dev, None)
        else:
            self.drivers[dev] = granted

    def negotiate(self, dev: int, minvec: int, maxvec: int) -> tuple[int, bool]:
        """An ``MSIX_ENABLE`` hypercall granting ``maxvec``, at most ``grant_n``, or 0,
        and whether the host requests the grant at once."""
        if self.grant == "all":
            grant = maxvec
        elif self.grant == "n":
            grant = min(maxvec, self.grant_n)
        else:
            grant = 0
        return grant, self.request_at_grant

    def negotiated(self, dev: int, granted: int | None) -> None:
        """The driver holds ``granted`` vectors, or was refused (``None``)."""
        self._set_driver(dev, granted)

    def enable(self, dev: int) -> list[Op]:
        """Trapped for an unaware driver; nothing after a negotiation."""
        if dev not in self.drivers and self.fallback is not None:
            return self.fallback.enable(dev)
        return []

    def unmask(self, dev: int, entry: int) -> list[Op]:
        """Inside a grant: the host's ``request_irq`` of the vector (nothing if
        the grant was requested at once); trapped or ``untrapped`` for an
        unaware driver."""
        if dev in self.drivers:
            if self.drivers[dev] is not None and not self.request_at_grant:
                return [set_signalling(entry)]
            return []
        if self.fallback is not None:
            return self.fallback.unmask(dev, entry)
        return [untrapped(entry)]

    def mask(self, dev: int, entry: int) -> list[Op]:
        """Trapped for an unaware driver; nothing after a negotiation."""
        if dev not in self.drivers and self.fallback is not None:
            return self.fallback.mask(dev, entry)
        return []

    def disable(self, dev: int) -> list[Op]:
        """``MSIX_DISABLE`` releasing a grant; trapped for an unaware driver. The
        driver is unaware again afterwards."""
        unaware = dev not in self.drivers
        granted = self.drivers.get(dev)
        self._set_driver(dev, None, unaware=True)
        if not unaware and granted is not None:
            return [hypercall(), disable_index()]
        if unaware and self.fallback is not None:
            return self.fallback.disable(dev)
        return []

    def rollback(self, dev: int) -> None:
        """Undo the trapped action of the fallback, if any."""
        if self.fallback is not None:
            self.fallback.rollback(dev)


class ImsPolicy:
    """``ims``: Interrupt Message Store. In device memory (``store="device"``)
    the writes are trapped and each vector is set up on its own, as under
    :class:`DynamicPolicy`; in guest RAM (``"guest_ram"``) only the hypercall
    path works (:class:`HypercallPolicy` without the trap fallback)."""

    name = "py-ims"

    def __init__(
        self,
        store: ImsStore = "device",
        grant: Grant = "all",
        grant_n: int = 1,
        *,
        entries: Sequence[int] | None = None,
        qemu: str = DEFAULT_QEMU,
        request_at_grant: bool = False,
    ) -> None:
        if store not in _IMS_STORES:
            raise InvalidArgument(
                f"ims_store: unknown store {store!r} (known: {', '.join(_IMS_STORES)})"
            )
        self.store: ImsStore = store
        self.inner: DynamicPolicy | HypercallPolicy = (
            DynamicPolicy(entries, qemu=qemu)
            if store == "device"
            else HypercallPolicy(
                grant,
                grant_n,
                trap_fallback=False,
                entries=entries,
                qemu=qemu,
                request_at_grant=request_at_grant,
            )
        )

    def negotiate(self, dev: int, minvec: int, maxvec: int) -> NegotiateAnswer | None:
        """Local in a device store; an ``MSIX_ENABLE`` hypercall in guest RAM."""
        return self.inner.negotiate(dev, minvec, maxvec)

    def negotiated(self, dev: int, granted: int | None) -> None:
        """The hypercall's answer (guest RAM store only)."""
        if isinstance(self.inner, HypercallPolicy):
            self.inner.negotiated(dev, granted)

    def enable(self, dev: int) -> list[Op]:
        """See :class:`DynamicPolicy` / :class:`HypercallPolicy`."""
        return self.inner.enable(dev)

    def unmask(self, dev: int, entry: int) -> list[Op]:
        """See :class:`DynamicPolicy` / :class:`HypercallPolicy`."""
        return self.inner.unmask(dev, entry)

    def mask(self, dev: int, entry: int) -> list[Op]:
        """See :class:`DynamicPolicy` / :class:`HypercallPolicy`."""
        return self.inner.mask(dev, entry)

    def disable(self, dev: int) -> list[Op]:
        """See :class:`DynamicPolicy` / :class:`HypercallPolicy`."""
        return self.inner.disable(dev)

    def rollback(self, dev: int) -> None:
        """See :class:`DynamicPolicy` / :class:`HypercallPolicy`."""
        self.inner.rollback(dev)


def template(policy: Mapping[str, Any], entries: Sequence[int], qemu: str = DEFAULT_QEMU) -> Policy:
    """The template of the built-in policy a config's ``policy`` section names,
    for devices with these table sizes (``[d["entries"] for d in
    config["devices"]]``) on the config's ``qemu``, as ``builtin()`` in
    ``rust/core/src/policy/mod.rs``. Missing fields take the engine's defaults."""
    kind = policy.get("kind", "noresize")
    grant = policy.get("grant", "all")
    grant_n = int(policy.get("grant_n", 1))
    if kind == "noresize":
        return NoresizePolicy(entries, qemu=qemu)
    if kind == "upfront":
        return UpfrontPolicy(
            int(policy.get("upfront_count", 0)),
            request_all=bool(policy.get("upfront_request_all", False)),
            entries=entries,
            qemu=qemu,
        )
    if kind == "dynamic":
        return DynamicPolicy(entries, qemu=qemu)
    at_grant = bool(policy.get("request_at_grant", False))
    if kind == "hypercall":
        return HypercallPolicy(
            grant, grant_n, True, entries=entries, qemu=qemu, request_at_grant=at_grant
        )
    if kind == "ims":
        store = policy.get("ims_store", "device")
        return ImsPolicy(
            store, grant, grant_n, entries=entries, qemu=qemu, request_at_grant=at_grant
        )
    known = "noresize, upfront, hypercall, dynamic, ims"
    raise InvalidArgument(f"policy.kind: unknown policy {kind!r} (known: {known})")
