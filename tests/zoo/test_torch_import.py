"""Importing a torch nn.Module (probe extra): shapes on the meta device and torch's own
FLOP counter give the zoo's numbers for the same network, layer by layer."""

from __future__ import annotations

import pytest
import yaml

pytest.importorskip("torch")

from simulator import zoo  # noqa: E402
from simulator.zoo.model_file import model_from_data  # noqa: E402
from simulator.zoo.torch_import import ImportProblem, import_torch_module, write_model_file  # noqa: E402

from ..test_cli import run_main  # noqa: E402
from . import torch_nets  # noqa: E402


def imported(module, shape, name="imported"):
    data = import_torch_module(module, shape, name=name)
    return data, model_from_data(yaml.safe_load(write_model_file(data)))


def same_layers(a, b) -> bool:
    """Equal costs layer by layer (names may differ: torch's ``relu`` module is reused)."""
    fields = ("kind", "params", "forward_flops", "input_elements", "output_elements", "gemm")
    rows = [(tuple(getattr(x, f) for f in fields), tuple(getattr(y, f) for f in fields))
            for x, y in zip(a.layers, b.layers)]
    return len(a.layers) == len(b.layers) and all(x == y for x, y in rows)


def test_resnet18_imports_as_the_zoos_resnet18():
    data, model = imported(torch_nets.resnet18(), (3, 224, 224))
    reference = zoo.get_model("resnet18")
    assert data["parameters_total"] == model.total_params == reference.total_params == 11_689_512
    assert model.total_forward_flops == reference.total_forward_flops == 3_638_007_272
    assert same_layers(model, reference)
    # torch counts the convolutions' and the classifier's multiply-adds (2 FLOPs each) and
    # nothing else: exactly the zoo's GEMM shapes, batch 1
    gemm_flops = sum(2 * g.groups * g.m * g.n * g.k for g in (layer.gemm for layer in reference.layers) if g)
    assert data["torch_flops_total"] == gemm_flops == 3_628_146_688


def test_alexnet_imports_as_the_zoos_alexnet():
    data, model = imported(torch_nets.alexnet(), (3, 224, 224))
    reference = zoo.get_model("alexnet")
    assert model.total_params == reference.total_params == 61_100_840
    assert model.total_forward_flops == reference.total_forward_flops == 1_430_181_736
    assert same_layers(model, reference)


def test_an_op_the_zoo_does_not_know_is_written_by_numbers():
    data, model = imported(torch_nets.mlp(), (32,))
    kinds = [layer["kind"] for layer in data["layers"]]
    assert kinds == ["linear", "gelu", "other", "layernorm", "linear"]
    other = data["layers"][2]
    assert other["params"] == 64 and other["input_elements"] == 64 and other["output_shape"] == [64]
    # 32*64 + 64, the scale's 64, LayerNorm's 2*64, 64*10 + 10
    assert model.total_params == data["parameters_total"] == 2_112 + 64 + 128 + 650 == 2_954


def test_the_module_is_left_on_its_device():
    module = torch_nets.mlp()
    import_torch_module(module, (32,), name="m")
    assert all(p.device.type == "cpu" for p in module.parameters())


def test_a_wrong_input_shape_is_one_problem():
    with pytest.raises(ImportProblem, match=r"does not run on input \(33,\)"):
        import_torch_module(torch_nets.mlp(), (33,), name="m")


def test_import_model_command_writes_a_file_a_scenario_can_use(capsys, tmp_path):
    out = tmp_path / "mlp.yml"
    code, _stdout, err = run_main(capsys, "import-model", "tests.zoo.torch_nets:mlp", "--input-shape", "32",
                                  "-o", str(out))
    assert code == 0, err
    assert "mlp: 5 layers, 2,954 parameters (torch: 2,954)" in err
    (tmp_path / "s.yaml").write_text("workload:\n  model_file: mlp.yml\n  batch_per_gpu: 64\n")
    code, stdout, err = run_main(capsys, "simulate", str(tmp_path / "s.yaml"))
    assert code == 0 and "mlp, batch 64/GPU" in stdout


@pytest.mark.parametrize("args,message", [
    (["tests.zoo.torch_nets:nothing", "--input-shape", "32"], "has no 'nothing'"),
    (["no_such_module:x", "--input-shape", "32"], "cannot import no_such_module"),
    (["tests.zoo.torch_nets:mlp", "--input-shape", "3,a"], "expected positive sizes"),
    (["tests.zoo.torch_nets:mlp", "--input-shape", "33"], "does not run on input (33,)"),
])
def test_import_model_errors_exit_2_in_one_line(capsys, args, message):
    code, _out, err = run_main(capsys, "import-model", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
