"""Host cost profiles: the per-step host times of a resize, from published
traces (docs/calibration.md, "Host costs").

``quiet`` rests on Longpeng's 2021 ``VFIO_DEVICE_SET_IRQS`` timings (Huawei,
qemu-devel 2021-08-25) and Ben Luo's 2019 VT-d trace (Alibaba, LKML
2019-08-20); ``busy`` on the upper end of the same trace. ``custom`` (the
scenarios' default) takes ``w0``, ``w_free`` and ``w_alloc`` from the
scenario's own parameters and leaves ``t_free_irq`` and ``t_request`` at 0.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["HOST_PROFILES", "PROFILE_FIELDS", "PROFILE_NAMES", "profile_timing"]

_US = 1_000

HOST_PROFILES: Mapping[str, Mapping[str, int]] = {
    "quiet": {
        "w0_ns": 50 * _US,
        "w_free_ns": 3 * _US,
        "w_alloc_ns": 7 * _US,
        "t_free_irq_ns": 8 * _US,
        "t_request_ns": 9 * _US,
    },
    "busy": {
        "w0_ns": 64 * _US,
        "w_free_ns": 6 * _US,
        "w_alloc_ns": 14 * _US,
        "t_free_irq_ns": 9 * _US,
        "t_request_ns": 10 * _US,
    },
}
"""The engine ``timing`` fields each profile sets (ns)."""

PROFILE_NAMES: tuple[str, ...] = ("custom", *HOST_PROFILES)
"""``host_profile`` choices: ``custom`` then the named profiles."""

PROFILE_FIELDS: tuple[str, ...] = ("w0", "w_free", "w_alloc")
"""Scenario parameters a named profile sets (so they cannot be set with it)."""


def profile_timing(name: str) -> dict[str, int]:
    """The ``timing`` section of profile ``name`` (not ``custom``)."""
    return dict(HOST_PROFILES[name])
