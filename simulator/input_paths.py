"""Paths named inside input files, and where they may point (path containment).

Three fields name another file: a scenario's ``calibration:`` (a profile), a sweep's
``base:`` (a scenario) and a measured-runs CSV's ``scenario`` column. A relative path
resolves against the folder of the file that names it. Unless outside paths are allowed
(``clustersim --allow-outside-paths ...`` or ``CLUSTERSIM_ALLOW_OUTSIDE_PATHS=1``),
the file it names, symlinks followed, must lie under

* the *trust root*: the folder of the file given on the command line (a scenario, a
  sweep file or a CSV; files it names in turn, such as the calibration profile of a
  CSV row's scenario, must lie under that same folder), or
* one of clustersim's shipped data folders: ``scenarios/`` and
  ``calibration/profiles/`` next to the ``simulator`` package (where they exist), so
  the shipped sweeps (``base: ../ring_4x4_ib100.yaml``) and measured-run scenarios
  (``calibration: ../../../calibration/profiles/...``) keep working.

Anything else (an absolute path elsewhere, ``..`` out of the root, a symlink leading
out) is refused with one error naming the file and the field, before the file is
opened: a scenario, sweep or CSV from someone else cannot make clustersim read, and
quote in its errors, files outside its own folder. Paths typed on the command line
(``--set calibration=...``, ``--profile``) and in-memory scenarios (a dict) are the
user's own and are not restricted.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import ClusterSimError, ScenarioError, excerpt

#: Environment variable that lifts the containment (set by ``--allow-outside-paths``).
ALLOW_OUTSIDE_ENV = "CLUSTERSIM_ALLOW_OUTSIDE_PATHS"
#: The command-line flag (on the ``clustersim`` group, like ``--allow-large``).
ALLOW_OUTSIDE_FLAG = "--allow-outside-paths"


def outside_allowed() -> bool:
    """Whether input files may name paths outside their trust root."""
    return os.environ.get(ALLOW_OUTSIDE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def allowing_outside_paths() -> Iterator[None]:
    """Lift the containment for a block (for callers whose input files are their own,
    such as a tool reading back the scenarios it has just written); child processes
    started inside the block inherit it."""
    before = os.environ.get(ALLOW_OUTSIDE_ENV)
    os.environ[ALLOW_OUTSIDE_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ALLOW_OUTSIDE_ENV, None)
        else:
            os.environ[ALLOW_OUTSIDE_ENV] = before


@functools.cache
def shipped_folders() -> tuple[str, ...]:
    """Real paths of clustersim's own data folders that exist in this installation."""
    top = Path(__file__).resolve().parent.parent
    folders = (top / "scenarios", top / "calibration" / "profiles")
    return tuple(os.path.realpath(f) for f in folders if f.is_dir())


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def resolve_input_path(
    value: object,
    folder: str | Path,
    *,
    source: str,
    field: str,
    root: str | Path | None = None,
    error: type[ClusterSimError] = ScenarioError,
) -> Path:
    """The path ``value`` (named in ``field`` of the file ``source``) joined to
    ``folder`` (the folder of ``source``) when relative. Unless outside paths are
    allowed it must lie, symlinks followed, under ``root`` (the trust root; default
    ``folder``) or a shipped data folder; else one ``error`` naming ``source`` and
    ``field`` (the path quoted as a short, escaped excerpt)."""
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise error(f"{source}: {field}: {excerpt(value)} is not a usable file path (empty, or with a NUL byte)")
    path = Path(value)
    joined = path if path.is_absolute() else Path(folder) / path
    if outside_allowed():
        return joined
    base = Path(root) if root is not None else Path(folder)
    try:
        real = os.path.realpath(joined)
        roots = (os.path.realpath(base), *shipped_folders())
    except (OSError, ValueError) as exc:  # a symlink loop on some systems, a path too long
        raise error(f"{source}: {field}: {excerpt(value, 80)}: cannot resolve the path ({exc})") from None
    if any(_under(real, r) for r in roots):
        return joined
    shown = str(base) if str(base) not in ("", ".") else "."
    kind = "an absolute path" if path.is_absolute() else "a path"
    raise error(
        f"{source}: {field}: {excerpt(value, 80)} is {kind} outside {shown}{os.sep} (the input file's folder) and "
        f"clustersim's shipped scenarios and profiles; refused (`clustersim {ALLOW_OUTSIDE_FLAG} ...` allows it)"
    )


__all__ = [
    "ALLOW_OUTSIDE_ENV", "ALLOW_OUTSIDE_FLAG", "allowing_outside_paths", "outside_allowed", "resolve_input_path",
    "shipped_folders",
]
