"""Sweep files: validation names the file and field; expansion is exact and seeded."""

from __future__ import annotations

import re

import pytest

from simulator import ScenarioError
from simulator.sweep import expand, load_sweep
from simulator.sweep.expand import replication_seed

from ..conftest import REPO_ROOT
from .conftest import small_sweep


def runs_of(sweep: dict):
    spec, root, source = load_sweep(sweep)
    return expand(spec, root, source)


def test_grid_is_the_cartesian_product_first_axis_outermost():
    runs = runs_of(small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 3], "workload.batch_per_gpu": [16, 32]}}))
    assert [(r.values["cluster.nodes"], r.values["workload.batch_per_gpu"]) for r in runs] == [
        (1, 16), (1, 32), (2, 16), (2, 32), (3, 16), (3, 32),
    ]
    assert [r.run for r in runs] == list(range(6))
    assert runs[3].scenario.cluster.nodes == 2 and runs[3].scenario.workload.batch_per_gpu == 32


def test_zip_walks_lists_in_lockstep_and_crosses_the_grid():
    sweep = small_sweep(axes={
        "grid": {"cluster.nodes": [1, 2]},
        "zip": {"training.strategy": ["ring_allreduce", "parameter_server"],
                "training.parameter_servers.count": [1, 4]},
    })
    runs = runs_of(sweep)
    assert len(runs) == 4
    assert [(r.scenario.training.strategy, r.scenario.training.parameter_servers.count) for r in runs[:2]] == [
        ("ring_allreduce", 1), ("parameter_server", 4),
    ]


def test_random_samples_are_seeded_within_bounds_and_reproducible():
    sweep = small_sweep(axes={"random": {"samples": 50, "params": {
        "workload.batch_per_gpu": {"randint": [16, 20]},
        "cluster.nic.bandwidth_gbps": {"loguniform": [10, 100]},
        "workload.precision": ["fp32", "fp16"],
    }}}, seed=3)
    a, b = runs_of(sweep), runs_of(sweep)
    assert [r.values for r in a] == [r.values for r in b]
    batches = {r.values["workload.batch_per_gpu"] for r in a}
    assert batches == {16, 17, 18, 19, 20}  # inclusive bounds, all hit in 50 draws
    assert all(10 <= r.values["cluster.nic.bandwidth_gbps"] < 100 for r in a)
    assert {r.values["workload.precision"] for r in a} == {"fp32", "fp16"}
    other = runs_of({**sweep, "seed": 4})
    assert [r.values for r in other] != [r.values for r in a]


def test_replication_seeds_are_distinct_and_shared_across_points():
    runs = runs_of(small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 4]}}, replications=3, seed=11))
    assert len(runs) == 9
    seeds = [[r.seed for r in runs if r.point == p] for p in range(3)]
    assert seeds[0] == seeds[1] == seeds[2]  # common random numbers across designs
    assert len(set(seeds[0])) == 3
    assert seeds[0] == [replication_seed(11, k) for k in range(3)]
    assert all(r.scenario.simulation.seed == r.seed for r in runs)


def test_adding_an_axis_value_keeps_the_other_runs_scenarios():
    before = {r.scenario_hash for r in runs_of(small_sweep(axes={"grid": {"cluster.nodes": [1, 2]}}))}
    after = {r.scenario_hash for r in runs_of(small_sweep(axes={"grid": {"cluster.nodes": [1, 2, 3]}}))}
    assert before < after and len(after - before) == 1


def test_base_path_is_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bases").mkdir()
    (tmp_path / "sub" / "bases" / "base.yaml").write_text((REPO_ROOT / "scenarios" / "ps_4x4_10gbe.yaml").read_text())
    sweep = tmp_path / "sub" / "s.yaml"
    sweep.write_text("base: bases/base.yaml\nset: [cluster.nodes=2]\n"
                     "axes:\n  grid:\n    training.parameter_servers.count: [1, 2]\n")
    runs = runs_of(sweep)
    assert [r.scenario.training.parameter_servers.count for r in runs] == [1, 2]
    assert all(r.scenario.workload.model == "vgg16" and r.scenario.cluster.nodes == 2 for r in runs)


