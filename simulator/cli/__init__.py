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
    """Console-script entry point: user errors exit 2 with one message, no traceback.

    Ctrl-C while the commands are still importing (a second or two on a cold start) exits
    130 with one line too: the error funnel that handles it later is not loaded yet."""
    try:
        from .app import main as run  # the commands load on the first call, not on import

        run(argv)
    except KeyboardInterrupt:
        import sys

        print("aborted", file=sys.stderr)
        sys.exit(130)
