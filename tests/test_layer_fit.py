"""Specifies the fit of the layer-time model's device parameters on a profile's timed
layers (``simulator/layer_fit.py``) and its use for the layers a profile did not time
(``simulator/calibrated.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator import load_scenario
from simulator.calibrated_layers import ProfiledDevice
from simulator.compute import roofline_costs
from simulator.engine import build
from simulator.layer_fit import GRIDS, MIN_TIMED_PASSES, TimedLayers, fit_layer_model, objective
from simulator.profile import load_profile
from simulator.zoo import get_model

PROFILES = Path(__file__).resolve().parents[1] / "calibration" / "profiles"
DEVICE = ProfiledDevice("test device", 200e9, 50.0)


def estimate(model, batch, ce, me, oh):
    costs = roofline_costs(model, DEVICE, precision="fp32", batch=batch, compute_efficiency=ce,
                           memory_efficiency=me, layer_overhead_s=oh, optimizer="momentum")
    return costs.forward_s, costs.backward_s


def synthetic(model_name: str, batches: tuple[int, ...], truth: tuple[float, float, float]) -> list[TimedLayers]:
    model = get_model(model_name)
    return [TimedLayers(model, b, *estimate(model, b, *truth)) for b in batches]


def test_the_fit_recovers_the_parameters_that_made_the_times():
    # times the model itself produced at grid values: the fit must find them, error 0
    truth = (float(GRIDS["compute_efficiency"][12]), float(GRIDS["memory_efficiency"][9]),
             float(GRIDS["layer_overhead_s"][20]))
    data = synthetic("resnet18", (2, 8), truth) + synthetic("alexnet", (4,), truth)
    fit = fit_layer_model(data, estimate, (1.0, 1.0, 20e-6))
    assert fit is not None
    assert (fit.compute_efficiency, fit.memory_efficiency, fit.layer_overhead_s) == pytest.approx(truth, rel=1e-12)
    assert fit.error == pytest.approx(0.0, abs=1e-9)
    assert fit.start_error > 0.1
    assert fit.models == ("resnet18", "alexnet")
    # every layer forward and backward, but the residual adds' backward (it launches nothing)
    adds = sum(layer.kind == "add" for layer in get_model("resnet18").layers)
    layers = sum(len(get_model(m).layers) * n for m, n in (("resnet18", 2), ("alexnet", 1)))
    assert adds == 8 and fit.passes == 2 * layers - 2 * adds


def test_the_objective_weighs_layers_by_their_measured_time():
    model = get_model("alexnet")
    f, b = estimate(model, 4, 0.5, 0.5, 1e-5)
    data = [TimedLayers(model, 4, f, b)]
    assert objective(data, estimate, (0.5, 0.5, 1e-5)) == pytest.approx(0.0, abs=1e-12)
    # every layer twice too fast: |log 2| whatever the weights
    doubled = [TimedLayers(model, 4, 2 * f, 2 * b)]
    assert objective(doubled, estimate, (0.5, 0.5, 1e-5)) == pytest.approx(np.log(2), rel=1e-9)


def test_held_parameters_stay_and_too_few_layers_give_no_fit():
    truth = (0.5, 0.3, 1e-5)
    data = synthetic("resnet18", (2,), truth)
    held = fit_layer_model(data, estimate, (0.5, 1.0, 20e-6), fitted=("memory_efficiency",))
    assert held is not None
    assert held.compute_efficiency == 0.5 and held.layer_overhead_s == 20e-6
    model = get_model("alexnet")
    f, b = estimate(model, 2, *truth)
    few_f, few_b = np.full_like(f, np.nan), np.full_like(b, np.nan)
    few_f[:3], few_b[:MIN_TIMED_PASSES - 4] = f[:3], b[:MIN_TIMED_PASSES - 4]  # one pass short
    assert fit_layer_model([TimedLayers(model, 2, few_f, few_b)], estimate, (1.0, 1.0, 0.0)) is None


def _calibrated(model: str, **workload):
    scenario = load_scenario({"cluster": {"nodes": 1, "gpus_per_node": 1},
                              "workload": {"model": model, "precision": "fp32", "batch_per_gpu": 8, **workload},
                              "calibration": str(PROFILES / "cpu-intel-xeon-2core.json")}, [])
    return build(scenario)


def test_a_model_the_profile_did_not_time_is_estimated_with_parameters_fitted_on_the_timed_ones():
    built = _calibrated("vgg16")
    report = built.calibration.report
    assert report["layers_calibrated"] == 0
    assert "fitted on" in report["untimed_layers"]
    assert "resnet18, alexnet, resnet34, resnet50" in report["untimed_layers"]
    # the unfitted estimate: efficiency 1 on the profile's matmul rate and copy bandwidth
    profile = load_profile(PROFILES / "cpu-intel-xeon-2core.json")
    device = ProfiledDevice("cpu", profile.efficiency.fit("matmul").peak_flops_per_s,
                            profile.efficiency.memory_bandwidth_bytes_per_s / 1e9)
    plain = roofline_costs(get_model("vgg16"), device, precision="fp32", batch=8, compute_efficiency=1.0,
                           memory_efficiency=1.0, layer_overhead_s=20e-6, optimizer="momentum")
    assert built.costs.total_s != pytest.approx(plain.total_s, rel=0.05)


def test_a_fully_timed_model_is_not_refitted():
    built = _calibrated("resnet18")
    assert "untimed_layers" not in built.calibration.report
    assert built.calibration.report["layers_estimated"] == 0


def test_a_fit_on_the_edge_of_its_range_says_so(tmp_path):
    import json

    # a CPU's layer times claimed for a V100: nothing in range explains them
    data = json.loads((PROFILES / "cpu-intel-xeon-2core.json").read_text())
    data["environment"].update(device_kind="cuda", catalog_gpu="V100-SXM2-16GB", device_name="Tesla V100-SXM2-16GB")
    path = tmp_path / "claimed-v100.json"
    path.write_text(json.dumps(data))
    scenario = load_scenario({"calibration": str(path),
                              "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "V100-SXM2-16GB"},
                              "workload": {"model": "vgg16", "batch_per_gpu": 8, "precision": "fp32",
                                           "compute_efficiency": 0.7}}, [])
    note = build(scenario).calibration.report["untimed_layers"]
    assert "compute efficiency 0.7 (scenario)" in note  # set in the scenario: held
    assert "the edge of the search range" in note


def test_a_scenario_that_sets_every_parameter_keeps_them(tmp_path):
    import json

    data = json.loads((PROFILES / "cpu-intel-xeon-2core.json").read_text())
    data["environment"].update(device_kind="cuda", catalog_gpu="V100-SXM2-16GB", device_name="Tesla V100-SXM2-16GB")
    path = tmp_path / "claimed-v100.json"
    path.write_text(json.dumps(data))
    workload = {"model": "vgg16", "batch_per_gpu": 8, "precision": "fp32", "compute_efficiency": 0.7,
                "memory_efficiency": 0.7, "layer_overhead_us": 10}
    scenario = load_scenario({"calibration": str(path), "workload": workload,
                              "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "V100-SXM2-16GB"}}, [])
    built = build(scenario)
    assert "it sets all three" in built.calibration.report["untimed_layers"]
    plain = build(load_scenario({"workload": workload,
                                 "cluster": {"nodes": 1, "gpus_per_node": 1, "gpu": "V100-SXM2-16GB"}}, []))
    assert built.costs.total_s == pytest.approx(plain.costs.total_s, rel=1e-12)
