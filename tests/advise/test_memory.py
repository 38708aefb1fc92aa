"""Memory model and conv algorithms: closed forms, each asserting a number."""

from pathlib import Path

import pytest

from simulator import algorithms, catalog, load_scenario, memory, simulate, zoo
from simulator.cli import main
from simulator.errors import ScenarioError

GIB = memory.GIB
V100 = catalog.get_gpu("V100-PCIe-16GB")


def test_momentum_fp32_keeps_three_fp32_words_per_parameter():
    m = zoo.get_model("resnet50")
    e = memory.estimate(m, V100, batch=1, precision="fp32", optimizer="momentum")
    assert e.parameters + e.gradients + e.optimizer == 3 * 4 * m.total_params
    adam = memory.estimate(m, V100, batch=1, precision="fp32", optimizer="adam")
    assert adam.optimizer == 2 * 4 * m.total_params
    assert memory.estimate(m, V100, batch=1, optimizer="sgd").optimizer == 0


def test_activations_are_linear_in_the_batch():
    m = zoo.get_model("resnet50")
    a = [memory.estimate(m, V100, batch=b).activations for b in (32, 64, 128)]
    assert a[1] == 2 * a[0] and a[2] == 4 * a[0]


def test_resnet50_fp32_batch_256_activations_are_21_4_gib():
    e = memory.estimate(zoo.get_model("resnet50"), V100, batch=256, precision="fp32")
    assert e.activations / GIB == pytest.approx(21.4, abs=0.05)
    assert e.total / GIB == pytest.approx(23.35, abs=0.05) and not e.fits
    assert memory.estimate(zoo.get_model("resnet50"), V100, batch=64).total / GIB == pytest.approx(6.05, abs=0.05)


def test_amp_halves_activations():
    m = zoo.get_model("vgg16")
    assert memory.estimate(m, V100, batch=32, precision="amp").activations * 2 == pytest.approx(
        memory.estimate(m, V100, batch=32, precision="fp32").activations, rel=0.01)  # dropout masks stay 1 byte


def test_every_shipped_scenario_fits():
    files = sorted(Path(__file__).parents[2].joinpath("scenarios").glob("*.yaml"))
    assert len(files) >= 3  # the example scenarios were found
    for path in files:
        scenario = load_scenario(path)
        if scenario.training.parallelism is None:
            assert memory.estimate_scenario(scenario).fits, path
        else:  # a transformer-parallel step: its own memory model, checked when it runs
            llm = simulate(scenario).extra["llm"]
            assert max(stage["total"] for stage in llm["memory_gib_per_stage"]) < 80, path


def test_simulate_refuses_with_the_numbers_and_the_opt_out_works():
    s = load_scenario(None, ["workload.model=resnet50", "workload.batch_per_gpu=256"])
    with pytest.raises(ScenarioError,
                       match=r"batch 256 of resnet50 in fp32 needs 23.4 GiB; the V100-PCIe-16GB has 16 GiB"):
        simulate(s)
    ok = load_scenario(None, ["workload.model=resnet50", "workload.batch_per_gpu=256", "workload.check_memory=false"])
    assert simulate(ok, with_baseline=False).batch_per_gpu == 256


def test_cli_exits_2_with_the_numbers(capsys):
    with pytest.raises(SystemExit, match=r"^2$") as exc:  # a SystemExit's message is its code
        main(["simulate", "--set", "workload.model=resnet50", "--set", "workload.batch_per_gpu=256"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: <default scenario>: workload.batch_per_gpu: "
                          "batch 256 of resnet50 in fp32 needs 23.4 GiB")


def test_conv_shapes_recovered_from_the_zoo():
    layers = {layer.name: layer for layer in zoo.get_model("resnet50").layers}
    s = algorithms.conv_shape(layers["conv1"])
    assert (s.cin, s.cout, s.kernel_area, s.stride, s.out_hw) == (3, 64, 49, 2, 112 * 112)
    s = algorithms.conv_shape(layers["layer1.0.conv2"])
    assert (s.cin, s.cout, s.kernel_area, s.stride) == (64, 64, 9, 1)
    assert algorithms.eligible(layers["layer1.0.conv2"], "winograd")
    assert not algorithms.eligible(layers["conv1"], "winograd")


def test_winograd_workspace_closed_form_and_growth_with_batch():
    layer = {lay.name: lay for lay in zoo.get_model("resnet50").layers}["layer1.0.conv2"]  # 64->64, 3x3, 56x56
    tiles = 14 * 14
    winograd = 4 * 36 * (32 * 64 * tiles + 64 * 64 + 32 * 64 * tiles)
    assert algorithms.workspace_bytes(layer, "winograd", 32, 4) == winograd
    assert algorithms.workspace_bytes(layer, "implicit_gemm", 32, 4) == 0
    assert algorithms.workspace_bytes(layer, "fft", 64, 4) > algorithms.workspace_bytes(layer, "fft", 32, 4)


def test_default_algorithm_is_the_per_layer_fastest_and_winograd_speeds_up_vgg():
    def compute(*extra):
        result = simulate(load_scenario(None, ["workload.model=vgg16", *extra]), with_baseline=False)
        return result.breakdown["compute_s"]

    auto, implicit, winograd = compute(), compute("workload.conv_algorithm=implicit_gemm"), compute(
        "workload.conv_algorithm=winograd")
    # the autotuner's per-layer choice is never slower than one algorithm everywhere
    assert auto <= winograd <= implicit
    # VGG-16's 3x3 stride-1 layers do 4x fewer multiplies under F(4x4, 3x3): never
    # below a quarter of the time; the transforms and the quantization of implicit
    # GEMM on its thin first layers decide where in between
    assert 0.25 < winograd / implicit < 0.75
