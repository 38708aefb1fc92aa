"""Megatron's communication overlaps: --tp-comm-overlap (sequence-parallel collectives
pipelined with the GEMMs next to them) and --overlap-param-gather (ZeRO-1/2's parameter
all-gather under the next step's forward): closed forms, the checks naming the fields,
and what moves in a step."""

from __future__ import annotations

import pytest

from simulator import simulate
from simulator.errors import ScenarioError
from simulator.llm.costs import exposed_overlapped

from .test_step import scenario


@pytest.mark.parametrize(("comm", "gemm", "pieces", "exposed"), [
    (3.0, 4.0, 4, 0.0),  # 3 pieces of comm under 4 of GEMM: comm <= gemm (n-1)/n, hidden
    (3.0, 4.0, 2, 1.0),  # 3 + 4/2 - 4
    (10.0, 1.0, 8, 9.125),  # comm-bound: all of it but what 7/8 of the GEMM covers
    (0.0, 5.0, 8, 0.0),
    (2.0, 0.0, 8, 2.0),  # nothing to hide behind
])
def test_a_pipelined_collective_shows_beyond_its_gemm_by_the_closed_form(comm, gemm, pieces, exposed):
    assert exposed_overlapped(comm, gemm, pieces) == pytest.approx(exposed)
    # the pair takes max(gemm, comm + gemm / pieces)
    assert gemm + exposed_overlapped(comm, gemm, pieces) == pytest.approx(max(gemm, comm + gemm / pieces))


def test_tp_comm_overlap_hides_what_the_gemms_cover_and_nothing_else():
    plain = simulate(scenario(nodes=1, tensor=8, global_batch=8))
    overlapped = simulate(scenario(nodes=1, tensor=8, global_batch=8, tp_comm_overlap=True))
    assert plain.breakdown["compute_s"] == overlapped.breakdown["compute_s"]
    # the embedding's and the head's collectives stay exposed: a floor of 2 x (AG + RS) per pass
    tp = plain.extra["llm"]["tp_collective_s"]
    floor = 8 * 2 * 2 * (tp["allgather"] + tp["reduce_scatter"])
    assert floor <= overlapped.breakdown["tp_communication_s"] < 0.5 * plain.breakdown["tp_communication_s"]
    # the step shrinks by exactly the communication that went under the GEMMs
    saved = plain.breakdown["tp_communication_s"] - overlapped.breakdown["tp_communication_s"]
    assert plain.iteration_time_s - overlapped.iteration_time_s == pytest.approx(saved, rel=1e-6)


@pytest.mark.parametrize(("parallel", "field"), [
    (dict(tensor=1, tp_comm_overlap=True), "tp_comm_overlap"),
    (dict(tensor=8, sequence_parallel=False, tp_comm_overlap=True), "tp_comm_overlap"),
    (dict(tensor=8, zero_stage=0, overlap_param_gather=True), "overlap_param_gather"),
    (dict(tensor=8, zero_stage=3, overlap_param_gather=True), "overlap_param_gather"),
])
def test_an_overlap_without_what_it_overlaps_is_refused_naming_the_field(parallel, field):
    with pytest.raises((ScenarioError, ValueError), match=f"training.parallelism.{field}"):
        simulate(scenario(nodes=1, global_batch=8, **parallel))


def test_overlap_param_gather_moves_the_same_bytes_and_waits_only_where_forward_does_not_cover():
    # tensor 8 fills a node: the two replicas gather over a 100 Gb/s network
    after = simulate(scenario(tensor=8, zero_stage=1, nic=100))
    during = simulate(scenario(tensor=8, zero_stage=1, nic=100, overlap_param_gather=True))
    a, d = after.extra["llm"], during.extra["llm"]
    assert d["data_parallel_bytes_per_gpu"] == pytest.approx(a["data_parallel_bytes_per_gpu"], rel=1e-12)
    # after the optimizer step the whole gather is on the clock; under the forward only its excess
    assert 0 < during.breakdown["param_gather_s"] < after.breakdown["param_gather_s"]
    assert during.iteration_time_s < after.iteration_time_s
    # the step saves exactly the gather time the forward covered...
    saved = after.iteration_time_s - during.iteration_time_s
    assert saved == pytest.approx(after.breakdown["param_gather_s"] - during.breakdown["param_gather_s"], rel=1e-9)
    # ...which is at most the first micro-batch's forward (bounded here by its forward + backward)
    one_micro_batch = (during.breakdown["compute_s"] + during.breakdown["tp_communication_s"]) \
        / a["layout"]["micro_batches"]
    assert saved <= one_micro_batch
