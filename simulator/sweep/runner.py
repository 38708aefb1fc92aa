"""run_sweep: expand, skip what is known, simulate the rest, write rows as they finish.

A run's row comes, in order of preference, from the earlier attempt (``resume``: same
run number, same scenario hash), from the result cache (same canonical scenario and
package version), or from an executor. Every finished row goes to the journal at once;
the table is written when the sweep ends, and also when it is interrupted (Ctrl-C), so
everything that finished is kept. A run that fails is a row with ``status="error"``
and its message; the sweep goes on.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .._version import __version__
from .cache import ResultCache
from .executors import Executor, get_executor
from .expand import Run, expand
from .progress import Progress, ProgressChoice, make_progress
from .spec import SweepSpec, load_sweep
from .store import OutputLock, ResultStore, flatten, to_frame
from .worker import Outcome, Task, estimated_cost, run_batch

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class SweepSummary:
    """What a sweep did; also in ``DataFrame.attrs["sweep"]``."""

    runs: int = 0
    simulated: int = 0
    cached: int = 0
    resumed: int = 0
    failed: int = 0
    interrupted: bool = False
    output: str | None = None
    #: The table was written to ``output`` (also when interrupted), with ``kept`` rows.
    written: bool = False
    kept: int = 0


def base_row(run: Run) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run": run.run,
        "point": run.point,
        "replication": run.replication,
        "seed": run.seed,
        "version": __version__,
        "scenario_hash": run.scenario_hash,
        "status": "ok",
        "error": None,
    }
    if run.scenario is not None:
        row.update(flatten(run.scenario.model_dump(mode="json")))
    else:
        row.update({path: value for path, value in run.values.items() if not isinstance(value, (dict, list))})
    return row


def make_row(run: Run, metrics: Mapping[str, Any] | None, error: str | None) -> dict[str, Any]:
    row = base_row(run)
    if error is not None:
        row.update(status="error", error=error)
    else:
        row.update({k: v for k, v in metrics.items() if k not in ("seed", "version")})  # type: ignore[union-attr]
    return row


def _batches(tasks: list[Task], workers: int, per_worker: int, batch_size: int | None) -> list[list[Task]]:
    """Runs in expansion order cut into batches (neighbouring runs share a cluster, whose
    graph, routes and rates a worker then reuses); with several workers the heaviest
    batches go first, so that none is left running one alone at the end."""
    if batch_size is None:
        # A few batches per worker balance the load; at most 32 runs keep progress moving.
        batch_size = max(1, min(32, math.ceil(len(tasks) / (workers * per_worker))))
    batches = [tasks[i : i + batch_size] for i in range(0, len(tasks), batch_size)]
    if workers > 1 and len(batches) > 1:
        batches.sort(key=lambda batch: -sum(estimated_cost(scenario) for _, scenario in batch))  # stable
    return batches


def run_sweep(
    sweep: str | Path | Mapping[str, Any] | SweepSpec,
    output: str | Path | None = None,
    *,
    executor: str | Executor = "local",
    workers: int | None = None,
    scheduler: Any = None,
    resume: bool = False,
    cache: bool | str | Path = True,
    progress: ProgressChoice = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Run a sweep and return its tidy table (one row per run, sorted by run).

    Args:
        sweep: a sweep file, a dict of one, or a :class:`SweepSpec`.
        output: ``.parquet`` or ``.csv`` file written as runs finish (journal) and at
            the end; needed for ``resume``.
        executor: ``"local"`` (process pool, default), ``"serial"``, ``"dask"``,
            ``"ray"`` or an :class:`Executor` instance.
        workers: worker processes for ``local`` (default: every core).
        scheduler: dask scheduler address (``tcp://HOST:PORT``) or ``Client``; ray address.
        resume: reuse the rows of an earlier attempt at ``output``; failed runs are retried.
        cache: use the result cache (``True``), not (``False``), or this directory.
        progress: ``None`` automatic (a rich bar on a terminal, else a line per 10% on stderr),
            ``True``, ``False``, ``"rich"`` or ``"lines"``.
        batch_size: runs per executor task (default: a few batches per worker, <= 32).
    """
    spec, root, source = load_sweep(sweep)
    store = ResultStore(output) if output is not None else None
    if resume and store is None:
        from ..errors import ClusterSimError

        raise ClusterSimError("resume needs an output file to resume from")
    # One sweep at a time on an output: a second one is refused at once, not run twice over.
    with OutputLock(output) if output is not None else contextlib.nullcontext():
        runs = expand(spec, root, source)
        return _run_sweep(spec, runs, store, output, executor, workers, scheduler, resume, cache, progress,
                          batch_size)


