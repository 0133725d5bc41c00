"""A plain progress bar on stderr (no dependency): redrawn in place on a
terminal, one line per finished step otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Progress over ``total`` steps. Call :meth:`start` before a step and
    :meth:`done` after it; :meth:`close` ends the bar."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        """A bar of ``width`` cells for ``total`` steps, written to ``stream``
        (stderr by default)."""
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.count = 0
        self._label = ""
        self._t0 = time.monotonic()
        self._step_t0 = self._t0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def _bar(self) -> str:
        filled = self.width * self.count // self.total
        return "[" + "#" * filled + "-" * (self.width - filled) + "]"

    def start(self, label: str) -> None:
        """A step named ``label`` begins."""
        self._label = label
        self._step_t0 = time.monotonic()
        if self._tty:
            text = f"\r{self._bar()} {self.count}/{self.total} {label}"
            self.stream.write(text.ljust(100)[:120])
            self.stream.flush()

    def done(self) -> None:
        """The current step finished."""
        self.count += 1
        elapsed = time.monotonic() - self._step_t0
        if self._tty:
            self.stream.write(f"\r{self._bar()} {self.count}/{self.total} {self._label}".ljust(100))
        else:
            self.stream.write(
                f"msixcore: [{self.count}/{self.total}] {self._label} ({elapsed:.1f} s)\n"
            )
        self.stream.flush()

    def close(self) -> None:
        """End the bar with the total elapsed time."""
        elapsed = time.monotonic() - self._t0
        text = f"msixcore: {self.count} runs in {elapsed:.1f} s"
        self.stream.write(f"\r{text.ljust(100)}\n" if self._tty else f"{text}\n")
        self.stream.flush()
