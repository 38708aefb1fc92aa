"""A transformer-parallel step on the engine: data-parallel volumes, the pipeline's
bubble with real transfers, memory refusals, determinism, and the CLI."""

from __future__ import annotations

import json

import pytest

from simulator import load_scenario, simulate
from simulator.errors import ScenarioError
from simulator.llm.parallel import bubble_fraction
from simulator.llm.spec import PRESETS, parameter_count

from ..test_cli import run_main


def scenario(nodes=2, gpus=8, model="llama2_7b", seq=2048, nic=1600, **parallel):
    return load_scenario({
        "cluster": {"nodes": nodes, "gpus_per_node": gpus, "gpu": "A100-SXM4-80GB", "server": {"layout": "nvswitch"},
                    "nic": {"bandwidth_gbps": nic}},
        "workload": {"model": model, "precision": "bf16", "sequence_length": seq},
        "training": {"parallelism": {"global_batch": 16, **parallel}},
    })


def test_zero3_moves_one_and_a_half_times_the_bytes_of_data_parallel():
    # ZeRO paper, section 7.2.2: all-gather before forward and backward + reduce-scatter = 3 Psi,
    # against 2 Psi for an all-reduce (one micro-batch, so one gather pair per step)
    plain = simulate(scenario(tensor=8, global_batch=2, zero_stage=0)).extra["llm"]
    zero1 = simulate(scenario(tensor=8, global_batch=2, zero_stage=1)).extra["llm"]
    zero3 = simulate(scenario(tensor=8, global_batch=2, zero_stage=3)).extra["llm"]
    base = plain["data_parallel_bytes_per_gpu"][0]
    assert base > 0
    assert zero1["data_parallel_bytes_per_gpu"][0] == pytest.approx(base, rel=1e-12)
    assert zero3["data_parallel_bytes_per_gpu"][0] == pytest.approx(1.5 * base, rel=1e-12)
    # an all-reduce of the bf16 gradients of this GPU's 1/8 of the model over 2 replicas: 2 x (1/2) x 2 bytes x Psi/8
    psi = parameter_count(PRESETS["llama2_7b"])
    assert base == pytest.approx(2 * psi / 8, rel=0.01)


def test_a_pipeline_over_the_network_waits_at_least_its_bubble():
    r = simulate(scenario(tensor=8, pipeline=2, global_batch=8))
    llm = r.extra["llm"]
    assert llm["layout"]["micro_batches"] == 8
    ideal = bubble_fraction("1f1b", 2, 8)
    assert llm["ideal_bubble_fraction"] == pytest.approx(ideal)
    # stage 0 idles at least the ideal bubble of its step (transfers only add to it)
    assert r.breakdown["pipeline_wait_s"] >= ideal * (r.breakdown["compute_s"] + r.breakdown["tp_communication_s"]
                                                       + r.breakdown["recompute_s"]) * (1 - 1e-9)


def test_more_network_bandwidth_is_never_slower():
    # tensor 8 fills a node, so the two data-parallel replicas reduce across the network
    times = [simulate(scenario(tensor=8, nic=nic, global_batch=16)).iteration_time_s for nic in (10, 100, 400, 1600)]
    assert times == sorted(times, reverse=True)
    assert times[0] > times[-1] * 1.05  # at 10 Gb/s the gradient reduce is exposed
    # tensor 4 x pipeline 2: the replicas sit in one node, only pipeline transfers cross it
    pipelined = [simulate(scenario(tensor=4, pipeline=2, nic=nic, global_batch=16)).iteration_time_s
                 for nic in (10, 1600)]
    assert pipelined[0] >= pipelined[1]


def test_tensor_parallel_collectives_are_on_the_critical_path():
    r = simulate(scenario(nodes=1, tensor=8, global_batch=8))
    llm = r.extra["llm"]
    # 2 per block + embedding + head, forward and backward, 8 micro-batches, sequence parallel: AG + RS each
    per_pass = (2 * 32 + 2) * (llm["tp_collective_s"]["allgather"] + llm["tp_collective_s"]["reduce_scatter"])
    assert r.breakdown["tp_communication_s"] == pytest.approx(8 * 2 * per_pass, rel=1e-9)


