"""`clustersim advise parallelism`: the fastest layout that fits, by closed-form pruning
then simulation."""

from __future__ import annotations

import json

import pytest
import yaml

from simulator import load_scenario, simulate
from simulator.llm.search import advise_parallelism, candidates
from simulator.scenario import Scenario

from ..test_cli import run_main

DATA = {"cluster": {"nodes": 2, "gpus_per_node": 8, "gpu": "A100-SXM4-40GB", "server": {"layout": "nvswitch"},
                    "nic": {"bandwidth_gbps": 200}},
        "workload": {"model": "llama2_13b", "precision": "bf16", "sequence_length": 4096},
        "training": {"parallelism": {"global_batch": 64}}}


def test_every_kept_layout_fits_and_the_best_is_the_fastest_simulated():
    scenario = load_scenario(DATA)
    found, considered = candidates(scenario)
    assert 0 < len(found) < considered  # some layouts do not fit a 40 GB GPU: 13B with Adam is 208 GB of states
    assert all(c.memory_gib <= 40 for c in found)
    assert [c.bound_s for c in found] == sorted(c.bound_s for c in found)
    advice = advise_parallelism(scenario, simulate=4)
    steps = [c.step_s for c in advice.simulated]
    assert advice.best.step_s == min(steps) and len(steps) == 4
    # the bound is a lower bound of the simulated step
    assert all(c.step_s >= c.bound_s * (1 - 1e-9) for c in advice.simulated)
    # one GPU's whole model without ZeRO-3 (4 + 12/16 bytes x 13B = 62 GB) cannot fit 40 GB: never proposed
    assert not any(c.parallelism["tensor"] == 1 and c.parallelism["pipeline"] == 1 and c.parallelism["zero_stage"] == 1
                   for c in found)


def _simulated_memory_gib(scenario, parallelism):
    data = scenario.model_dump()
    data["training"]["parallelism"] = parallelism
    data["workload"]["check_memory"] = False
    stages = simulate(Scenario.model_validate(data)).extra["llm"]["memory_gib_per_stage"]
    return max(stage["total"] for stage in stages)


def _job(nodes, gpu, nic_gbps, model, seq, global_batch):
    return load_scenario({
        "cluster": {"nodes": nodes, "gpus_per_node": 8, "gpu": gpu, "server": {"layout": "nvswitch"},
                    "nic": {"bandwidth_gbps": nic_gbps}},
        "workload": {"model": model, "precision": "bf16", "sequence_length": seq},
        "training": {"parallelism": {"global_batch": global_batch}}})


def test_moe_layouts_spread_the_experts_and_the_closed_form_memory_matches_the_built_stages():
    scenario = _job(4, "H100-SXM5-80GB", 3200, "mixtral_8x7b", 4096, 128)
    found, _ = candidates(scenario)
    by_expert: dict[int, dict[int, object]] = {1: {}, 3: {}}
    for c in found:
        p = c.parallelism
        if (p["tensor"], p["pipeline"], p["context"], p["micro_batch"], p["recompute"]) == (1, 1, 1, 1, "none"):
            by_expert[p["zero_stage"]][p["expert"]] = c
    # 8 experts of 46.7B parameters over 32 GPUs. ZeRO-1: each GPU keeps the weights and gradients
    # of its experts and a 1/(32/expert) share of their optimizer states (their own data-parallel
    # group): only one expert per GPU fits 80 GB
    assert set(by_expert[1]) == {8}
    # ZeRO-3 shards everything: an expert's states over its 32/expert replicas, 1/expert of the
    # experts per GPU - the same bytes whatever the expert degree
    zero3 = [c.memory_gib for c in by_expert[3].values()]
    assert len(zero3) == 4 and max(zero3) == pytest.approx(min(zero3), rel=1e-12)
    for c in [by_expert[1][8], by_expert[3][4]] + [c for c in found if c.parallelism["pipeline"] > 1][:3]:
        assert c.memory_gib == pytest.approx(_simulated_memory_gib(scenario, c.parallelism), rel=0.03)
    assert advise_parallelism(scenario, simulate=2).best.parallelism["expert"] > 1


def test_long_sequences_may_take_context_parallelism():
    scenario = _job(2, "A100-SXM4-80GB", 1600, "llama2_7b", 65536, 16)
    found, _ = candidates(scenario)
    key = ("tensor", "pipeline", "micro_batch", "recompute", "zero_stage", "schedule")
    by_context = {}
    for c in found:
        by_context.setdefault(tuple(c.parallelism[k] for k in key), {})[c.parallelism["context"]] = c
    pairs = [(v[1], v[2]) for v in by_context.values() if 1 in v and 2 in v]
    assert pairs
    for one, two in pairs:  # half the tokens per GPU: less activation memory
        assert two.memory_gib < one.memory_gib
    # ring attention needs 2 x context chunks of the sequence: 16 is the largest searched
    assert max(c.parallelism["context"] for c in found) == 16
    c = next(c for c in found if c.parallelism["context"] > 1)
    assert c.memory_gib == pytest.approx(_simulated_memory_gib(scenario, c.parallelism), rel=0.03)


def test_cli_prints_and_writes_strict_json(capsys, tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(DATA))
    code, out, err = run_main(capsys, "advise", "parallelism", str(path), "--simulate", "2", "--json", "-")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["best"]["step_s"] > 0 and len(answer["simulated"]) == 2
    code, out, err = run_main(capsys, "advise", "parallelism", str(path), "--set", "training.parallelism=null")
    assert code == 2 and "advise parallelism needs" in err
