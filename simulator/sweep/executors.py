"""Executors: where a sweep's batches run. One small interface, registered by name.

An executor maps a picklable function over a list of items and yields the results
as they complete, in any order; the runner owns batching, caching, ordering and
writing, so an engine is only this: subclass :class:`Executor`, implement
``map_unordered`` (and ``close`` if it holds resources), and decorate it with
``@register_executor("name")`` - in this module or in your own.

* ``serial`` - in this process, one item after another (debugging, baselines).
* ``local`` - a process pool on every core (the default).
* ``dask`` - a dask.distributed cluster at ``scheduler`` (``tcp://HOST:PORT``), or a
  new LocalCluster when no scheduler is given. Needs the ``dask`` extra.
* ``ray`` - a Ray cluster at ``address`` (or a local one). Needs ``ray`` installed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, ClassVar

from ..errors import ClusterSimError

EXECUTORS: dict[str, type[Executor]] = {}


def register_executor(name: str) -> Callable[[type[Executor]], type[Executor]]:
    def decorator(cls: type[Executor]) -> type[Executor]:
        if name in EXECUTORS:
            raise ValueError(f"executor {name!r} is already registered")
        cls.name = name
        EXECUTORS[name] = cls
        return cls

    return decorator


class Executor:
    """Runs ``fn`` over items somewhere; subclasses implement :meth:`map_unordered`."""

    name: ClassVar[str] = "?"
    #: Items per batch the runner aims for: batches of several runs amortize the
    #: per-task overhead of process pools and schedulers (a run takes ~10 ms).
    batches_per_worker: ClassVar[int] = 4

    def __init__(self, workers: int | None = None, **options: Any):
        if options:
            raise ClusterSimError(f"executor {self.name!r}: unknown options {sorted(options)}")
        self._workers = workers

    @property
    def workers(self) -> int:
        return self._workers or os.cpu_count() or 1

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        raise NotImplementedError

    def close(self, cancel: bool = False) -> None:
        """Release resources; ``cancel`` drops work not started (after Ctrl-C)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        self.close(cancel=exc_type is not None)


@register_executor("serial")
class SerialExecutor(Executor):
    """In this process, in order."""

    batches_per_worker = 10**9  # batches of one: every finished run is written at once

    @property
    def workers(self) -> int:
        return 1

    def map_unordered(self, fn, items):
        for item in items:
            yield fn(item)


#: How often a pool worker checks that the sweep that started it is still alive.
PARENT_POLL_S = 0.5


def _init_worker(creator: int) -> None:
    """Pool worker start-up: Ctrl-C is the parent's to handle (it keeps what finished
    and stops the pool); the sweep's locks are not the worker's to hold; and the worker
    exits, within about ``PARENT_POLL_S``, once the sweep process that created the pool
    is gone (killed outright, say), instead of idling on as an orphan."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .store import held_fds

    for fd in held_fds():  # a forked copy would keep the output locked after the sweep dies
        with contextlib.suppress(OSError):
            os.close(fd)
    parent = os.getppid()  # the sweep itself, or a forkserver that exits with it
    if not _alive(creator) or (parent == 1 and creator != 1):
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(creator, parent), daemon=True, name="clustersim-parent-watch").start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _watch_parent(creator: int, parent: int) -> None:
    while os.getppid() == parent and _alive(creator):
        time.sleep(PARENT_POLL_S)
    os._exit(1)  # no cleanup: the sweep that would receive our results is gone


@register_executor("local")
class LocalExecutor(Executor):
    """A process pool on this machine (every core unless ``workers`` says otherwise)."""

    def __init__(self, workers: int | None = None):
        super().__init__(workers)
        self._pool: ProcessPoolExecutor | None = None

    def map_unordered(self, fn, items):
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_init_worker,
                                             initargs=(os.getpid(),))
        pending = {self._pool.submit(fn, item) for item in items}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
            self._pool = None


@register_executor("dask")
class DaskExecutor(Executor):
    """A dask.distributed cluster: ``scheduler="tcp://HOST:PORT"``, or a ``Client``."""

    connect_timeout: ClassVar[str] = "10s"

    def __init__(self, workers: int | None = None, scheduler: Any = None):
        super().__init__(workers)
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ClusterSimError(f"--executor dask needs the dask extra: pip install 'clustersim[dask]' ({exc})") from None
        self._own_cluster = None
        if scheduler is not None and not isinstance(scheduler, str):
            self.client, self._own_client = scheduler, False  # a Client the caller manages
            return
        if scheduler is None:
            # Loopback only; no bokeh dashboard. (dask always starts a small HTTP server for
            # its health routes, and `dashboard_address=None` means the default :8787 on every
            # interface, so it is pinned to an ephemeral loopback port instead.)
            self._own_cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                worker_dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
            )
            scheduler = self._own_cluster
        try:
            self.client, self._own_client = Client(scheduler, timeout=self.connect_timeout), True
        except (OSError, TimeoutError) as exc:
            raise ClusterSimError(f"--scheduler {scheduler}: cannot connect to the dask scheduler: {exc}") from None

    @property
    def workers(self) -> int:
        if self._workers:
            return self._workers
        threads = self.client.nthreads()
        return max(1, sum(threads.values()))

    def map_unordered(self, fn, items):
        from distributed import as_completed

        futures = self.client.map(fn, list(items), pure=False)
        self._futures = futures
        for future in as_completed(futures):
            yield future.result()

    def close(self, cancel: bool = False) -> None:
        futures = getattr(self, "_futures", None)
        if cancel and futures:
            self.client.cancel(futures)
        if self._own_client:
            self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()


@register_executor("ray")
class RayExecutor(Executor):
    """A Ray cluster at ``address`` (``ray://HOST:PORT`` or ``auto``), or a local one."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        super().__init__(workers)
        try:
            import ray
        except ImportError as exc:
            raise ClusterSimError(f"--executor ray needs ray installed: pip install ray ({exc})") from None
        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=scheduler, num_cpus=None if scheduler else workers)

    @property
    def workers(self) -> int:
        return self._workers or int(self._ray.cluster_resources().get("CPU", 1))

    def map_unordered(self, fn, items):
        remote = self._ray.remote(fn)
        pending = [remote.remote(item) for item in items]
        self._pending = pending
        while pending:
            done, pending = self._ray.wait(pending, num_returns=1)
            self._pending = pending
            for ref in done:
                yield self._ray.get(ref)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in getattr(self, "_pending", []):
                self._ray.cancel(ref)


def get_executor(executor: str | Executor = "local", workers: int | None = None, scheduler: Any = None) -> Executor:
    """An executor instance from a name (``scheduler`` goes to dask and ray)."""
    if isinstance(executor, Executor):
        return executor
    cls = EXECUTORS.get(executor)
    if cls is None:
        raise ClusterSimError(f"unknown executor {executor!r}; known: {', '.join(sorted(EXECUTORS))}")
    if scheduler is not None:
        if executor not in ("dask", "ray"):
            raise ClusterSimError(f"--scheduler is for the dask and ray executors, not {executor!r}")
        return cls(workers, scheduler=scheduler)
    return cls(workers)
