"""``msixcore demo``: the core models at work on a small host."""

from __future__ import annotations

from msixcore._core import __version__


def run_demo() -> str:
    """Run the demo and return its report as text."""
    lines = [f"msixcore {__version__}: core models"]
    return "\n".join(lines)
