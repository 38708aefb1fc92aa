"""Sweeps: many scenarios from one file, run on an executor, collected into one table.

A **sweep file** names a base scenario and axes over dotted scenario paths (``grid``:
every combination; ``zip``: lists walked in lockstep; ``random``: seeded samples), plus
replications. :func:`expand` turns it into numbered runs; :func:`run_sweep` simulates
them on an :class:`Executor` (serial, a local process pool, dask, ray), skipping runs
found in the result cache or, with ``resume``, in the output file, and returns a tidy
DataFrame: one row per run with the run's seed, the package version, every scenario
field as a dotted column and every metric.

Modules: ``spec`` (the file schema), ``expand`` (runs and their seeds), ``worker``
(what executes remotely), ``executors`` (the engines), ``cache``, ``store`` (journal
and output files), ``progress``, ``runner`` (:func:`run_sweep`).
"""

from .executors import EXECUTORS, Executor, get_executor, register_executor
from .expand import Run, expand
from .runner import run_sweep
from .spec import SweepSpec, load_sweep
from .store import read_results

__all__ = [
    "EXECUTORS",
    "Executor",
    "Run",
    "SweepSpec",
    "expand",
    "get_executor",
    "load_sweep",
    "read_results",
    "register_executor",
    "run_sweep",
]