def test_an_invalid_point_is_a_run_with_its_error():
    runs = runs_of(small_sweep(axes={"grid": {"cluster.gpus_per_node": [2, 3]}},
                               set=["cluster.server.pcie_switches=2"]))
    assert runs[0].error is None and runs[0].scenario is not None
    assert runs[1].scenario is None and "cannot be spread evenly" in runs[1].error


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("axes:\n  grid:\n    cluster.nodez: [1, 2]\n", "axes: cluster.nodez: unknown scenario field 'cluster.nodez'"),
        ("axes:\n  grid:\n    cluster.nodes.x: [1]\n", "cluster.nodes is a value, not a section"),
        ("axes:\n  grid:\n    cluster.nodes: []\n", "grid.cluster.nodes: needs at least one value"),
        ("axes:\n  zip:\n    cluster.nodes: [1, 2]\n    workload.batch_per_gpu: [8]\n", "equal lengths"),
        ("axes:\n  random:\n    samples: 2\n    params:\n      cluster.nodes: {randint: [4, 1]}\n", "low 4 > high 1"),
        ("axes:\n  random:\n    samples: 2\n    params:\n      cluster.nodes: {uniform: [1, 2], randint: [1, 2]}\n",
         "exactly one of"),
        ("replications: 0\n", "replications: Input should be greater than or equal to 1"),
        ("axis: {}\n", "axis: unknown key"),
        ("base: missing.yaml\n", "base: "),
        ("set: [cluster.nodes=0]\n", "cluster.nodes"),
        ("axes: [\n", "malformed YAML"),
    ],
)
def test_bad_sweep_files_name_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=re.escape(message)) as info:
        runs_of(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_example_sweep_files_expand():
    files = sorted((REPO_ROOT / "scenarios" / "sweeps").glob("*.yaml"))
    assert len(files) >= 2
    counts = {f.name: len(runs_of(f)) for f in files}
    assert counts["ring_vs_ps.yaml"] == 2 * 3 * 4 * 4
    assert counts["random_batch_nic.yaml"] == 2 * 10 * 2


def test_an_edited_model_file_is_a_different_run_to_the_cache(tmp_path):
    """A run's hash (the result cache's key and --resume's identity) covers the contents
    of the files it reads: editing the model file must not serve the old result."""
    models = REPO_ROOT / "scenarios" / "models"
    (tmp_path / "tiny_resnet.yml").write_text((models / "tiny_resnet.yml").read_text())
    (tmp_path / "base.yaml").write_text((models / "tiny_resnet_4x2.yaml").read_text())
    sweep = tmp_path / "s.yaml"
    sweep.write_text("base: base.yaml\naxes:\n  grid:\n    cluster.nodes: [1, 2]\n")
    before = runs_of(sweep)
    assert [r.error for r in before] == [None, None]
    assert runs_of(sweep)[0].cache_key == before[0].cache_key  # same files: same key
    text = (tmp_path / "tiny_resnet.yml").read_text()
    (tmp_path / "tiny_resnet.yml").write_text(text + "\n# edited: a comment changes the bytes\n")
    after = runs_of(sweep)
    assert [r.cache_key for r in after] != [r.cache_key for r in before]


def test_a_run_without_files_keeps_its_hash():
    """Scenarios that read no file hash as before (existing caches and journals stay valid)."""
    import hashlib

    from simulator.sweep.expand import canonical

    run = runs_of(small_sweep())[0]
    assert run.scenario is not None
    assert run.scenario.calibration is None and run.scenario.workload.model_file is None
    assert run.scenario_hash == hashlib.sha256(canonical(run.scenario.model_dump(mode="json")).encode()).hexdigest()


def test_an_axis_over_model_files_resolves_them_next_to_the_sweep_file(tmp_path, monkeypatch):
    """Like an axis over ``calibration``: the values are paths relative to the sweep
    file (not the working directory), and each point's model is the one its file names."""
    models = REPO_ROOT / "scenarios" / "models"
    text = (models / "tiny_resnet.yml").read_text()
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "b.yml").write_text(text.replace("name: tiny_resnet", "name: tiny_resnet_b", 1))
    (tmp_path / "base.yaml").write_text((models / "tiny_resnet_4x2.yaml").read_text().replace(
        "model_file: tiny_resnet.yml", "model_file: a.yml"))
    sweep = tmp_path / "s.yaml"
    sweep.write_text("base: base.yaml\naxes:\n  grid:\n    workload.model_file: [a.yml, b.yml]\n")
    monkeypatch.chdir(REPO_ROOT)  # elsewhere than the sweep file
    runs = runs_of(sweep)
    assert [r.error for r in runs] == [None, None]
    assert [r.scenario.workload.model for r in runs] == ["tiny_resnet", "tiny_resnet_b"]
    assert [r.scenario.workload.model_file for r in runs] == [str(tmp_path / "a.yml"), str(tmp_path / "b.yml")]
