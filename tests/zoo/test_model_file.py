"""Bring your own model: model files and registered models cost exactly what the zoo's
own formulas give, run like zoo models, and bad files exit 2 naming file and field."""

from __future__ import annotations

import pytest
import yaml

from simulator import load_scenario, simulate, zoo
from simulator.errors import ScenarioError
from simulator.input_paths import ALLOW_OUTSIDE_ENV
from simulator.zoo.model_file import layer_to_data, model_from_data

from ..conftest import REPO_ROOT
from ..test_cli import run_main


def resnet18_layers() -> list[dict]:
    """ResNet-18 as a model file's layers by shape, torchvision's layer names."""
    layers = [
        {"name": "conv1", "kind": "conv", "out_channels": 64, "kernel": 7, "stride": 2, "padding": 3},
        {"name": "bn1", "kind": "batchnorm"}, {"name": "relu", "kind": "relu"},
        {"name": "maxpool", "kind": "maxpool", "kernel": 3, "stride": 2, "padding": 1},
    ]
    block_input, channels = "maxpool", 64
    for stage, planes in enumerate((64, 128, 256, 512), start=1):
        for index in range(2):
            p, stride = f"layer{stage}.{index}", 2 if stage > 1 and index == 0 else 1
            layers += [
                {"name": f"{p}.conv1", "kind": "conv", "out_channels": planes, "kernel": 3, "stride": stride,
                 "padding": 1},
                {"name": f"{p}.bn1", "kind": "batchnorm"}, {"name": f"{p}.relu1", "kind": "relu"},
                {"name": f"{p}.conv2", "kind": "conv", "out_channels": planes, "kernel": 3, "padding": 1},
                {"name": f"{p}.bn2", "kind": "batchnorm"},
            ]
            shortcut = block_input
            if stride != 1 or channels != planes:
                layers += [{"name": f"{p}.downsample.0", "kind": "conv", "out_channels": planes, "kernel": 1,
                            "stride": stride, "input": block_input},
                           {"name": f"{p}.downsample.1", "kind": "batchnorm"}]
                shortcut = f"{p}.downsample.1"
            layers += [{"name": f"{p}.add", "kind": "add", "inputs": [f"{p}.bn2", shortcut]},
                       {"name": f"{p}.relu2", "kind": "relu"}]
            block_input, channels = f"{p}.relu2", planes
    layers += [{"name": "avgpool", "kind": "adaptive_avgpool", "output_size": 1},
               {"name": "flatten", "kind": "flatten"}, {"name": "fc", "kind": "linear", "out_features": 1000}]
    return layers


def write_model(folder, name: str, layers: list[dict], input_shape=(3, 224, 224), **extra) -> str:
    data = {"name": name, "input_shape": list(input_shape), "layers": layers, **extra}
    (folder / f"{name}.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return f"{name}.yml"


def small_scenario(workload: dict) -> dict:
    return {"cluster": {"nodes": 2, "gpus_per_node": 2, "server": {"gpus_per_switch": None}},
            "workload": {"batch_per_gpu": 32, **workload},
            "simulation": {"iterations": 2, "warmup_iterations": 1}}


def test_yaml_resnet18_by_shape_has_the_zoo_parameters_and_flops(tmp_path):
    path = tmp_path / write_model(tmp_path, "my_resnet18", resnet18_layers())
    from simulator.loading import load_model_file

    model = load_model_file(path)
    zoo_model = zoo.get_model("resnet18")
    assert model.total_params == zoo_model.total_params == 11_689_512  # torchvision's count
    assert model.total_forward_flops == zoo_model.total_forward_flops == 3_638_007_272
    assert model.layers == zoo_model.layers  # layer by layer: names, kinds, sizes, GEMM shapes


def test_layers_given_by_numbers_reproduce_bert_base_exactly():
    bert = zoo.get_model("bert_base")
    model = model_from_data({"name": "my_bert", "sample_unit": "sequences", "input_shape": [128],
                             "layers": [layer_to_data(layer) for layer in bert.layers]})
    assert model.total_params == bert.total_params == 109_482_240
    assert model.total_forward_flops == bert.total_forward_flops == 22_420_882_176
    assert model.layers == bert.layers


def test_a_simulated_iteration_of_the_yaml_model_equals_the_zoo_models(tmp_path):
    write_model(tmp_path, "my_resnet18", resnet18_layers())
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(small_scenario({"model_file": "my_resnet18.yml"})))
    mine = simulate(load_scenario(tmp_path / "s.yaml"))
    theirs = simulate(load_scenario(small_scenario({"model": "resnet18"})))
    assert mine.model == "my_resnet18" and theirs.model == "resnet18"
    assert mine.iteration_time_s == theirs.iteration_time_s > 0
    assert mine.speedup == theirs.speedup
    assert mine.breakdown == theirs.breakdown


