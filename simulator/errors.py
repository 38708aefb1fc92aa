"""User-facing errors.

Every mistake a user can make (a bad scenario file, an impossible topology, a corrupt
calibration profile, a simulation that cannot finish) raises one of these. The CLI
prints the message as one located paragraph and exits with code 2; Python callers
can catch :class:`ClusterSimError`.
"""

from __future__ import annotations


class ClusterSimError(Exception):
    """Base class of every error clustersim reports to a user."""

    exit_code = 2


class ScenarioError(ClusterSimError):
    """A scenario file or override is malformed, unknown or impossible."""


class TopologyError(ClusterSimError):
    """The cluster described cannot be built (no route, bad layout)."""


class CalibrationError(ClusterSimError):
    """A calibration profile is missing, corrupt or of the wrong version."""


class SimulationError(ClusterSimError):
    """The simulation could not finish (work left waiting, deadlock)."""


# -- the error funnel's helpers: short excerpts, OS errors, strict JSON, atomic writes ---

#: Longest excerpt of user input an error message quotes (file contents, unknown names).
EXCERPT_CHARS = 40


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters: control characters escaped, so
    an error message never echoes more than a short, printable piece of its input."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def os_error_message(exc: OSError, path: object = None) -> str:
    """``PATH: reason`` for an OS error (the path the error names, else ``path``)."""
    name = exc.filename if exc.filename is not None else path
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{name}: {reason}" if name is not None else reason


def strict_json(data: object, **kwargs: object) -> str:
    """``json.dumps`` that refuses NaN and infinities (never writes invalid JSON): a
    non-finite number in a result is a :class:`SimulationError`, not output."""
    import json

    try:
        return json.dumps(data, allow_nan=False, **kwargs)  # type: ignore[arg-type]
    except ValueError as exc:
        raise SimulationError(f"a result is not a finite number ({exc}); nothing was written") from None


def write_atomic(path: object, data: str | bytes, what: str = "") -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a
    rename, so a failed write (full disk, read-only folder) leaves no partial file.
    Special files (``/dev/null``, a FIFO) are written in place. OS errors become one
    :class:`ClusterSimError` naming the option and the path."""
    import os
    import stat
    import tempfile
    from pathlib import Path

    target = Path(str(path))
    prefix = f"{what} " if what else ""
    payload = data.encode() if isinstance(data, str) else data
    try:
        try:
            special = not stat.S_ISREG(target.stat().st_mode)
        except FileNotFoundError:
            special = False
        if special:
            if target.is_dir():
                raise ClusterSimError(f"{prefix}{target}: is a directory")
            with open(target, "wb") as fh:
                fh.write(payload)
            return
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # what open() would have given the file
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ClusterSimError(f"{prefix}{target}: {exc.strerror or exc}") from None
    except ValueError as exc:  # an embedded NUL in the path
        raise ClusterSimError(f"{prefix}{excerpt(str(target))}: {exc}") from None


def check_output_path(path: object, option: str) -> None:
    """Refuse, before any work is done, an output path that cannot be written: a NUL
    byte, a directory, a missing parent folder or a parent that is a file. ``-`` and
    None (no output) pass."""
    from pathlib import Path

    if path is None or str(path) == "-":
        return
    text = str(path)
    if "\0" in text:
        raise ClusterSimError(f"{option} {excerpt(text)}: a path cannot contain a NUL byte")
    target = Path(text)
    try:
        if target.is_dir():
            raise ClusterSimError(f"{option} {target}: is a directory")
        parent = target.parent
        if not parent.exists():
            raise ClusterSimError(f"{option} {target}: no such directory: {parent}")
        if not parent.is_dir():
            raise ClusterSimError(f"{option} {target}: {parent} is not a directory")
    except OSError as exc:
        raise ClusterSimError(f"{option} {target}: {exc.strerror or exc}") from None


def figure_format(path: object, option: str) -> str:
    """The image format of ``path`` from its suffix, if matplotlib can write it; else
    one :class:`ClusterSimError` naming the option (checked before any work is done)."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # files only: no display needed
    from matplotlib.backend_bases import FigureCanvasBase

    check_output_path(path, option)
    suffix = str(path).rpartition(".")[2].lower() if "." in str(path) else ""
    known = FigureCanvasBase.get_supported_filetypes()
    if suffix not in known:
        raise ClusterSimError(
            f"{option} {path}: unsupported image format {excerpt(suffix) if suffix else '(no suffix)'}; "
            f"use one of {', '.join('.' + k for k in sorted(known))}"
        )
    return suffix


def save_figure(figure: object, path: object, option: str, dpi: int = 120) -> None:
    """Render ``figure`` in memory and write it atomically (no half-written image)."""
    import io

    fmt = figure_format(path, option)
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format=fmt, dpi=dpi)  # type: ignore[attr-defined]
    except (ValueError, OverflowError, MemoryError) as exc:
        raise ClusterSimError(f"{option} {path}: cannot draw the figure: {excerpt(str(exc), 200)}") from None
    write_atomic(path, buffer.getvalue(), option)
