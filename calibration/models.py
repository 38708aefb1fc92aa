"""Small torch definitions of zoo models, one timed step per zoo layer.

The zoo (:mod:`simulator.zoo`) records per-layer parameters, FLOPs and activation
sizes but no kernels; to time a layer we need a real torch module for it. Each model
here is a :class:`Program`: a flat list of :class:`Step` records, in the zoo's forward
order, whose ``name`` is the zoo layer name (torchvision module paths such as
``layer1.0.conv1``; functional ops such as ``layer1.0.add``) and whose ``inputs`` say
which earlier steps' outputs it takes (``-1`` is the model input). Running the steps in
order is the model's forward pass. torchvision is not used (it does not import next to
every torch build); the definitions mirror torchvision's, and the tests check that
every step's name and parameter count equal the zoo layer's.

The flatten before a classifier is folded into the pooling step before it (a view, no
work), since the zoo has no layer for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

IMAGENET_CLASSES = 1000


class Add(nn.Module):
    """Residual join: the sum of two tensors."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


@dataclass
class Step:
    name: str
    module: nn.Module
    inputs: tuple[int, ...]


class Program(nn.Module):
    """A model as an ordered list of steps named after zoo layers."""

    def __init__(self, name: str, steps: list[Step]):
        super().__init__()
        self.model_name = name
        self.steps = steps
        self.layers = nn.ModuleList(step.module for step in steps)  # registers parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for step in self.steps:
            outputs.append(step.module(*(x if i < 0 else outputs[i] for i in step.inputs)))
        return outputs[-1]

    def step_inputs(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Run forward without autograd and return every step's inputs."""
        outputs: list[torch.Tensor] = []
        inputs: list[list[torch.Tensor]] = []
        with torch.no_grad():
            for step in self.steps:
                args = [x if i < 0 else outputs[i] for i in step.inputs]
                inputs.append(args)
                outputs.append(step.module(*args))
        return inputs


class _Builder:
    """Appends steps; ``current`` is the step whose output the next step takes."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.current = -1

    def add(self, name: str, module: nn.Module, inputs: tuple[int, ...] | None = None) -> int:
        self.steps.append(Step(name, module, inputs if inputs is not None else (self.current,)))
        self.current = len(self.steps) - 1
        return self.current


def _pool_flatten(size: int) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(size), nn.Flatten(1))


# -- AlexNet and VGG (torchvision.models.alexnet / vgg16) ------------------------------


def alexnet() -> Program:
    b = _Builder()
    features: list[nn.Module] = [
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2),
    ]
    for i, module in enumerate(features):
        b.add(f"features.{i}", module)
    b.add("avgpool", _pool_flatten(6))
    classifier: list[nn.Module] = [
        nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
        nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, IMAGENET_CLASSES),
    ]
    for i, module in enumerate(classifier):
        b.add(f"classifier.{i}", module)
    return Program("alexnet", b.steps)


def vgg16() -> Program:
    b = _Builder()
    config = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
    index, channels = 0, 3
    for item in config:
        if item == "M":
            b.add(f"features.{index}", nn.MaxPool2d(2, 2))
            index += 1
        else:
            b.add(f"features.{index}", nn.Conv2d(channels, int(item), 3, 1, 1))
            b.add(f"features.{index + 1}", nn.ReLU())
            index, channels = index + 2, int(item)
    b.add("avgpool", _pool_flatten(7))
    classifier: list[nn.Module] = [
        nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, IMAGENET_CLASSES),
    ]
    for i, module in enumerate(classifier):
        b.add(f"classifier.{i}", module)
    return Program("vgg16", b.steps)


# -- ResNet (torchvision v1.5: stride on the 3x3 conv) ---------------------------------


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)


def _block(b: _Builder, prefix: str, cin: int, planes: int, stride: int, bottleneck: bool) -> int:
    """One residual block in zoo order: main path, shortcut, add, final ReLU."""
    start = b.current
    if bottleneck:
        cout = planes * 4
        main = [("conv1", _conv(cin, planes, 1)), ("bn1", nn.BatchNorm2d(planes)), ("relu1", nn.ReLU()),
                ("conv2", _conv(planes, planes, 3, stride)), ("bn2", nn.BatchNorm2d(planes)), ("relu2", nn.ReLU()),
                ("conv3", _conv(planes, cout, 1)), ("bn3", nn.BatchNorm2d(cout))]
        last_relu = "relu3"
    else:
        cout = planes
        main = [("conv1", _conv(cin, planes, 3, stride)), ("bn1", nn.BatchNorm2d(planes)), ("relu1", nn.ReLU()),
                ("conv2", _conv(planes, planes, 3)), ("bn2", nn.BatchNorm2d(planes))]
        last_relu = "relu2"
    for name, module in main:
        b.add(f"{prefix}.{name}", module)
    main_out = b.current
    shortcut = start
    if stride != 1 or cin != cout:
        b.add(f"{prefix}.downsample.0", nn.Conv2d(cin, cout, 1, stride, bias=False), (start,))
        shortcut = b.add(f"{prefix}.downsample.1", nn.BatchNorm2d(cout))
    b.add(f"{prefix}.add", Add(), (main_out, shortcut))
    b.add(f"{prefix}.{last_relu}", nn.ReLU())
    return cout


def _resnet(name: str, blocks: tuple[int, int, int, int], bottleneck: bool) -> Program:
    b = _Builder()
    b.add("conv1", nn.Conv2d(3, 64, 7, 2, 3, bias=False))
    b.add("bn1", nn.BatchNorm2d(64))
    b.add("relu", nn.ReLU())
    b.add("maxpool", nn.MaxPool2d(3, 2, 1))
    channels = 64
    for stage, (count, planes) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
        for index in range(count):
            stride = 2 if stage > 1 and index == 0 else 1
            channels = _block(b, f"layer{stage}.{index}", channels, planes, stride, bottleneck)
    b.add("avgpool", _pool_flatten(1))
    b.add("fc", nn.Linear(channels, IMAGENET_CLASSES))
    return Program(name, b.steps)


def resnet18() -> Program:
    return _resnet("resnet18", (2, 2, 2, 2), False)


def resnet34() -> Program:
    return _resnet("resnet34", (3, 4, 6, 3), False)


def resnet50() -> Program:
    return _resnet("resnet50", (3, 4, 6, 3), True)


MODELS: dict[str, Callable[[], Program]] = {
    "alexnet": alexnet,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
}


def build(name: str) -> Program:
    """The torch program of zoo model ``name``; ValueError if the probe lacks it."""
    try:
        return MODELS[name]()
    except KeyError:
        raise ValueError(f"the probe has no torch definition of {name!r}; it has {', '.join(sorted(MODELS))}") from None
