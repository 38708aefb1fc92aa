"""Convolutional networks of the zoo, built layer by layer from their shapes.

Each builder mirrors the torchvision definition (layer order, padding, ceil modes,
bias flags) so parameter counts match torchvision exactly; layer names follow the
torchvision module paths where a module exists (``features.0``, ``layer3.2.conv1``,
``Mixed_6b.branch7x7_2.conv``) and describe the functional op otherwise
(``layer1.0.add``, ``Mixed_5b.concat``). Auxiliary classifiers are left out: they only
exist during training of GoogLeNet / Inception-v3 and are not what people mean by
the models' size.
"""

from __future__ import annotations

from simulator.zoo.builder import IntPair, NetBuilder
from simulator.zoo.core import Layer, Model

IMAGENET_CLASSES = 1000


class _Sequential:
    """Names layers like an ``nn.Sequential``: ``prefix.0``, ``prefix.1``, ..."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._index = 0

    def __call__(self) -> str:
        name = f"{self._prefix}.{self._index}"
        self._index += 1
        return name


def _model(name: str, description: str, source: str, input_shape: tuple[int, ...], b: NetBuilder) -> Model:
    return Model(
        name=name,
        description=description,
        source=source,
        sample_unit="images",
        input_shape=input_shape,
        layers=b.layers(),
    )


# -- AlexNet ---------------------------------------------------------------------------


def alexnet() -> Model:
    shape = (3, 224, 224)
    b = NetBuilder(shape)
    f = _Sequential("features")
    b.conv(f(), 64, 11, 4, 2, bias=True)
    b.relu(f())
    b.maxpool(f(), 3, 2)
    b.conv(f(), 192, 5, 1, 2, bias=True)
    b.relu(f())
    b.maxpool(f(), 3, 2)
    b.conv(f(), 384, 3, 1, 1, bias=True)
    b.relu(f())
    b.conv(f(), 256, 3, 1, 1, bias=True)
    b.relu(f())
    b.conv(f(), 256, 3, 1, 1, bias=True)
    b.relu(f())
    b.maxpool(f(), 3, 2)
    b.adaptive_avgpool("avgpool", 6)
    b.flatten()
    c = _Sequential("classifier")
    b.dropout(c())
    b.linear(c(), 4096)
    b.relu(c())
    b.dropout(c())
    b.linear(c(), 4096)
    b.relu(c())
    b.linear(c(), IMAGENET_CLASSES)
    return _model(
        "alexnet",
        "AlexNet (single-GPU variant), 224x224 ImageNet classifier",
        "Krizhevsky, 'One weird trick for parallelizing convolutional neural networks', "
        "arXiv:1404.5997 (single-tower AlexNet, no LRN), as torchvision.models.alexnet; "
        "reference 61,100,840 params (torchvision AlexNet_Weights.IMAGENET1K_V1)",
        shape,
        b,
    )


# -- VGG -------------------------------------------------------------------------------

_VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    # numbers are 3x3 conv output channels, "M" a 2x2 max pool (Simonyan & Zisserman, table 1)
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def _vgg(name: str, config: str, depth: int, reference_params: str) -> Model:
    shape = (3, 224, 224)
    b = NetBuilder(shape)
    f = _Sequential("features")
    for item in _VGG_CONFIGS[config]:
        if item == "M":
            b.maxpool(f(), 2, 2)
        else:
            b.conv(f(), int(item), 3, 1, 1, bias=True)
            b.relu(f())
    b.adaptive_avgpool("avgpool", 7)
    b.flatten()
    c = _Sequential("classifier")
    b.linear(c(), 4096)
    b.relu(c())
    b.dropout(c())
    b.linear(c(), 4096)
    b.relu(c())
    b.dropout(c())
    b.linear(c(), IMAGENET_CLASSES)
    return _model(
        name,
        f"VGG-{depth} (configuration {config}, no batch norm), 224x224 ImageNet classifier",
        "Simonyan & Zisserman, 'Very Deep Convolutional Networks for Large-Scale Image "
        f"Recognition', arXiv:1409.1556, configuration {config}, as torchvision.models.{name}; "
        f"reference {reference_params} params (torchvision)",
        shape,
        b,
    )


def vgg16() -> Model:
    return _vgg("vgg16", "D", 16, "138,357,544")


def vgg19() -> Model:
    return _vgg("vgg19", "E", 19, "143,667,240")


# -- ResNet ----------------------------------------------------------------------------


def _basic_block(b: NetBuilder, prefix: str, planes: int, stride: int) -> None:
    """ResNet-18/34 block: two 3x3 convs; 1x1 projection shortcut when the shape changes."""
    needs_projection = stride != 1 or b.shape[0] != planes

    def main() -> None:
        b.conv(f"{prefix}.conv1", planes, 3, stride, 1)
        b.batchnorm(f"{prefix}.bn1")
        b.relu(f"{prefix}.relu1")
        b.conv(f"{prefix}.conv2", planes, 3, 1, 1)
        b.batchnorm(f"{prefix}.bn2")

    def shortcut() -> None:
        b.conv(f"{prefix}.downsample.0", planes, 1, stride)
        b.batchnorm(f"{prefix}.downsample.1")

    b.residual(f"{prefix}.add", main, shortcut if needs_projection else None)
    b.relu(f"{prefix}.relu2")


def _bottleneck(b: NetBuilder, prefix: str, planes: int, stride: int) -> None:
    """ResNet-50+ block, torchvision "v1.5": the stride sits on the 3x3 conv."""
    out_channels = planes * 4
    needs_projection = stride != 1 or b.shape[0] != out_channels

    def main() -> None:
        b.conv(f"{prefix}.conv1", planes, 1)
        b.batchnorm(f"{prefix}.bn1")
        b.relu(f"{prefix}.relu1")
        b.conv(f"{prefix}.conv2", planes, 3, stride, 1)
        b.batchnorm(f"{prefix}.bn2")
        b.relu(f"{prefix}.relu2")
        b.conv(f"{prefix}.conv3", out_channels, 1)
        b.batchnorm(f"{prefix}.bn3")

    def shortcut() -> None:
        b.conv(f"{prefix}.downsample.0", out_channels, 1, stride)
        b.batchnorm(f"{prefix}.downsample.1")

    b.residual(f"{prefix}.add", main, shortcut if needs_projection else None)
    b.relu(f"{prefix}.relu3")


def _resnet(depth: int, blocks: tuple[int, int, int, int], bottleneck: bool, reference_params: str) -> Model:
    shape = (3, 224, 224)
    b = NetBuilder(shape)
    b.conv("conv1", 64, 7, 2, 3)
    b.batchnorm("bn1")
    b.relu("relu")
    b.maxpool("maxpool", 3, 2, 1)
    block = _bottleneck if bottleneck else _basic_block
    for stage, (count, planes) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
        for index in range(count):
            stride = 2 if stage > 1 and index == 0 else 1
            block(b, f"layer{stage}.{index}", planes, stride)
    b.adaptive_avgpool("avgpool", 1)
    b.flatten()
    b.linear("fc", IMAGENET_CLASSES)
    kind = "bottleneck" if bottleneck else "basic"
    return _model(
        f"resnet{depth}",
        f"ResNet-{depth} ({kind} blocks {'-'.join(map(str, blocks))}), 224x224 ImageNet classifier",
        "He et al., 'Deep Residual Learning for Image Recognition', arXiv:1512.03385, as "
        f"torchvision.models.resnet{depth} (v1.5: stride on the 3x3 conv); reference "
        f"{reference_params} params (torchvision)",
        shape,
        b,
    )


def resnet18() -> Model:
    return _resnet(18, (2, 2, 2, 2), False, "11,689,512")


def resnet34() -> Model:
    return _resnet(34, (3, 4, 6, 3), False, "21,797,672")


def resnet50() -> Model:
    return _resnet(50, (3, 4, 6, 3), True, "25,557,032")


def resnet101() -> Model:
    return _resnet(101, (3, 4, 23, 3), True, "44,549,160")


def resnet152() -> Model:
    return _resnet(152, (3, 8, 36, 3), True, "60,192,808")


# -- GoogLeNet / Inception -------------------------------------------------------------


def _conv_bn_relu(
    b: NetBuilder, prefix: str, out_channels: int, kernel: IntPair, stride: IntPair = 1, padding: IntPair = 0
) -> Layer:
    """torchvision ``BasicConv2d``: bias-free conv, batch norm, ReLU (returned)."""
    b.conv(f"{prefix}.conv", out_channels, kernel, stride, padding)
    b.batchnorm(f"{prefix}.bn")
    return b.relu(f"{prefix}.relu")


def _googlenet_inception(
    b: NetBuilder, p: str, c1: int, c3red: int, c3: int, c5red: int, c5: int, pool_proj: int
) -> None:
    b.branches(
        f"{p}.concat",
        lambda: _conv_bn_relu(b, f"{p}.branch1", c1, 1),
        lambda: (_conv_bn_relu(b, f"{p}.branch2.0", c3red, 1), _conv_bn_relu(b, f"{p}.branch2.1", c3, 3, 1, 1)),
        # torchvision uses a 3x3 (not the paper's 5x5) conv here, kept for weight compatibility
        lambda: (_conv_bn_relu(b, f"{p}.branch3.0", c5red, 1), _conv_bn_relu(b, f"{p}.branch3.1", c5, 3, 1, 1)),
        lambda: (b.maxpool(f"{p}.branch4.0", 3, 1, 1, ceil_mode=True), _conv_bn_relu(b, f"{p}.branch4.1", pool_proj, 1)),
    )


def googlenet() -> Model:
    shape = (3, 224, 224)
    b = NetBuilder(shape)
    _conv_bn_relu(b, "conv1", 64, 7, 2, 3)
    b.maxpool("maxpool1", 3, 2, ceil_mode=True)
    _conv_bn_relu(b, "conv2", 64, 1)
    _conv_bn_relu(b, "conv3", 192, 3, 1, 1)
    b.maxpool("maxpool2", 3, 2, ceil_mode=True)
    _googlenet_inception(b, "inception3a", 64, 96, 128, 16, 32, 32)
    _googlenet_inception(b, "inception3b", 128, 128, 192, 32, 96, 64)
    b.maxpool("maxpool3", 3, 2, ceil_mode=True)
    _googlenet_inception(b, "inception4a", 192, 96, 208, 16, 48, 64)
    _googlenet_inception(b, "inception4b", 160, 112, 224, 24, 64, 64)
    _googlenet_inception(b, "inception4c", 128, 128, 256, 24, 64, 64)
    _googlenet_inception(b, "inception4d", 112, 144, 288, 32, 64, 64)
    _googlenet_inception(b, "inception4e", 256, 160, 320, 32, 128, 128)
    b.maxpool("maxpool4", 2, 2, ceil_mode=True)
    _googlenet_inception(b, "inception5a", 256, 160, 320, 32, 128, 128)
    _googlenet_inception(b, "inception5b", 384, 192, 384, 48, 128, 128)
    b.adaptive_avgpool("avgpool", 1)
    b.flatten()
    b.dropout("dropout")
    b.linear("fc", IMAGENET_CLASSES)
    return _model(
        "googlenet",
        "GoogLeNet / Inception-v1 with batch norm, no auxiliary classifiers, 224x224",
        "Szegedy et al., 'Going Deeper with Convolutions', arXiv:1409.4842, as "
        "torchvision.models.googlenet (BasicConv2d with batch norm) WITHOUT the two "
        "auxiliary classifiers; reference 6,624,904 params (torchvision "
        "GoogLeNet_Weights.IMAGENET1K_V1, which also excludes them)",
        shape,
        b,
    )


def _inception_a(b: NetBuilder, p: str, pool_features: int) -> None:
    b.branches(
        f"{p}.concat",
        lambda: _conv_bn_relu(b, f"{p}.branch1x1", 64, 1),
        lambda: (_conv_bn_relu(b, f"{p}.branch5x5_1", 48, 1), _conv_bn_relu(b, f"{p}.branch5x5_2", 64, 5, 1, 2)),
        lambda: (
            _conv_bn_relu(b, f"{p}.branch3x3dbl_1", 64, 1),
            _conv_bn_relu(b, f"{p}.branch3x3dbl_2", 96, 3, 1, 1),
            _conv_bn_relu(b, f"{p}.branch3x3dbl_3", 96, 3, 1, 1),
        ),
        lambda: (b.avgpool(f"{p}.avgpool", 3, 1, 1), _conv_bn_relu(b, f"{p}.branch_pool", pool_features, 1)),
    )


def _inception_b(b: NetBuilder, p: str) -> None:
    b.branches(
        f"{p}.concat",
        lambda: _conv_bn_relu(b, f"{p}.branch3x3", 384, 3, 2),
        lambda: (
            _conv_bn_relu(b, f"{p}.branch3x3dbl_1", 64, 1),
            _conv_bn_relu(b, f"{p}.branch3x3dbl_2", 96, 3, 1, 1),
            _conv_bn_relu(b, f"{p}.branch3x3dbl_3", 96, 3, 2),
        ),
        lambda: b.maxpool(f"{p}.maxpool", 3, 2),
    )


def _inception_c(b: NetBuilder, p: str, c7: int) -> None:
    b.branches(
        f"{p}.concat",
        lambda: _conv_bn_relu(b, f"{p}.branch1x1", 192, 1),
        lambda: (
            _conv_bn_relu(b, f"{p}.branch7x7_1", c7, 1),
            _conv_bn_relu(b, f"{p}.branch7x7_2", c7, (1, 7), 1, (0, 3)),
            _conv_bn_relu(b, f"{p}.branch7x7_3", 192, (7, 1), 1, (3, 0)),
        ),
        lambda: (
            _conv_bn_relu(b, f"{p}.branch7x7dbl_1", c7, 1),
            _conv_bn_relu(b, f"{p}.branch7x7dbl_2", c7, (7, 1), 1, (3, 0)),
            _conv_bn_relu(b, f"{p}.branch7x7dbl_3", c7, (1, 7), 1, (0, 3)),
            _conv_bn_relu(b, f"{p}.branch7x7dbl_4", c7, (7, 1), 1, (3, 0)),
            _conv_bn_relu(b, f"{p}.branch7x7dbl_5", 192, (1, 7), 1, (0, 3)),
        ),
        lambda: (b.avgpool(f"{p}.avgpool", 3, 1, 1), _conv_bn_relu(b, f"{p}.branch_pool", 192, 1)),
    )


def _inception_d(b: NetBuilder, p: str) -> None:
    b.branches(
        f"{p}.concat",
        lambda: (_conv_bn_relu(b, f"{p}.branch3x3_1", 192, 1), _conv_bn_relu(b, f"{p}.branch3x3_2", 320, 3, 2)),
        lambda: (
            _conv_bn_relu(b, f"{p}.branch7x7x3_1", 192, 1),
            _conv_bn_relu(b, f"{p}.branch7x7x3_2", 192, (1, 7), 1, (0, 3)),
            _conv_bn_relu(b, f"{p}.branch7x7x3_3", 192, (7, 1), 1, (3, 0)),
            _conv_bn_relu(b, f"{p}.branch7x7x3_4", 192, 3, 2),
        ),
        lambda: b.maxpool(f"{p}.maxpool", 3, 2),
    )


def _inception_e(b: NetBuilder, p: str) -> None:
    def split_1x3_3x1(prefix: str) -> Layer:
        # the 1x3 and 3x1 convs both read the same tensor and are concatenated
        return b.branches(
            f"{prefix}_concat",
            lambda: _conv_bn_relu(b, f"{prefix}a", 384, (1, 3), 1, (0, 1)),
            lambda: _conv_bn_relu(b, f"{prefix}b", 384, (3, 1), 1, (1, 0)),
        )

    b.branches(
        f"{p}.concat",
        lambda: _conv_bn_relu(b, f"{p}.branch1x1", 320, 1),
        lambda: (_conv_bn_relu(b, f"{p}.branch3x3_1", 384, 1), split_1x3_3x1(f"{p}.branch3x3_2")),
        lambda: (
            _conv_bn_relu(b, f"{p}.branch3x3dbl_1", 448, 1),
            _conv_bn_relu(b, f"{p}.branch3x3dbl_2", 384, 3, 1, 1),
            split_1x3_3x1(f"{p}.branch3x3dbl_3"),
        ),
        lambda: (b.avgpool(f"{p}.avgpool", 3, 1, 1), _conv_bn_relu(b, f"{p}.branch_pool", 192, 1)),
    )


def inception_v3() -> Model:
    shape = (3, 299, 299)
    b = NetBuilder(shape)
    _conv_bn_relu(b, "Conv2d_1a_3x3", 32, 3, 2)
    _conv_bn_relu(b, "Conv2d_2a_3x3", 32, 3)
    _conv_bn_relu(b, "Conv2d_2b_3x3", 64, 3, 1, 1)
    b.maxpool("maxpool1", 3, 2)
    _conv_bn_relu(b, "Conv2d_3b_1x1", 80, 1)
    _conv_bn_relu(b, "Conv2d_4a_3x3", 192, 3)
    b.maxpool("maxpool2", 3, 2)
    _inception_a(b, "Mixed_5b", 32)
    _inception_a(b, "Mixed_5c", 64)
    _inception_a(b, "Mixed_5d", 64)
    _inception_b(b, "Mixed_6a")
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        _inception_c(b, name, c7)
    _inception_d(b, "Mixed_7a")
    _inception_e(b, "Mixed_7b")
    _inception_e(b, "Mixed_7c")
    b.adaptive_avgpool("avgpool", 1)
    b.dropout("dropout")
    b.flatten()
    b.linear("fc", IMAGENET_CLASSES)
    return _model(
        "inception_v3",
        "Inception-v3 without the auxiliary classifier, 299x299 ImageNet classifier",
        "Szegedy et al., 'Rethinking the Inception Architecture for Computer Vision', "
        "arXiv:1512.00567, as torchvision.models.inception_v3 WITHOUT AuxLogits; reference "
        "23,834,568 params = torchvision's 27,161,264 (Inception_V3_Weights.IMAGENET1K_V1, "
        "aux head included) minus the 3,326,696-param auxiliary head",
        shape,
        b,
    )
