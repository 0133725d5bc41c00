"""Custom hypervisor policies in Python.

A policy decides which host operations (VFIO calls) a guest's MSI-X actions
cause. The built-in policies (``noresize``, ``upfront``, ``hypercall``,
``dynamic``, ``ims``) run in Rust; a Python object with the methods of
:class:`Policy` can replace them. The engine calls it on control-plane events
only — negotiation, enable, unmask, mask, disable — never per interrupt.

Each method returns a list of operations, run in order on the host model:

- ``("enable_no_vec",)``: host MSI-X on with one vector allocated, none requested;
- ``("disable_index",)``: free every host vector, MSI-X Enable cleared (a window opens);
- ``("enable_vectors", [bool, ...])``: allocate ``len(list)`` vectors, Enable set,
  request the vectors whose flag is true (closes the window of a preceding disable);
- ``("set_signalling", entry)``: request one vector already allocated;
- ``("add_vector", entry)``: dynamic MSI-X: allocate and request one vector.

``negotiate`` answers ``pci_enable_msix_range``: ``None`` for no hypercall (the
driver takes ``maxvec``), or the number of vectors to grant (0 refuses); the
engine sets granted vectors up at once. A host allocation failure is handled by
the config's ``policy.on_failure``.
"""

from __future__ import annotations

from typing import Protocol

Op = tuple[str] | tuple[str, int] | tuple[str, list[bool]]
"""One host operation (see the module documentation)."""


class Policy(Protocol):
    """What the engine needs from a Python policy."""

    name: str

    def negotiate(self, dev: int, minvec: int, maxvec: int) -> int | None:
        """``pci_enable_msix_range(minvec, maxvec)`` on device ``dev``."""
        ...

    def enable(self, dev: int) -> list[Op]:
        """The guest enabled MSI-X on ``dev``."""
        ...

    def unmask(self, dev: int, entry: int) -> list[Op]:
        """The guest unmasked ``entry`` of ``dev`` (request_irq, enable_irq, CPU online)."""
        ...

    def mask(self, dev: int, entry: int) -> list[Op]:
        """The guest masked ``entry`` of ``dev``."""
        ...

    def disable(self, dev: int) -> list[Op]:
        """The guest disabled MSI-X on ``dev``."""
        ...


class NoresizePolicy:
    """QEMU's incremental enable on a NORESIZE host, written in Python.

    The same host operations as the built-in ``noresize`` policy (without the
    trigger switches, which change no host resource): a first unmask of an
    entry at or past ``nr_vectors`` disables the whole index and enables it
    again with ``entry + 1`` vectors. Useful as a template.
    """

    name = "py-noresize"

    def __init__(self) -> None:
        self.nr_vectors: dict[int, int] = {}
        self.used: dict[int, set[int]] = {}

    def negotiate(self, dev: int, minvec: int, maxvec: int) -> int | None:
        """No hypercall: the driver takes ``maxvec``."""
        return None

    def enable(self, dev: int) -> list[Op]:
        """``vfio_msix_enable``: host MSI-X on, no vector requested."""
        self.nr_vectors[dev] = 0
        self.used[dev] = set()
        return [("enable_no_vec",)]

    def unmask(self, dev: int, entry: int) -> list[Op]:
        """``vfio_msix_vector_do_use``: resize on a new highest entry."""
        used = self.used.setdefault(dev, set())
        used.add(entry)
        if entry >= self.nr_vectors.get(dev, 0):
            self.nr_vectors[dev] = entry + 1
            return [("disable_index",), ("enable_vectors", [i in used for i in range(entry + 1)])]
        return [("set_signalling", entry)]

    def mask(self, dev: int, entry: int) -> list[Op]:
        """``vfio_msix_vector_release``: a trigger switch, no host resource changes."""
        return []

    def disable(self, dev: int) -> list[Op]:
        """``vfio_msix_disable``: the index off, ``nr_vectors`` back to 0."""
        self.nr_vectors[dev] = 0
        self.used[dev] = set()
        return [("disable_index",)]
