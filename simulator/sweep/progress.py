"""Progress with an ETA: rich in a terminal, tqdm in a notebook, nothing otherwise."""

from __future__ import annotations

import sys
from typing import Literal, Protocol

ProgressChoice = bool | Literal["rich", "tqdm"] | None


class Progress(Protocol):
    def advance(self, n: int = 1, failed: int = 0) -> None: ...
    def close(self) -> None: ...


class _Silent:
    def advance(self, n: int = 1, failed: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


class _Rich:
    def __init__(self, total: int, description: str):
        from rich.console import Console
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
        )
        self._task = self._bar.add_task(description, total=total, failed="")
        self._failed = 0
        self._bar.start()

    def advance(self, n: int = 1, failed: int = 0) -> None:
        self._failed += failed
        self._bar.update(self._task, advance=n, failed=f"{self._failed} failed" if self._failed else "")

    def close(self) -> None:
        self._bar.stop()


class _Tqdm:
    def __init__(self, total: int, description: str):
        try:
            import ipywidgets  # noqa: F401 - tqdm's notebook widget needs it

            from tqdm.notebook import tqdm
        except ImportError:
            from tqdm import tqdm
        self._bar = tqdm(total=total, desc=description, unit="run")
        self._failed = 0

    def advance(self, n: int = 1, failed: int = 0) -> None:
        if failed:
            self._failed += failed
            self._bar.set_postfix(failed=self._failed, refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


def in_notebook() -> bool:
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def make_progress(choice: ProgressChoice, total: int, description: str = "sweep") -> Progress:
    """``None`` = automatic: tqdm in a notebook, rich on a terminal, silent otherwise."""
    if choice is None:
        choice = "tqdm" if in_notebook() else ("rich" if sys.stderr.isatty() else False)
    elif choice is True:
        choice = "tqdm" if in_notebook() else "rich"
    if not choice or total == 0:
        return _Silent()
    return _Tqdm(total, description) if choice == "tqdm" else _Rich(total, description)