def test_the_same_scenario_gives_the_same_bytes():
    a = simulate(scenario(tensor=2, pipeline=2, global_batch=16)).to_json()
    b = simulate(scenario(tensor=2, pipeline=2, global_batch=16)).to_json()
    assert a == b


def test_mfu_is_model_flops_over_peak():
    r = simulate(scenario(nodes=1, tensor=8, global_batch=8))
    llm = r.extra["llm"]
    tokens = 8 * 2048
    from simulator.llm.spec import model_flops_per_token

    flops = model_flops_per_token(PRESETS["llama2_7b"], 2048) * tokens
    assert llm["mfu"] == pytest.approx(flops / (r.iteration_time_s * 8 * 312e12), rel=1e-9)  # A100 dense bf16
    assert 0.2 < llm["mfu"] < 0.7


def test_a_model_that_does_not_fit_is_refused_with_the_numbers(capsys, tmp_path):
    import yaml

    data = {"cluster": {"nodes": 1, "gpus_per_node": 8, "gpu": "A100-SXM4-80GB", "server": {"layout": "nvswitch"}},
            "workload": {"model": "llama2_70b", "precision": "bf16", "sequence_length": 4096},
            "training": {"parallelism": {"tensor": 1, "global_batch": 8, "zero_stage": 0}}}
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, err = run_main(capsys, "simulate", str(path))
    assert code == 2 and "Traceback" not in err
    assert "needs" in err and "GiB per GPU" in err and "model states" in err


def test_cli_json_is_strict_and_has_the_llm_figures(capsys):
    code, out, err = run_main(capsys, "simulate", "scenarios/llm_llama2_7b_32xa100.yaml", "--json", "-")
    assert code == 0, err
    data = json.loads(out)
    llm = data["extra"]["llm"]
    assert llm["tokens_per_s"] == pytest.approx(llm["tokens_per_s_per_gpu"] * 32)
    assert llm["step_time_s"] == data["iteration_time_s"]
    assert data["global_batch"] * 4096 / data["iteration_time_s"] == pytest.approx(llm["tokens_per_s"])


def test_context_parallel_ranks_split_the_attention_and_the_activations():
    from simulator.llm.stage import stage_model

    spec, seq = PRESETS["llama3_8b"], 32768

    def attention(c):
        m = stage_model(spec, seq_len=seq // c, tp=1, first_layer=0, layers=1, embedding=False, head=False,
                        sequence_parallel=False, flash_attention=True, context=c)
        return sum(layer.forward_flops for layer in m.layers if layer.kind == "attention")
    # local queries against every key: 1/c of the (causal) work each
    assert attention(4) * 4 == attention(1) == 2 * seq * seq * spec.hidden
    one = simulate(scenario(model="llama3_8b", seq=8192, tensor=8, global_batch=4)).extra["llm"]
    two = simulate(scenario(model="llama3_8b", seq=8192, tensor=8, context=2, global_batch=2)).extra["llm"]
    assert two["memory_gib_per_stage"][0]["activations"] == pytest.approx(
        one["memory_gib_per_stage"][0]["activations"] / 2)
    assert two["tp_collective_s"]["ring_attention"] > 0


def test_expert_parallel_ranks_hold_their_share_of_the_experts_and_exchange_tokens():
    spec = PRESETS["mixtral_8x7b"]
    one = simulate(scenario(model="mixtral_8x7b", seq=4096, tensor=8, global_batch=2)).extra["llm"]
    ep = simulate(scenario(model="mixtral_8x7b", seq=4096, tensor=4, expert=4, global_batch=4)).extra["llm"]
    from simulator.llm.stage import stage_model

    def expert_weights(tp, ep):
        m = stage_model(spec, seq_len=4096, tp=tp, first_layer=0, layers=spec.layers, embedding=False, head=False,
                        sequence_parallel=True, flash_attention=True, expert=ep)
        return sum(layer.params for layer in m.layers if ".mlp.fc" in layer.name)
    experts = spec.layers * spec.experts * 3 * spec.hidden * spec.ffn_hidden
    # tensor 8: every expert over 8 GPUs; tensor 4 x expert 4: 2 experts per GPU, each over 4
    assert expert_weights(8, 1) == experts // 8
    assert expert_weights(4, 4) == experts // 16
    assert one["memory_gib_per_stage"][0]["parameters"] > ep["memory_gib_per_stage"][0]["parameters"]
    assert ep["tp_collective_s"]["all_to_all"] > 0 and "all_to_all" not in one["tp_collective_s"]


