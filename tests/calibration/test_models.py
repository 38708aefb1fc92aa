"""The probe's torch definitions time exactly the zoo's layers."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from calibration import models  # noqa: E402
from simulator.zoo import get_model  # noqa: E402


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_step_is_a_zoo_layer_with_its_parameter_count(name):
    program, zoo_model = models.build(name), get_model(name)
    assert [s.name for s in program.steps] == [layer.name for layer in zoo_model.layers]
    for step, layer in zip(program.steps, zoo_model.layers):
        assert sum(p.numel() for p in step.module.parameters()) == layer.params, step.name
    assert sum(p.numel() for p in program.parameters()) == zoo_model.total_params


def test_resnet18_forward_gives_imagenet_logits():
    out = models.build("resnet18")(torch.randn(2, 3, 224, 224))
    assert tuple(out.shape) == (2, 1000)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="no torch definition of 'gpt2'"):
        models.build("gpt2")
