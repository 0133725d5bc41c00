"""Progress of the CLI's runs on stderr: a tqdm bar with the time left when
stderr is a terminal; otherwise (a log, a pipe) only a closing line with the
number of runs and the time taken, so logs and error output stay clean."""

from __future__ import annotations

import sys
import time
from typing import Never, TextIO

from tqdm import tqdm

__all__ = ["Progress", "progress_bar"]


def progress_bar(
    total: int, done: int, stream: TextIO | None = None, show: bool = True
) -> tqdm[Never]:
    """A tqdm bar over ``total`` runs, ``done`` of them already finished,
    drawn only when ``show`` and ``stream`` (stderr by default) is a terminal."""
    out = stream if stream is not None else sys.stderr
    tty = bool(getattr(out, "isatty", lambda: False)())
    return tqdm(
        total=max(total, 1),
        initial=done,
        unit="run",
        desc="msixcore",
        file=out,
        dynamic_ncols=True,
        disable=not (show and tty),
    )


class Progress:
    """Progress over ``total`` runs. Call :meth:`start` before a run and
    :meth:`done` after it; :meth:`close` ends the bar with the total time."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        """A bar for ``total`` runs, written to ``stream`` (stderr by default)."""
        self._stream = stream if stream is not None else sys.stderr
        self._bar = progress_bar(total, 0, self._stream)
        self._count = 0
        self._t0 = time.monotonic()

    def start(self, label: str) -> None:
        """A run named ``label`` begins."""
        self._bar.set_postfix_str(label, refresh=True)

    def done(self) -> None:
        """The current run finished."""
        self._count += 1
        self._bar.update(1)

    def close(self) -> None:
        """End the bar; without a terminal, write one closing line instead."""
        disabled = self._bar.disable
        self._bar.close()
        if disabled:
            elapsed = time.monotonic() - self._t0
            self._stream.write(f"msixcore: {self._count} runs in {elapsed:.1f} s\n")
            self._stream.flush()
