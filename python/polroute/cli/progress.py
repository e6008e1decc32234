"""Progress on a terminal for what takes long: one line on stderr, shown
once a command has run for :data:`DELAY` seconds (its elapsed time counts
from the start, parsing included), and gone when the command ends.  Nothing
is shown when stderr is not a terminal, with ``--quiet``, or for a command
that ends sooner.

rich draws it (a dependency for this alone): its display refreshes from its
own thread, so a phase spent inside one long C call - a netlink dump, a
kernel batch, parsing a big batch file - still shows a moving spinner and
clock, where a loop-driven bar (tqdm) would freeze until the call returns.
rich is imported only when the display is about to appear.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

DELAY = float(os.environ.get("POLROUTE_PROGRESS_DELAY", "2.0"))


def wanted(quiet: bool, stream=None) -> bool:
    """Whether a progress display may appear: stderr is a terminal, no --quiet."""
    stream = sys.stderr if stream is None else stream
    if quiet:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """``phase(text, total)`` starts a step (``total``: a count to fill, or
    None for a spinner), ``advance(n)`` moves it; ``close()`` removes the
    line.  Calls are cheap when nothing is shown."""

    def __init__(self, command: str, enabled: bool, delay: float = DELAY, stream=None):
        self.command = command
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.started = time.monotonic()
        self.text, self.total, self.done = "", None, 0
        self.shown = False  # tests: the display appeared
        self._lock = threading.Lock()
        self._rich = None
        self._task = None
        self._timer = None
        if enabled:
            self._timer = threading.Timer(max(delay, 0.0), self._show)
            self._timer.daemon = True
            self._timer.start()

    def phase(self, text: str, total: int | None = None) -> None:
        with self._lock:
            self.text, self.total, self.done = text, total, 0
            self._push()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            self._push()

    def _push(self) -> None:
        if self._rich is not None:
            self._rich.update(
                self._task, description=f"{self.command}: {self.text}", total=self.total, completed=self.done
            )

    def _show(self) -> None:
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress
        except ImportError:  # no rich: no display, the command runs on
            return
        with self._lock:
            if not self.enabled:
                return
            bar = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
                refresh_per_second=8,
            )
            self._task = bar.add_task(f"{self.command}: {self.text}", total=self.total, completed=self.done)
            # the clock counts from the command's start, not the display's
            bar.tasks[0].start_time = bar.get_time() - (time.monotonic() - self.started)
            bar.start()
            self._rich = bar
            self.shown = True

    def close(self) -> None:
        with self._lock:
            self.enabled = False
            if self._timer is not None:
                self._timer.cancel()
            if self._rich is not None:
                with contextlib.suppress(Exception):  # the terminal is gone: nothing to clear
                    self._rich.stop()
                self._rich = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