def test_the_example_model_file_scenario_runs():
    scenario = load_scenario(REPO_ROOT / "scenarios" / "models" / "tiny_resnet_4x2.yaml")
    assert scenario.workload.model == "tiny_resnet"
    model = zoo.get_model("tiny_resnet")
    # 3 3x3 convs of 32 (864 + 2*9,216), 2 of 64 (18,432 + 36,864), a 1x1 projection (2,048),
    # 6 batch norms (3*64 + 3*128) and the 64 -> 10 dense layer (650)
    assert model.total_params == 864 + 2 * 9_216 + 18_432 + 36_864 + 2_048 + 3 * 64 + 3 * 128 + 650 == 77_866
    result = simulate(scenario)
    assert result.total_gpus == 8 and 1 < result.speedup <= 8


def test_the_one_gpu_baseline_keeps_the_model_file(tmp_path):
    write_model(tmp_path, "m1", [{"name": "fc", "kind": "linear", "out_features": 10}], input_shape=(32,))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(small_scenario({"model_file": "m1.yml"})))
    baseline = load_scenario(tmp_path / "s.yaml").single_gpu()
    assert baseline.workload.model == "m1" and baseline.cluster.total_gpus == 1


# -- bad files: exit 2, one line naming the scenario, the model file and the field --------


BAD_FILES = [
    ("layers:\n  - {name: a, kind: convv, out_channels: 4, kernel: 3}\n",
     "layers.0.kind: unknown layer kind 'convv' (did you mean 'conv'?)"),
    ("layers:\n  - {name: a, kind: conv, out_channels: 4, kernel: 3, colour: red}\n", "layers.0.colour: unknown key"),
    ("layers:\n  - {name: a, kind: conv, out_channels: 0, kernel: 3}\n",
     "layers.0.out_channels: Input should be greater than or equal to 1"),
    ("layers:\n  - {name: a, kind: conv, out_channels: 4, kernel: 30}\n",
     "layers.0 (a): kernel 30 does not fit input of size 8"),
    ("layers:\n  - {name: a, kind: add, inputs: [input, b]}\n", "layers.0 (a): input 'b' is not an earlier layer"),
    ("layers:\n  - {name: a, kind: relu, forward_flops: -5, output_elements: 3}\n",
     "layers.0.forward_flops: Input should be greater than or equal to 0"),
    ("layers:\n  - {name: a, kind: linear, forward_flops: 100, output_elements: 3}\n",
     "a linear layer given by numbers needs gemm"),
    ("layerz: []\n", "layerz: unknown key (did you mean 'layers'?)"),
]


@pytest.mark.parametrize("body,message", BAD_FILES, ids=[m.split(":")[0] + str(i) for i, (_, m) in
                                                         enumerate(BAD_FILES)])
def test_a_bad_model_file_exits_2_naming_the_file_and_field(capsys, tmp_path, body, message):
    (tmp_path / "bad.yml").write_text("name: bad\ninput_shape: [3, 8, 8]\n" + body)
    (tmp_path / "s.yaml").write_text("workload:\n  model_file: bad.yml\n")
    code, out, err = run_main(capsys, "simulate", str(tmp_path / "s.yaml"))
    assert code == 2 and "Traceback" not in err
    line = err.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith(f"error: {tmp_path / 's.yaml'}: workload.model_file: {tmp_path / 'bad.yml'}: "), line
    assert message in line


def test_a_model_file_outside_the_scenarios_folder_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_OUTSIDE_ENV, raising=False)  # an earlier --allow-outside-paths set it
    outside = tmp_path / "m.yml"
    write_model(tmp_path, "m", [{"name": "fc", "kind": "linear", "out_features": 10}], input_shape=(32,))
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "s.yaml").write_text(f"workload:\n  model_file: ../{outside.name}\n")
    code, _out, err = run_main(capsys, "simulate", str(tmp_path / "inner" / "s.yaml"))
    assert code == 2 and "workload.model_file: '../m.yml' is a path outside" in err


