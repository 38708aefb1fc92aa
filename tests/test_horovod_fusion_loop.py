"""Horovod's synchronous background loop (``fusion: horovod``) against closed forms:
a cycle starts one cycle time after the previous one or when its allreduces finish,
whichever is later, and fuses every gradient ready on all ranks by then."""

from __future__ import annotations

import pytest
import simpy

from simulator import load_scenario, simulate
from simulator.build import build
from simulator.compute import fusion_buckets, pack_fusion_buffers
from simulator.sync import Synchronizer
from simulator.training import run

MIB = 1024 * 1024


class FixedTimeAllreduce(Synchronizer):
    """One stream; each buffer takes ``seconds`` once every rank has handed it over."""

    def __init__(self, ctx, seconds: float):
        super().__init__(ctx)
        self.seconds = seconds
        self.arrived: dict = {}
        self.queue = simpy.Store(self.env)
        self.env.process(self._stream())

    def ready(self, rank, key, nbytes):
        self.arrived[key] = self.arrived.get(key, 0) + 1
        if self.arrived[key] == (self.n if self.ctx.detailed else 1):
            self.queue.put(key)
        return self._event("done", key)

    def _stream(self):
        while True:
            key = yield self.queue.get()
            yield self.env.timeout(self.seconds)
            self._event("done", key).succeed()


def scenario(**training):
    return load_scenario({
        "cluster": {"nodes": 2, "gpus_per_node": 4},
        "workload": {"model": "resnet50", "batch_per_gpu": 32},
        "training": {"strategy": "ring_allreduce", "fusion": "horovod", "overlap": True, **training},
        "simulation": {"iterations": 2, "warmup_iterations": 0, "mode": "detailed"},
        "variability": {"iteration_cv": 0},
    })


def run_with(s, seconds: float):
    sim = build(s)
    sim.sync = FixedTimeAllreduce(sim.context, seconds)
    run(sim)
    return sim


def test_buffers_cover_the_gradients_exactly_once():
    for seconds in (1e-9, 2e-3, 1.0):
        sim = run_with(scenario(), seconds)
        total = float(sim.costs.gradient_bytes.sum())
        for buffers in sim.fusion_buffers.values():
            assert sum(b for _, b, _ in buffers) == pytest.approx(total, rel=1e-12)
            assert sum(n for _, _, n in buffers) == int((sim.costs.gradient_bytes > 0).sum())


def test_a_long_allreduce_gathers_everything_ready_meanwhile_into_the_next_cycle():
    # The first cycle's allreduce outlasts backward: all the rest is ready by the time
    # it ends, and (threshold above the model) goes as ONE buffer in the next cycle.
    s = scenario(bucket_size_mib=10_000, fusion_cycle_ms=1)
    sim = run_with(s, 1.0)
    for buffers in sim.fusion_buffers.values():
        assert len(buffers) == 2
        (t0, nbytes, tensors), (t1, _, _) = buffers
        # the next cycle starts once the first buffer is copied in, reduced and copied out
        assert t1 == pytest.approx(t0 + 1.0 + 2 * sim.copy_s(nbytes, tensors))
    # With the 64 MB threshold: the next cycle packs the rest into threshold-sized buffers.
    sim = run_with(scenario(fusion_cycle_ms=1), 1.0)
    sizes = [nbytes for _, nbytes in sim.fusion_tensors]
    for buffers in sim.fusion_buffers.values():
        first = buffers[0][2]
        rest = pack_fusion_buffers(sizes[first:], 64 * MIB)
        assert [x for _, b, n in buffers[1:] for x in (b, n)] == pytest.approx([x for pair in rest for x in pair])
        assert len({t for t, _, _ in buffers[1:]}) == 1  # all in one cycle


def test_a_short_allreduce_gives_the_static_ticks():
    s = scenario()
    sim = run_with(s, 1e-9)
    static = fusion_buckets(sim.costs.gradient_bytes, sim.costs.backward_s, 5e-3, 64 * MIB)
    for it, buffers in sim.fusion_buffers.items():
        start = sim.timelines[0].forward_end[it]
        assert [x for t, b, _ in buffers for x in (t - start, b)] == pytest.approx(
            [x for pair in static for x in pair], rel=1e-9, abs=1e-12)


def test_fast_and_detailed_paths_agree():
    def scen(mode):
        return load_scenario({
            "cluster": {"nodes": 2, "gpus_per_node": 4},
            "workload": {"model": "resnet50", "batch_per_gpu": 32},
            "training": {"framework": "horovod", "fusion": "horovod"},
            "simulation": {"iterations": 2, "warmup_iterations": 1, "mode": mode}, "variability": {"iteration_cv": 0},
        })
    fast, detailed = simulate(scen("fast")), simulate(scen("detailed"))
    assert fast.throughput_samples_per_s == pytest.approx(detailed.throughput_samples_per_s, rel=1e-3)


def test_async_mode_keeps_the_static_ticks():
    s = scenario(fusion="horovod_async")
    sim = build(s)
    assert sim.fusion_tensors is None
    assert sim.buckets == fusion_buckets(sim.costs.gradient_bytes, sim.costs.backward_s, 5e-3, 64 * MIB)
