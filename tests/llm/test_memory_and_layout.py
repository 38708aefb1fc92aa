"""ZeRO model states and Korthikanti activations per GPU; layout checks naming fields."""

from __future__ import annotations

import pytest
import yaml

from simulator import load_scenario
from simulator.llm.memory import block_activation_bytes, model_state_bytes
from simulator.llm.parallel import Layout, ParallelismSpec, check_layout
from simulator.llm.spec import PRESETS

from ..test_cli import run_main


@pytest.mark.parametrize(("stage", "gigabytes"), [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_model_states_are_the_zero_papers_figure_1(stage, gigabytes):
    # Rajbhandari et al. (SC'20), Figure 1: Psi = 7.5B, N_d = 64, K = 12
    assert model_state_bytes(7.5e9, zero_stage=stage, shards=64) / 1e9 == pytest.approx(gigabytes, abs=0.06)


def test_expert_states_shard_over_the_expert_data_parallel_group():
    from dataclasses import replace

    from simulator.llm.memory import stage_memory

    # 64 data ranks, experts spread over 8 of them: an expert's states shard over 64 / 8 = 8 replicas
    spec = PRESETS["mixtral_8x7b"]
    moe = replace(layout(), data=64, expert=8)
    dense, experts = 1.5e9, 5.6e9
    for stage in (1, 2, 3):
        use = stage_memory(spec, moe, params=dense + experts, expert_params=experts, in_flight_chunks=1, blocks=1,
                           last=False, zero_stage=stage, recompute="full", flash_attention=True)
        assert use.model_states == pytest.approx(model_state_bytes(dense, zero_stage=stage, shards=64)
                                                 + model_state_bytes(experts, zero_stage=stage, shards=8), rel=1e-12)


def layout(t: int = 1, sp: bool = False, b: int = 1, s: int = 2048) -> Layout:
    return Layout(tensor=t, pipeline=1, data=1, context=1, expert=1, micro_batch=b, micro_batches=1,
                  virtual_stages=1, chunk_layers=(1,), seq_len=s, sequence_parallel=sp)


def test_activations_are_korthikanti_table_2():
    spec = PRESETS["gpt3_175b"]  # h = 12288, a = 96
    s, b, h, a = 2048, 1, 12288, 96
    sbh = s * b * h
    kw = {"flash_attention": False}
    assert block_activation_bytes(spec, layout(), recompute="none", **kw) == pytest.approx(sbh * (34 + 5 * a * s / h))
    assert block_activation_bytes(spec, layout(8), recompute="none", **kw) == pytest.approx(
        sbh * (10 + 24 / 8 + 5 * a * s / (h * 8)))
    assert block_activation_bytes(spec, layout(8, True), recompute="none", **kw) == pytest.approx(
        sbh * (34 + 5 * a * s / h) / 8)
    assert block_activation_bytes(spec, layout(8, True), recompute="selective", **kw) == pytest.approx(sbh * 34 / 8)
    assert block_activation_bytes(spec, layout(8, True), recompute="full", **kw) == pytest.approx(2 * sbh / 8)
    # flash attention keeps no score matrix: as selective recomputation
    assert block_activation_bytes(spec, layout(8, True), recompute="none", flash_attention=True) == pytest.approx(
        sbh * 34 / 8)


def P(**kw) -> ParallelismSpec:  # noqa: N802
    return ParallelismSpec.model_validate({"global_batch": 64, **kw})


@pytest.mark.parametrize(("kw", "gpus", "field", "words"), [
    ({"tensor": 3}, 24, "tensor", "heads"),
    ({"pipeline": 33}, 33, "pipeline", "more than the 32 layers"),
    ({"tensor": 2, "pipeline": 2}, 10, "tensor", "does not divide the 10 GPUs"),
    ({"tensor": 2, "data": 3}, 16, "data", "is not the 16 GPUs"),
    ({"global_batch": 65}, 8, "global_batch", "multiple of micro_batch"),
    ({"pipeline": 4, "schedule": "interleaved", "virtual_stages": 2, "global_batch": 6}, 4, "global_batch",
     "multiples of"),
    ({"expert": 2}, 8, "expert", "no experts"),
])
def test_a_layout_that_does_not_divide_names_the_field(kw, gpus, field, words):
    with pytest.raises(ValueError, match=rf"training\.parallelism\.{field}: .*{words}"):
        check_layout(P(**kw), PRESETS["llama2_7b"], total_gpus=gpus, seq_len=4096)


def test_interleaving_needs_virtual_stages():
    with pytest.raises(ValueError, match="virtual_stages"):
        P(schedule="interleaved")


BASE = {"cluster": {"nodes": 1, "gpus_per_node": 8, "gpu": "A100-SXM4-80GB", "server": {"layout": "nvswitch"}},
        "workload": {"model": "llama2_7b", "precision": "bf16", "sequence_length": 2048},
        "training": {"parallelism": {"tensor": 8, "global_batch": 8}}}


def test_a_good_layout_loads():
    s = load_scenario(BASE)
    assert s.training.parallelism.tensor == 8


@pytest.mark.parametrize(("override", "message"), [
    (["training.parallelism.tensor=3"], "training.parallelism.tensor: 3 does not divide the 32 attention heads"),
    (["training.parallelism.tensor=1", "training.parallelism.pipeline=33"],
     "training.parallelism.pipeline: 33 stages x 1 virtual stages are more than the 32 layers"),
    (["workload.model=gpt2", "workload.sequence_length=1024"],
     "training.parallelism: workload.model 'gpt2' is not a transformer"),
    (["training.parallelism.tensor=0"], "training.parallelism.tensor"),
    (["training.parallelism.tensor=4", "training.parallelism.global_batch=9"],
     "training.parallelism.global_batch: 9 is not a multiple of micro_batch 1 x data 2"),
])
def test_bad_parallel_configurations_exit_2_naming_the_field(capsys, tmp_path, override, message):
    path = tmp_path / "llm.yaml"
    path.write_text(yaml.safe_dump(BASE))
    sets = [arg for o in override for arg in ("--set", o)]
    code, out, err = run_main(capsys, "simulate", str(path), *sets)
    assert code == 2
    assert message in " ".join(err.split()) and "Traceback" not in err + out
    assert str(path) in err


def test_uneven_pipelines_take_the_deficit_from_the_ends():
    from simulator.llm.parallel import split_layers

    assert split_layers(32, 4) == (8, 8, 8, 8)
    assert split_layers(126, 16) == (7,) + (8,) * 14 + (7,)  # Llama 3 405B on 16 stages
    assert split_layers(70, 12) == (5,) + (6,) * 10 + (5,)  # BLOOM: 70 blocks + 2 embeddings on 12
    assert sum(split_layers(78, 12)) == 78 and max(split_layers(78, 12)) - min(split_layers(78, 12)) == 1
