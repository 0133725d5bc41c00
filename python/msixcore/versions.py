"""Kernel and QEMU versions, and the behaviours that follow them.

The rules live in the Rust core (``rust/core/src/versions.rs``; docs/versions.md
lists each with its source); this module asks it.
"""

from __future__ import annotations

import json
from typing import Any, cast

from msixcore import _core
from msixcore._core import InvalidArgument
from msixcore.engine_config import DEFAULTS

__all__ = ["DEFAULT_KERNEL", "DEFAULT_QEMU", "behaviours", "parse_version"]

DEFAULT_KERNEL: str = DEFAULTS["kernel"]
"""The default host kernel (``kernel`` in a config)."""

DEFAULT_QEMU: str = DEFAULTS["qemu"]
"""The default QEMU (``qemu`` in a config)."""


def behaviours(
    kernel: str = DEFAULT_KERNEL, qemu: str = DEFAULT_QEMU, early_enable: bool | None = None
) -> dict[str, Any]:
    """Every modelled behaviour of a kernel/QEMU pair: ``early_enable``,
    ``reservation_mode``, ``vfio_dynamic_msix``, ``qemu_honours_noresize``,
    ``qemu_prerequests_vector0``, ``first_resizing_entry`` and ``resizes``
    (whether a guest's new entries are resizes at all). ``InvalidArgument`` for
    a version that is not ``major.minor``."""
    text = _core.platform_behaviours(kernel, qemu, early_enable)
    return cast(dict[str, Any], json.loads(text))


def parse_version(name: str, value: object) -> str:
    """A ``major.minor`` version string (``"6.12"``), checked by the core;
    ``InvalidArgument`` naming ``name`` otherwise. Numbers are refused:
    ``6.10`` would read as 6.1."""
    if not isinstance(value, str):
        raise InvalidArgument(f'{name}: must be a version string such as "6.12", got {value!r}')
    text = value.strip()
    try:
        _core.platform_behaviours(text, text)
    except InvalidArgument as exc:
        why = str(exc).removeprefix("invalid argument: ").removeprefix("version: ")
        raise InvalidArgument(f"{name}: {why}") from None
    return text