def test_hybrid_sharding_gathers_inside_the_node_and_all_reduces_the_shards_across():
    # FSDP HYBRID_SHARD on 2 nodes x 8: gathers and reduce-scatters over the node's 8
    # ranks, then the 2 replicas all-reduce their 1/8 gradient shard
    kw = dict(model="gpt3_1.3b", seq=2048, tensor=1, zero_stage=3, global_batch=16, nic=10)
    full = simulate(scenario(**kw)).extra["llm"]
    hybrid = simulate(scenario(**kw, shard_group="node"))
    h = hybrid.extra["llm"]
    p_bytes = 2 * parameter_count(PRESETS["gpt3_1.3b"])
    assert h["data_parallel_bytes_per_gpu"][0] == pytest.approx(
        3 * p_bytes * 7 / 8 + 2 * (p_bytes / 8) * (1 / 2), rel=0.01)
    assert full["data_parallel_bytes_per_gpu"][0] == pytest.approx(3 * p_bytes * 15 / 16, rel=0.01)
    # over a 10 Gb/s network the hybrid job moves far less between nodes
    assert hybrid.iteration_time_s < full["step_time_s"] * 0.8
    # each GPU keeps 1/8 (not 1/16) of the model states
    assert h["memory_gib_per_stage"][0]["model_states"] == pytest.approx(
        2 * full["memory_gib_per_stage"][0]["model_states"], rel=1e-9)


@pytest.mark.parametrize("parallel", [dict(tensor=2, pipeline=2, global_batch=16),
                                      dict(tensor=4, pipeline=4, global_batch=32, nodes=4),
                                      dict(tensor=1, pipeline=2, zero_stage=3, global_batch=16)])
def test_the_representative_step_equals_moving_every_transfer(parallel):
    # every replica's pipeline transfers and every tensor rank's data-parallel group
    # moved, against the representative ones: the same step on a non-blocking fabric
    from simulator.llm.run import simulate_llm

    nodes = parallel.pop("nodes", 2)
    s = scenario(nodes=nodes, nic=400, **parallel)
    fast = simulate_llm(s).iteration_time_s
    every = simulate_llm(s, representative=False).iteration_time_s
    assert fast == pytest.approx(every, rel=1e-9)


@pytest.mark.parametrize("name", ["gpt3_1.3b", "llama2_7b", "mixtral_8x7b"])
def test_a_blocks_parameter_tensors_add_up_to_its_parameters(name):
    from simulator.llm.spec import block_params, block_tensors

    spec = PRESETS[name]
    tensors = block_tensors(spec)
    assert sum(tensors) == block_params(spec)
    # GPT-3: 2 LayerNorms (weight, bias), QKV, out, fc1, fc2 (weight, bias): 12; Llama: 2 RMSNorms + 4 weights
    if name == "gpt3_1.3b":
        assert len(tensors) == 12
    if name == "llama2_7b":
        assert len(tensors) == 6


def test_deepspeed_2021_gathers_every_parameter_tensor_with_the_gpu_idle():
    kw = dict(model="gpt3_1.3b", seq=2048, tensor=1, global_batch=16, nic=100, zero_stage=3)
    block = simulate(scenario(**kw))
    tensor = simulate(scenario(**kw, zero3_gather="parameter"))
    # the same bytes move either way
    assert tensor.extra["llm"]["data_parallel_bytes_per_gpu"][0] == pytest.approx(
        block.extra["llm"]["data_parallel_bytes_per_gpu"][0], rel=1e-9)
    # nothing overlaps a gather: the step is compute + gathers + the last reduce-scatters + the optimizer
    b = tensor.breakdown
    assert tensor.iteration_time_s == pytest.approx(
        b["compute_s"] + b["fsdp_gather_wait_s"] + b["dp_exposed_s"] + b["optimizer_s"], rel=1e-9)
    # against one prefetched gather per chunk, of which only the first is waited for
    assert b["fsdp_gather_wait_s"] > 3 * block.breakdown["fsdp_gather_wait_s"]
    assert tensor.iteration_time_s > block.iteration_time_s + 0.5 * b["fsdp_gather_wait_s"]
    with pytest.raises(ScenarioError, match="zero3_gather: says how ZeRO stage 3 gathers parameters; set zero_stage"):
        scenario(zero_stage=1, zero3_gather="parameter")



