"""The ``clustersim`` command line, a package with one module per command group.

:func:`main` is the console script (``simulator.cli:main``); the click group and the
registration of every command are in :mod:`simulator.cli.app`. This ``__init__`` loads
no command, so ``calibration`` imports the error funnel (:mod:`simulator.cli.runner`)
without loading the ``clustersim`` commands (which in turn load ``calibration``'s
plugin commands).
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors exit 2 with one message, no traceback."""
    from .app import main as run  # the commands load on the first call, not on import

    run(argv)