def test_model_and_model_file_together_must_agree(tmp_path):
    write_model(tmp_path, "m2", [{"name": "fc", "kind": "linear", "out_features": 10}], input_shape=(32,))
    (tmp_path / "s.yaml").write_text("workload:\n  model: vgg16\n  model_file: m2.yml\n")
    with pytest.raises(ScenarioError, match="both name the model"):
        load_scenario(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text("workload:\n  model: m2\n  model_file: m2.yml\n")
    assert load_scenario(tmp_path / "s.yaml").workload.model == "m2"


def test_a_model_file_may_not_take_a_zoo_name_or_another_files(tmp_path):
    write_model(tmp_path, "resnet50", [{"name": "fc", "kind": "linear", "out_features": 10}], input_shape=(32,))
    (tmp_path / "s.yaml").write_text("workload:\n  model_file: resnet50.yml\n")
    with pytest.raises(ScenarioError, match="'resnet50' is a zoo model"):
        load_scenario(tmp_path / "s.yaml")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_model(tmp_path / "a", "same", [{"name": "fc", "kind": "linear", "out_features": 10}], input_shape=(32,))
    write_model(tmp_path / "b", "same", [{"name": "fc", "kind": "linear", "out_features": 20}], input_shape=(32,))
    for folder in ("a", "b"):
        (tmp_path / folder / "s.yaml").write_text("workload:\n  model_file: same.yml\n")
    load_scenario(tmp_path / "a" / "s.yaml")
    with pytest.raises(ScenarioError, match="already taken by a different model"):
        load_scenario(tmp_path / "b" / "s.yaml")


def test_an_edited_model_file_is_read_again(tmp_path):
    layers = [{"name": "fc", "kind": "linear", "out_features": 10}]
    write_model(tmp_path, "m3", layers, input_shape=(32,))
    (tmp_path / "s.yaml").write_text("workload:\n  model_file: m3.yml\n")
    load_scenario(tmp_path / "s.yaml")
    assert zoo.get_model("m3").total_params == 32 * 10 + 10
    write_model(tmp_path, "m3", [{**layers[0], "out_features": 20}], input_shape=(32,), description="edited")
    load_scenario(tmp_path / "s.yaml")
    assert zoo.get_model("m3").total_params == 32 * 20 + 20


# -- the Python API ----------------------------------------------------------------------


def test_register_model_from_layer_specs_and_simulate():
    model = zoo.register_model("my_mlp", [
        {"name": "fc1", "kind": "linear", "out_features": 256},
        {"name": "act", "kind": "gelu"},
        {"name": "fc2", "kind": "linear", "out_features": 10},
    ], input_shape=(784,))
    assert model.total_params == 784 * 256 + 256 + 256 * 10 + 10 == 203_530
    # 2*784*256 + 256, 8 per GELU element, 2*256*10 + 10
    assert model.total_forward_flops == 401_408 + 256 + 8 * 256 + 5_120 + 10 == 408_842
    assert "my_mlp" in zoo.registered_models() and "my_mlp" not in zoo.list_models()
    result = simulate(load_scenario(small_scenario({"model": "my_mlp"})))
    assert result.model == "my_mlp" and result.iteration_time_s > 0


def test_register_model_from_zoo_layers_times_like_the_zoo_model():
    zoo.register_model("alexnet_copy", zoo.get_model("alexnet"))
    mine = simulate(load_scenario(small_scenario({"model": "alexnet_copy"})))
    theirs = simulate(load_scenario(small_scenario({"model": "alexnet"})))
    assert mine.iteration_time_s == theirs.iteration_time_s


def test_register_model_refuses_zoo_names_and_silent_replacement():
    with pytest.raises(ValueError, match="is a zoo model"):
        zoo.register_model("vgg16", zoo.get_model("alexnet"))
    zoo.register_model("mine", zoo.get_model("alexnet").layers, input_shape=(3, 224, 224))
    zoo.register_model("mine", zoo.get_model("alexnet").layers, input_shape=(3, 224, 224))  # same: a no-op
    with pytest.raises(ValueError, match="replace=True"):
        zoo.register_model("mine", zoo.get_model("resnet18"))
    assert zoo.register_model("mine", zoo.get_model("resnet18"), replace=True).total_params == 11_689_512
    with pytest.raises(ValueError, match="sequence_length does not apply"):
        zoo.get_model("mine", sequence_length=128)