def test_deepspeed_2021_gather_host_costs_grow_with_the_group():
    # gpt3_1.3b: 24 blocks x 12 tensors, gathered before forward and before backward, one
    # micro-batch: 576 gathers a step, over a group of 16 ranks
    kw = dict(model="gpt3_1.3b", seq=2048, tensor=1, global_batch=16, nic=100, zero_stage=3,
              zero3_gather="parameter")
    gathers, ranks = 24 * 12 * 2, 16
    free = simulate(scenario(**kw, zero3_gather_view_us=0, zero3_gather_copy_us=0))
    # copy launches shorter than every tensor's collective hide behind it
    hidden = simulate(scenario(**kw, zero3_gather_view_us=0, zero3_gather_copy_us=1))
    assert hidden.iteration_time_s == free.iteration_time_s
    # launches longer than every collective: each gather takes ranks x (view + copy), exactly
    for view, copy in ((0, 100), (10, 100), (10, 200)):
        r = simulate(scenario(**kw, zero3_gather_view_us=view, zero3_gather_copy_us=copy))
        assert r.breakdown["fsdp_gather_wait_s"] == pytest.approx(gathers * ranks * (view + copy) * 1e-6, rel=1e-9)
    # the view loop is paid before the collective starts: never hidden
    viewed = simulate(scenario(**kw, zero3_gather_view_us=10, zero3_gather_copy_us=0))
    assert viewed.iteration_time_s > free.iteration_time_s + 0.5 * gathers * ranks * 10e-6
    # the defaults are the measured and cited host costs
    defaults = scenario(**kw).training.parallelism
    assert (defaults.zero3_gather_view_us, defaults.zero3_gather_copy_us) == (2.5, 5.0)
    with pytest.raises(ScenarioError, match="zero3_gather_copy_us: a host cost of the per-tensor gather"):
        scenario(zero_stage=3, zero3_gather_copy_us=4)


def test_deepspeed_2021_gathers_every_tensor_again_for_the_recomputed_forward():
    # DeepSpeed's ZeRO-3 fetches a module's parameters in a forward hook and releases them
    # after it; recomputation runs the forward again inside backward, so with full
    # recomputation every tensor is gathered three times a step (4 Psi moved against 3 Psi)
    kw = dict(model="gpt3_1.3b", seq=2048, tensor=1, global_batch=16, nic=100, zero_stage=3)
    plain = simulate(scenario(**kw, zero3_gather="parameter"))
    full = simulate(scenario(**kw, zero3_gather="parameter", recompute="full"))
    block_full = simulate(scenario(**kw, recompute="full"))  # FSDP-style: one gather for backward
    moved = [r.extra["llm"]["data_parallel_bytes_per_gpu"][0] for r in (plain, full, block_full)]
    assert moved[1] == pytest.approx(moved[0] * 4 / 3, rel=1e-9)
    assert moved[2] == pytest.approx(moved[0], rel=1e-9)
    # three gather rounds where there were two, the GPU idle during each (not exactly 1.5x the
    # wait: backward's gathers share the links with the previous block's reduce-scatters)
    assert 1.35 * plain.breakdown["fsdp_gather_wait_s"] < full.breakdown["fsdp_gather_wait_s"] \
        <= 1.5 * plain.breakdown["fsdp_gather_wait_s"]
    assert full.iteration_time_s == pytest.approx(
        full.breakdown["compute_s"] + full.breakdown["recompute_s"] + full.breakdown["fsdp_gather_wait_s"]
        + full.breakdown["dp_exposed_s"] + full.breakdown["optimizer_s"], rel=1e-9)


