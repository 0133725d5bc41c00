"""Optional dependencies: import one, or say which extra brings it."""

from __future__ import annotations

import importlib
from typing import Any

from msixcore._core import InvalidArgument

__all__ = ["require"]


def require(module: str, extra: str, feature: str) -> Any:
    """Import ``module``; if it is missing, ``InvalidArgument`` naming the
    ``pip install 'msixcore[EXTRA]'`` that brings it (one line, for the CLI)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InvalidArgument(
            f"{feature} needs {module}: install the {extra} extra, pip install 'msixcore[{extra}]'"
        ) from None
