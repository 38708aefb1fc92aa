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
from typing import Any, ClassVar, cast

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

    def start(self) -> None:
        """Start the workers now (the runner calls this before it starts the progress
        display's thread); ``map_unordered`` starts them if this was not called."""

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        raise NotImplementedError

    def close(self, cancel: bool = False) -> None:
        """Release resources; ``cancel`` (after Ctrl-C or an error) drops the work not
        finished, running work included where the engine can stop it."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        self.close(cancel=exc_type is not None)


@register_executor("serial")
class SerialExecutor(Executor):
    """In this process, in order."""

    batches_per_worker = 10**9  # batches of one: every finished run is written at once

    @property
    def workers(self) -> int:
        return 1

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        for item in items:
            yield fn(item)


#: How often a pool worker checks that the sweep that started it is still alive.
PARENT_POLL_S = 0.5
#: How long closing a cancelled pool waits for a killed worker (or the pool's manager
#: thread) to be gone; a SIGKILLed process is gone at once, this only bounds the wait.
WORKER_EXIT_S = 30.0


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

    def start(self) -> None:
        """Fork the workers now, before the progress bar starts a thread (a child forked
        while a thread holds a lock, stderr's say, inherits it held and hangs at its first
        warning), with Ctrl-C deferred (:func:`_sigint_deferred`): one that lands during a
        fork was raised inside an at-fork handler (logging's), where Python prints it as
        ignored and drops it, and the sweep ran on to its end. Now it is raised here once
        the workers exist (the runner then kills them); a worker that gets it before its
        initializer ignores SIGINT only records it."""
        if self._pool is None:
            with _sigint_deferred():
                self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_init_worker,
                                                 initargs=(os.getpid(),))
                self._pool.submit(int).result()  # the first task forks every worker (fork start method)

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        self.start()
        assert self._pool is not None
        pending = {self._pool.submit(fn, item) for item in items}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def close(self, cancel: bool = False) -> None:
        """Shut the pool down. With ``cancel`` (Ctrl-C, an error) the workers are killed
        at once: the runs they are in the middle of are dropped (the sweep keeps only
        finished rows; ``--resume`` runs them again), instead of this process waiting,
        at exit, for every batch already handed to a worker to finish - a batch of long
        runs is minutes."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not cancel:
            pool.shutdown(wait=True)
            return
        manager = getattr(pool, "_executor_manager_thread", None)
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            with contextlib.suppress(Exception):
                process.kill()
        for process in workers:
            with contextlib.suppress(Exception):
                process.join(timeout=WORKER_EXIT_S)
        if manager is not None:  # it notices the workers gone and ends (a broken pool)
            manager.join(timeout=WORKER_EXIT_S)


@register_executor("dask")
class DaskExecutor(Executor):
    """A dask.distributed cluster: ``scheduler="tcp://HOST:PORT"``, or a ``Client``."""

    connect_timeout: ClassVar[str] = "10s"

    def __init__(self, workers: int | None = None, scheduler: Any = None):
        super().__init__(workers)
        try:
            with _sigint_deferred(block=True):  # distributed's threads, started on import, inherit the mask
                from distributed import Client
        except ImportError as exc:
            raise ClusterSimError(f"--executor dask needs the dask extra: pip install 'clustersim[dask]' ({exc})") from None
        self._own_cluster: Any = None  # a LocalCluster this executor started
        if scheduler is not None and not isinstance(scheduler, str):
            self.client, self._own_client = scheduler, False  # a Client the caller manages
            return
        try:
            if scheduler is None:
                scheduler = self._start_local_cluster(workers)
        except BaseException:  # a Ctrl-C held back while the cluster started: none of it is left
            self.close(cancel=True)
            raise
        try:
            # distributed's Client, LocalCluster and as_completed are untyped: Any here.
            self.client, self._own_client = cast(Any, Client)(scheduler, timeout=self.connect_timeout), True
        except (OSError, TimeoutError) as exc:
            self.close(cancel=True)
            raise ClusterSimError(f"--scheduler {scheduler}: cannot connect to the dask scheduler: {exc}") from None
        except BaseException:  # Ctrl-C while connecting: no worker is left behind
            self.close(cancel=True)
            raise

    def _start_local_cluster(self, workers: int | None) -> Any:
        """A LocalCluster on loopback, without the bokeh dashboard. (dask always starts a
        small HTTP server for its health routes, and ``dashboard_address=None`` means the
        default :8787 on every interface, so it is pinned to an ephemeral loopback port.)

        Its worker processes never see SIGINT, as the pool's ignore it: a Ctrl-C in a
        terminal goes to the whole process group, and it is this process's to handle (keep
        what finished, kill the workers: :meth:`close`), not theirs to die of with a
        traceback each. The cluster starts with SIGINT blocked in this thread, so the
        threads distributed starts, and the worker processes they spawn, inherit it
        blocked; a Ctrl-C meanwhile is raised once the cluster is up (and then stops it,
        :func:`_sigint_deferred`). A worker spawned by a thread distributed had started
        before (it was imported and used earlier in this process) ignores SIGINT from its
        preload (:func:`dask_setup`) on."""
        from multiprocessing import resource_tracker

        from distributed import LocalCluster

        # Started here, before the block: started later from distributed's loop thread, it
        # would unblock SIGINT in that thread (multiprocessing blocks it around the spawn,
        # then SIG_UNBLOCKs it), and every worker spawned from there would get Ctrl-C.
        resource_tracker.ensure_running()
        with _sigint_deferred(block=True):
            self._own_cluster = cast(Any, LocalCluster)(
                n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                worker_dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False}, preload=[__name__],
            )
        return self._own_cluster

    @property
    def workers(self) -> int:
        if self._workers:
            return self._workers
        threads: dict[str, int] = self.client.nthreads()
        return max(1, sum(threads.values()))

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        from distributed import as_completed

        futures = self.client.map(fn, list(items), pure=False)
        self._futures = futures
        for future in cast(Any, as_completed)(futures):
            yield future.result()

    def close(self, cancel: bool = False) -> None:
        """Cancel what is not finished (``cancel``) and disconnect. A LocalCluster this
        executor started is stopped; on ``cancel`` its workers are killed first, so the
        runs they are in the middle of are dropped at once (an external cluster's workers
        are not this sweep's to kill: their running batch ends, its result unused)."""
        cluster, self._own_cluster = self._own_cluster, None
        client = getattr(self, "client", None)
        quiet = _quiet_dask_logs() if cancel and cluster is not None else contextlib.nullcontext()
        with quiet:
            if cluster is not None and cancel:
                for pid in _local_worker_pids(cluster):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            futures = getattr(self, "_futures", None)
            if client is not None and cancel and futures and cluster is None:
                with contextlib.suppress(Exception):
                    client.cancel(futures)
            if client is not None and getattr(self, "_own_client", False):
                client.close()
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def _sigint_deferred(*, block: bool = False) -> Iterator[None]:
    """A Ctrl-C (SIGINT) during the block is recorded, not raised, and raised when the
    block ends: never in the middle of starting workers, nor inside an at-fork handler,
    where Python would print it as ignored and drop it. Forked children inherit the
    recording handler until they ignore SIGINT themselves. With ``block``, SIGINT is
    also blocked in this thread meanwhile, so that the threads started in the block, and
    the processes they spawn (a spawned Python keeps the mask), have it blocked for good.
    Only in the main thread (elsewhere Python delivers no SIGINT anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # installed from C: cannot be put back, so left alone
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if block else None
    try:
        yield
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending Ctrl-C is recorded now
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)  # to the handler the caller had: KeyboardInterrupt


def dask_setup(worker: Any = None) -> None:
    """dask preload hook of the LocalCluster a dask sweep starts: its worker processes
    ignore SIGINT (see :class:`DaskExecutor`), one restarted by its nanny included."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _local_worker_pids(cluster: Any) -> list[int]:
    """The worker processes of a LocalCluster (its nannies live in this process)."""
    pids = []
    try:
        nannies = list(getattr(cluster, "workers", {}).values())
    except RuntimeError:  # changed size meanwhile (the cluster's loop thread): none this time
        return []
    for nanny in nannies:
        with contextlib.suppress(Exception):
            pid = nanny.pid
            if isinstance(pid, int) and pid > 0:
                pids.append(pid)
    return pids


@contextlib.contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """distributed's own warnings while a cancelled LocalCluster is torn down (workers
    killed on purpose, connections closed) are not the user's concern: held back."""
    import logging

    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


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

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
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