def test_the_timeline_and_trace_show_every_stage_and_micro_batch(capsys, tmp_path):
    r = simulate(scenario(tensor=8, pipeline=2, global_batch=8), record_timeline=True)
    timeline = r.extra["timeline"]
    assert [rank["rank"] for rank in timeline["ranks"]] == [0, 1]
    for rank in timeline["ranks"]:
        ops = [iv for iv in rank["intervals"] if iv["kind"] in ("forward", "backward")]
        for kind in ("forward", "backward"):
            assert sorted(iv["micro_batch"] for iv in ops if iv["kind"] == kind) == list(range(8))
        spans = sorted((iv["start"], iv["end"]) for iv in rank["intervals"])
        assert all(a[1] <= b[0] + 1e-12 for a, b in zip(spans, spans[1:]))  # one GPU does one thing at a time
    # 1F1B on 2 stages: stage 0 runs two forwards before its first backward
    first = [(iv["kind"], iv["micro_batch"]) for iv in timeline["ranks"][0]["intervals"][:3]]
    assert first == [("forward", 0), ("forward", 1), ("backward", 0)]
    assert max(iv["end"] for rank in timeline["ranks"] for iv in rank["intervals"]) == pytest.approx(
        r.iteration_time_s, rel=1e-9)
    assert any(flow["label"] == "pp act" for flow in timeline["flows"])
    assert r.flows == len(timeline["flows"]) > 0  # the result counts the step's flows
    path = tmp_path / "trace.json"
    code, _, err = run_main(capsys, "simulate", "scenarios/llm_llama2_7b_32xa100.yaml", "-q", "--trace", str(path))
    assert code == 0, err
    names = {e["name"] for e in json.loads(path.read_text())["traceEvents"] if e.get("ph") == "X"}
    assert {"forward mb 0", "backward mb 0"} <= names


def test_the_rank_order_decides_which_groups_cross_the_network():
    from simulator.llm.parallel import check_layout, rank
    from simulator.llm.run import simulate_llm
    from simulator.llm.spec import get_spec

    kw = dict(tensor=4, pipeline=2, global_batch=16, nic=10)  # 2 nodes of 8: data 2
    default, stages_inside = scenario(**kw), scenario(**kw, order="tp-cp-pp-dp")
    layouts = [check_layout(s.training.parallelism, get_spec("llama2_7b"), total_gpus=16, seq_len=2048)
               for s in (default, stages_inside)]
    # Megatron's order puts stage 1 eight ranks on (the other node); tp-cp-pp-dp four (this node)
    assert [rank(layout, stage=1) for layout in layouts] == [8, 4]
    assert [rank(layout, dp=1) for layout in layouts] == [4, 8]
    a, b = simulate(default), simulate(stages_inside)
    # at 10 Gb/s: the order that sends the data-parallel reduce and gather over the NIC waits for them,
    # the one that sends the activations over it waits in the pipeline instead
    assert b.breakdown["dp_exposed_s"] + b.breakdown["param_gather_s"] > \
        10 * (a.breakdown["dp_exposed_s"] + a.breakdown["param_gather_s"])
    assert a.breakdown["pipeline_wait_s"] > b.breakdown["pipeline_wait_s"]
    # the representative transfers stand for every replica's in either order (non-blocking fabric)
    for s in (default, stages_inside):
        assert simulate_llm(s, representative=False).iteration_time_s == pytest.approx(
            simulate_llm(s).iteration_time_s, rel=1e-12)
    with pytest.raises(ScenarioError, match="training.parallelism.order: not an order of tp, cp, dp and pp"):
        scenario(order="tp-dp-pp")


def test_expert_all_to_alls_are_counted_twice_forward_and_twice_backward():
    def run(recompute):
        return simulate(load_scenario({
            "cluster": {"nodes": 1, "gpus_per_node": 8, "gpu": "H100-SXM5-80GB", "server": {"layout": "nvswitch"}},
            "workload": {"model": "mixtral_8x7b", "precision": "bf16", "sequence_length": 4096,
                         "check_memory": False},
            "training": {"parallelism": {"global_batch": 16, "expert": 8, "zero_stage": 3, "recompute": recompute}}}))

    plain, full = run("none"), run("full")
    all_to_all = plain.extra["llm"]["tp_collective_s"]["all_to_all"]
    blocks, micro_batches = 32, 2  # 16 sequences over 8 data ranks, one per micro-batch
    # dispatch + combine forward, their gradients backward; full recomputation runs the forward's again
    assert plain.breakdown["ep_communication_s"] == pytest.approx(4 * blocks * micro_batches * all_to_all, rel=1e-9)
    assert full.breakdown["ep_communication_s"] == pytest.approx(6 * blocks * micro_batches * all_to_all, rel=1e-9)
    assert plain.breakdown["tp_communication_s"] == plain.breakdown["cp_communication_s"] == 0.0
