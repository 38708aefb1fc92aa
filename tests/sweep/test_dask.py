"""The dask executor on a real LocalCluster over loopback gives the local pool's rows."""

from __future__ import annotations

import pytest
from pandas.testing import assert_frame_equal

from simulator import run_sweep

from .conftest import small_sweep

distributed = pytest.importorskip("distributed")


def test_dask_localcluster_on_loopback_gives_the_local_rows():
    sweep = small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4],
                                       "training.strategy": ["ring_allreduce", "parameter_server"]}},
                        replications=2)
    local = run_sweep(sweep, workers=2, cache=False, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        on_dask = run_sweep(sweep, executor="dask", scheduler=cluster.scheduler_address, cache=False, progress=False)
    assert on_dask.attrs["sweep"].simulated == 12
    assert_frame_equal(local, on_dask)


def test_an_unreachable_scheduler_is_a_user_error(monkeypatch):
    from simulator import ClusterSimError
    from simulator.sweep.executors import DaskExecutor

    monkeypatch.setattr(DaskExecutor, "connect_timeout", "1s")

    with pytest.raises(ClusterSimError, match="cannot connect to the dask scheduler"):
        run_sweep(small_sweep(), executor="dask", scheduler="tcp://127.0.0.1:1", cache=False, progress=False)