def _run_sweep(spec: SweepSpec, runs: list[Run], store: ResultStore | None, output: str | Path | None,
               executor: str | Executor, workers: int | None, scheduler: Any, resume: bool, cache: bool | str | Path,
               progress: ProgressChoice, batch_size: int | None) -> pd.DataFrame:
    result_cache = None if cache is False else ResultCache(None if cache is True else cache)
    summary = SweepSummary(runs=len(runs), output=str(output) if output is not None else None)

    previous = store.previous_rows() if (store and resume) else {}
    rows: dict[int, dict[str, Any]] = {}
    todo: list[Run] = []
    for run in runs:
        old = previous.get(run.run)
        if old is not None and old.get("scenario_hash") == run.scenario_hash and old.get("status") == "ok":
            rows[run.run] = old
            summary.resumed += 1
        elif run.error is not None:
            rows[run.run] = make_row(run, None, run.error)
        elif result_cache is not None and (hit := result_cache.get(run.cache_key)) is not None:
            rows[run.run] = make_row(run, hit, None)
            summary.cached += 1
        else:
            todo.append(run)

    if store is not None:
        store.open_journal(append=resume)
        for run in runs:  # rows not from this file's history are journaled now
            if run.run in rows and run.run not in previous:
                store.append(rows[run.run])

    by_number = {run.run: run for run in todo}
    engine: Executor | None = None
    bar: Progress = make_progress(False, 0)
    try:
        if todo:
            engine = get_executor(executor, workers, scheduler)
            engine.start()  # workers first: forked before the progress bar starts a thread
        bar = make_progress(progress, len(runs), spec.name)
        bar.advance(len(rows), failed=sum(r["status"] == "error" for r in rows.values()))
        if engine is not None:
            # todo holds the runs that validated (no error): each has its scenario.
            tasks = cast("list[Task]", [(run.run, run.scenario) for run in todo])
            batches = _batches(tasks, engine.workers, engine.batches_per_worker, batch_size)
            for outcomes in engine.map_unordered(run_batch, batches):
                _record(outcomes, by_number, rows, store, result_cache, summary, bar)
    except KeyboardInterrupt as exc:
        summary.interrupted = True
        exc.sweep = summary  # type: ignore[attr-defined]  # what was kept, for the CLI's message
        raise
    finally:
        bar.close()
        if engine is not None and not isinstance(executor, Executor):
            engine.close(cancel=summary.interrupted or len(rows) < len(runs))
        summary.failed = sum(r["status"] == "error" for r in rows.values())
        frame = to_frame(rows.values())
        if store is not None:
            store.write(frame)
            summary.written, summary.kept = True, len(frame)
    frame.attrs["sweep"] = summary
    return frame


def _record(outcomes: list[Outcome], by_number: dict[int, Run], rows: dict[int, dict[str, Any]],
            store: ResultStore | None, result_cache: ResultCache | None, summary: SweepSummary,
            bar: Progress) -> None:
    failed = 0
    for number, metrics, error in outcomes:
        row = make_row(by_number[number], metrics, error)
        rows[number] = row
        if store is not None:
            store.append(row)
        if error is None:
            summary.simulated += 1
            if result_cache is not None:
                # no error: run_batch gave the run its metrics
                result_cache.put(by_number[number].cache_key, cast("dict[str, Any]", metrics))
        else:
            failed += 1
            summary.simulated += 1
    bar.advance(len(outcomes), failed=failed)
