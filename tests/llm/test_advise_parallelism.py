"""`clustersim advise parallelism`: the fastest layout that fits, by closed-form pruning
then simulation."""

from __future__ import annotations

import json

import yaml

from simulator import load_scenario
from simulator.llm.search import advise_parallelism, candidates

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


def test_cli_prints_and_writes_strict_json(capsys, tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(DATA))
    code, out, err = run_main(capsys, "advise", "parallelism", str(path), "--simulate", "2", "--json", "-")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["best"]["step_s"] > 0 and len(answer["simulated"]) == 2
    code, out, err = run_main(capsys, "advise", "parallelism", str(path), "--set", "training.parallelism=null")
    assert code == 2 and "advise parallelism needs" in err
