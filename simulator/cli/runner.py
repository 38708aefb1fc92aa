"""The command line's error funnel: every error becomes one ``error:`` line.

Small on purpose: ``calibration`` (``python -m calibration``) runs its own click group
through :func:`run_group` without loading the ``clustersim`` commands. User errors,
bad options and OS errors exit 2; Ctrl-C exits 130; anything else is a bug, reported
on one line with exit code 1 (``CLUSTERSIM_DEBUG=1`` shows its traceback).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from ..errors import ClusterSimError, excerpt, os_error_message
from ..loading import format_validation_error

#: Set to 1 to see the traceback of an internal error instead of its one-line message.
DEBUG_ENV = "CLUSTERSIM_DEBUG"

T = TypeVar("T")


def located(source: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn``; a user error it raises (building or running the scenario) is
    prefixed with the scenario's file, so every message names FILE: field."""
    try:
        return fn(*args, **kwargs)
    except ClusterSimError as exc:
        message = str(exc)
        if message.startswith(source):
            raise
        located_exc = type(exc)(f"{source}: {message}")
        raise located_exc from None


#: An error line quotes input only in short excerpts (:func:`~simulator.errors.excerpt`);
#: as a last guard, a word longer than this is cut (its start and end kept) and a line
#: longer than MAX_LINE is cut, so no message can echo a large piece of a file.
MAX_WORD, MAX_LINE = 160, 4000


def one_line(message: object) -> str:
    """``message`` on one printable line: whitespace folded, control characters
    escaped, over-long words and lines cut."""
    words = []
    for word in str(message).split():
        if not word.isprintable():
            word = "".join(c if c.isprintable() else repr(c)[1:-1] for c in word)
        if len(word) > MAX_WORD:
            word = f"{word[: MAX_WORD - 40]}...{word[-37:]}"
        words.append(word)
    line = " ".join(words)
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


def _fail(message: str, code: int) -> NoReturn:
    """Print one ``error:`` line (see :func:`one_line`) and exit."""
    click.echo("error: " + one_line(message), err=True)
    sys.exit(code)


def run_group(group: click.Group, argv: list[str] | None, prog_name: str) -> None:
    """Run a click group so that every error is one ``error:`` line, never a traceback
    (shared with ``python -m calibration``): user errors, bad options and OS errors
    (``error: PATH: reason``) exit 2; anything else is a bug, reported on one line with
    exit code 1 (``CLUSTERSIM_DEBUG=1`` shows its traceback)."""
    try:
        group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except ClusterSimError as exc:
        _fail(str(exc), exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line, not the usage text
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(exc.format_message() + hint, exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except OSError as exc:
        _fail(os_error_message(exc), 2)
    except ValidationError as exc:
        _fail(format_validation_error(exc), 2)
    except ValueError as exc:
        if "null byte" not in str(exc):  # os.stat and open refuse a NUL in a path (click checks paths)
            _internal_error(exc)
        _fail("a path argument contains a NUL byte", 2)
    except (RecursionError, MemoryError) as exc:
        _fail(f"input too large or nested too deeply ({type(exc).__name__})", 2)
    except Exception as exc:  # noqa: BLE001 - the last net: one line, never a traceback
        _internal_error(exc)


def _internal_error(exc: Exception) -> NoReturn:
    if os.environ.get(DEBUG_ENV):
        raise exc
    _fail(f"internal error (a bug; please report it - {DEBUG_ENV}=1 shows the traceback): "
          f"{type(exc).__name__}: {excerpt(str(exc), 300)}", 1)
