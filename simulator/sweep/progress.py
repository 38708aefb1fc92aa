"""Progress with an ETA, drawn with rich (the one progress library): a live bar when
stderr is a terminal, otherwise a line on stderr each time another ~10% is done, so
a log file, a CI job or a pipe still shows that long work moves.

Used by ``clustersim sweep``, ``validate`` and ``advise gpus``.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Literal, Protocol

ProgressChoice = bool | Literal["rich", "lines"] | None

#: The fraction of the work between two lines of the non-terminal progress.
LINE_STEP = 0.1


class Progress(Protocol):
    def advance(self, n: int = 1, failed: int = 0) -> None: ...
    def close(self) -> None: ...


class _Silent:
    def advance(self, n: int = 1, failed: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


class _Rich:
    def __init__(self, total: int, description: str, unit: str = "runs"):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
            TextColumn("{task.fields[failed]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )
        self._task = self._bar.add_task(description, total=total, failed="")
        self._failed = 0
        self._bar.start()

    def advance(self, n: int = 1, failed: int = 0) -> None:
        self._failed += failed
        self._bar.update(self._task, advance=n, failed=f"{self._failed} failed" if self._failed else "")

    def close(self) -> None:
        self._bar.stop()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class _Lines:
    """``description: 30% (60/200 runs, 2 failed), 12 s elapsed, ETA 28 s`` on stderr,
    once each time the work passes another :data:`LINE_STEP` of the total."""

    def __init__(self, total: int, description: str, unit: str = "runs", step: float = LINE_STEP):
        self._total, self._description, self._unit = total, description, unit
        self._steps = max(1, round(1 / step))
        self._done = self._failed = 0
        self._shown = 0  # steps already reported
        self._started = time.perf_counter()

    def advance(self, n: int = 1, failed: int = 0) -> None:
        self._done = min(self._total, self._done + n)
        self._failed += failed
        reached = math.floor(self._done * self._steps / self._total + 1e-9)
        if reached > self._shown:
            self._shown = reached
            self._line()

    def _line(self) -> None:
        elapsed = time.perf_counter() - self._started
        failed = f", {self._failed} failed" if self._failed else ""
        text = (f"{self._description}: {100 * self._done / self._total:.0f}% ({self._done}/{self._total} "
                f"{self._unit}{failed}), {_duration(elapsed)} elapsed")
        if 0 < self._done < self._total:
            text += f", ETA {_duration(elapsed * (self._total - self._done) / self._done)}"
        print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def in_notebook() -> bool:
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _notebook_choice() -> Literal["rich", "lines"]:
    """rich draws a live bar in Jupyter through ipywidgets; without it, lines."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return "lines"
    return "rich"


def make_progress(choice: ProgressChoice, total: int, description: str = "sweep", unit: str = "runs") -> Progress:
    """``None`` = automatic: a rich bar when stderr is a terminal (or in a notebook with
    ipywidgets), otherwise a line per ~10% on stderr; ``True`` = a bar where one can be
    drawn; ``False`` = nothing; ``"rich"`` or ``"lines"`` force one."""
    if choice is None or choice is True:
        if in_notebook():
            choice = _notebook_choice()
        elif sys.stderr.isatty():
            choice = "rich"
        else:
            choice = "lines"
    if not choice or total <= 0:
        return _Silent()
    if choice not in ("rich", "lines"):
        raise ValueError(f"progress: expected True, False, None, 'rich' or 'lines', got {choice!r}")
    return _Rich(total, description, unit) if choice == "rich" else _Lines(total, description, unit)


class ProgressCallback:
    """``callback(done, total)`` for library code that reports its own progress
    (``validate``'s ``on_case``, ``advise_gpus``'s ``on_step``): the display is made at
    the first call, when the total is known; :meth:`close` ends it."""

    def __init__(self, choice: ProgressChoice, description: str, unit: str):
        self._choice, self._description, self._unit = choice, description, unit
        self._bar: Progress | None = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = make_progress(self._choice, total, self._description, self._unit)
        if done > self._done:
            self._bar.advance(done - self._done)
            self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
