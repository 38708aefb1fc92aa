"""The server-gear rows (a vendor's tf_cnn_benchmarks runs, 2026-12-05): the multi-GPU
rows and the one-GPU rows come from the same tables, and the scenario files say what
``--xla_compile`` does."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from simulator.validation.cases import read_cases
from simulator.validation.run import case_scenario
from simulator.zoo import get_model

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "scenarios" / "validation" / "training_cases.csv"
ONE_GPU = ROOT / "benchmarks" / "data" / "server_gear_one_gpu.csv"
ZOO_NAME = {"inception3": "inception_v3"}
GPU_NAME = {"RTX 2080Ti": "RTX-2080Ti", "RTX 8000": "Quadro-RTX-8000"}


@pytest.fixture(scope="module")
def rows():
    cases, errors = read_cases(TRAINING)
    assert not errors
    return [c for c in cases if c.source == "server-gear"]


def test_every_multi_gpu_row_takes_its_one_gpu_baseline_from_the_same_table(rows):
    with ONE_GPU.open(encoding="utf-8") as fh:
        one = {(ZOO_NAME.get(r["model"], r["model"]), GPU_NAME[r["gpu"]], int(r["batch_per_gpu"])): float(r["value"])
               for r in csv.DictReader(fh)}
    assert len(one) == 8 and len(rows) == 24
    for case in rows:
        assert case.baseline_throughput_samples_per_s == one[(case.model, case.gpu, case.batch_per_gpu)], case.case_id
    # spot checks against the pages' tables
    by_id = {c.case_id: c.value for c in rows}
    assert by_id["server-gear-resnet50-RTX-2080Ti-amp-b128-1x8"] == 4898.68
    assert by_id["server-gear-vgg16-Quadro-RTX-8000-amp-b512-1x4"] == 2397.81


def test_xla_compile_releases_every_gradient_when_backward_ends(rows):
    for case in rows:
        scenario, _ = case_scenario(case, TRAINING.parent)
        assert scenario.workload.graph_compiler == "xla"
        assert scenario.training.xla_release_points == 1
        assert scenario.training.gradient_precision == "compute"  # fp16 on the wire under amp
        # --gradient_repacking=2: two packs of the fp16 gradients
        total = get_model(scenario.workload.model).total_params * 2
        assert 1.99 < total / (scenario.training.bucket_size_mib * 2**20) < 2.01
