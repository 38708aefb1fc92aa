"""Sweep tables on disk: a journal written as runs finish, and the final table.

While a sweep runs, every finished row is appended to ``OUTPUT.partial.jsonl`` and
flushed, so an interrupted or killed sweep loses nothing that finished. When the sweep
ends (or is interrupted) the table is written to OUTPUT (``.parquet`` or ``.csv``)
through a temporary file and a rename, and the journal is removed. ``--resume`` reads
both back.

Columns come in a fixed order whatever the order rows arrived in: run identity,
then every scenario field (dotted, in schema order), then every metric (in
:class:`SimResult` order), so an interrupted-and-resumed sweep writes the same table
as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ClusterSimError, ScenarioError
from ..results import SimResult
from ..scenario import Scenario

if TYPE_CHECKING:  # pandas is imported when a table is built: `import simulator` stays light
    import pandas as pd

META_COLUMNS = ("run", "point", "replication", "seed", "version", "scenario_hash", "status", "error")
CONFIG_SECTIONS = tuple(name for name in Scenario.model_fields)
SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


@cache
def _config_order() -> dict[str, int]:
    return {k: i for i, k in enumerate(flatten(Scenario().model_dump(mode="json")))}


_METRIC_ORDER = {f.name: i for i, f in enumerate(fields(SimResult))}


def is_config_column(col: str) -> bool:
    return col.split(".", 1)[0] in CONFIG_SECTIONS


def _column_key(col: str) -> tuple[Any, ...]:
    if col in META_COLUMNS:
        return (0, META_COLUMNS.index(col))
    parts = tuple(int(p) if p.isdigit() else p for p in col.split("."))
    if is_config_column(col):
        order = _config_order()
        return (1, order.get(col, len(order)), tuple(map(str, parts)))
    # Ranked parts (utilization.2.kind) sort numerically: keys are (is-number, value).
    tail = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in parts[1:])
    return (2, _METRIC_ORDER.get(str(parts[0]), len(_METRIC_ORDER)), str(parts[0]), tail)


def to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> a DataFrame sorted by run, columns in the canonical order."""
    import pandas as pd

    rows = sorted(rows, key=lambda r: r["run"])
    columns = sorted({c for r in rows for c in r} | set(META_COLUMNS), key=_column_key)
    return pd.DataFrame.from_records(rows, columns=columns).reset_index(drop=True)


def output_format(path: Path) -> str:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ScenarioError(f"{path}: unknown results format {path.suffix!r}; use .parquet or .csv")
    return fmt


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a sweep table written by :func:`run_sweep` or ``clustersim sweep``."""
    import pandas as pd

    path = Path(path)
    fmt = output_format(path)
    try:
        return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    except FileNotFoundError:
        raise ClusterSimError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        raise ClusterSimError(f"{path}: cannot read results: {exc}") from None


#: File descriptors of this process's sweep locks (the output lock, the journal):
#: forked pool workers close their copies (:func:`held_fds`), so that only the sweep
#: process itself holds an output locked.
_HELD_FDS: set[int] = set()


def held_fds() -> frozenset[int]:
    """The lock file descriptors a forked worker should close."""
    return frozenset(_HELD_FDS)


class OutputLock:
    """``OUTPUT.lock``: one sweep at a time on an output, held from before the earlier
    rows are read until the table is written.

    A second sweep (``--resume`` or not) on the same output is refused at once with one
    error naming the process that holds it, instead of both running the same runs into
    one journal. The lock is an advisory ``flock``: the kernel drops it when the holder
    dies, however it dies, so a killed sweep never leaves a stale lock; the file is
    removed when the holder finishes. Not on POSIX: no lock."""

    def __init__(self, output: str | Path):
        output = Path(output)
        self.output = output
        self.path = output.with_name(output.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            return
        for _ in range(20):  # retried only if the file was removed between open and lock
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ClusterSimError(f"{self.output}: cannot lock the output ({self.path.name}): "
                                      f"{exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (process {holder})" if holder else ""
                raise ClusterSimError(
                    f"{self.output}: another sweep is running on this output{who}; wait for it to finish, "
                    f"stop it, or choose another output ({self.path.name} is locked)"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder finished and removed the file we opened: take the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            _HELD_FDS.add(fd)
            return
        raise ClusterSimError(f"{self.output}: cannot lock the output ({self.path.name} keeps changing)")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still held: a waiting sweep then retries on a new file
        _HELD_FDS.discard(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and len(text) < 12 else None


def _json_safe(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


class ResultStore:
    """The output file of one sweep and its journal."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = output_format(self.path)
        self.journal_path = self.path.with_name(self.path.name + ".partial.jsonl")
        self._journal: TextIO | None = None

    def previous_rows(self) -> dict[int, dict[str, Any]]:
        """Rows of an earlier attempt: the output table, then the journal on top."""
        rows: dict[int, dict[str, Any]] = {}
        if self.path.exists():
            for row in read_results(self.path).to_dict("records"):
                rows[int(row["run"])] = {k: _json_safe(v) for k, v in row.items()}
        if self.journal_path.exists():
            for line in self.journal_path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # the last line of a killed sweep may be cut short
                if isinstance(row, dict) and isinstance(row.get("run"), int):
                    rows[row["run"]] = row
        return rows

    def open_journal(self, *, append: bool) -> None:
        """Open the journal, locked: a second sweep on the same output is refused
        rather than duplicating work into it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            journal = open(self.journal_path, "a")  # noqa: SIM115 - truncated below, once locked
        except OSError as exc:
            raise ClusterSimError(f"{self.path}: cannot write the sweep journal: {exc.strerror or exc}") from None
        try:
            import fcntl

            fcntl.flock(journal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not on POSIX: no lock
            pass
        except OSError:
            journal.close()
            raise ClusterSimError(
                f"{self.path}: another sweep is writing this output ({self.journal_path.name} is locked); "
                "wait for it or choose another output"
            ) from None
        if not append:
            journal.truncate(0)
        self._journal = journal
        _HELD_FDS.add(journal.fileno())

    def append(self, row: dict[str, Any]) -> None:
        if self._journal is not None:
            try:
                self._journal.write(json.dumps(row, sort_keys=True) + "\n")
                self._journal.flush()
            except OSError as exc:
                self._close_journal()
                raise ClusterSimError(f"{self.journal_path}: cannot write the sweep journal: "
                                      f"{exc.strerror or exc}") from None

    def _close_journal(self) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            _HELD_FDS.discard(journal.fileno())
            try:
                journal.close()
            except OSError:
                pass  # a failed flush was already reported by append()

    def write(self, frame: pd.DataFrame) -> None:
        """Write the table atomically, then drop the journal it supersedes."""
        self._close_journal()
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            os.close(fd)
        except OSError as exc:
            raise ClusterSimError(f"{self.path}: cannot write results: {exc.strerror or exc}") from None
        try:
            if self.format == "parquet":
                frame.to_parquet(tmp, index=False)
            else:
                frame.to_csv(tmp, index=False)
            os.replace(tmp, self.path)
        except BaseException as exc:  # Ctrl-C while writing too: no temporary file left behind
            Path(tmp).unlink(missing_ok=True)
            if not isinstance(exc, Exception):
                raise
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ClusterSimError(f"{self.path}: cannot write results: {reason}") from None
        self.journal_path.unlink(missing_ok=True)


