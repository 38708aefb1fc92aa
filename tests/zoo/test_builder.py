"""Unit checks of the shape-propagating builder."""

from __future__ import annotations

import re

import pytest

from simulator.zoo.builder import NetBuilder, adaptive_bins, pool_out_size


def test_conv_counts() -> None:
    b = NetBuilder((3, 32, 32))
    layer = b.conv("c", 16, 3, stride=1, padding=1, bias=True)
    assert b.shape == (16, 32, 32)
    assert layer.params == 16 * 3 * 9 + 16
    assert layer.forward_flops == 2 * 16 * 32 * 32 * 27 + 16 * 32 * 32
    assert (layer.input_elements, layer.output_elements) == (3 * 32 * 32, 16 * 32 * 32)


def test_grouped_and_rectangular_conv() -> None:
    b = NetBuilder((8, 10, 10))
    layer = b.conv("g", 8, (1, 3), padding=(0, 1), groups=4)
    assert b.shape == (8, 10, 10)
    assert layer.params == 8 * 2 * 3


def test_pool_sizes() -> None:
    assert pool_out_size(112, 3, 2, 0, ceil_mode=True) == 56
    assert pool_out_size(112, 3, 2, 1, ceil_mode=False) == 56
    assert pool_out_size(147, 3, 2, 0, ceil_mode=False) == 73
    # ceil mode never starts a window inside the right padding
    assert pool_out_size(5, 2, 2, 1, ceil_mode=True) == 3
    assert adaptive_bins(7, 7) == [1] * 7
    assert adaptive_bins(7, 1) == [7]
    assert adaptive_bins(5, 3) == [2, 3, 2]


def test_linear_acts_on_last_dimension() -> None:
    b = NetBuilder((10, 4))
    layer = b.linear("fc", 6)
    assert b.shape == (10, 6)
    assert layer.params == 4 * 6 + 6
    assert layer.forward_flops == 10 * (2 * 4 * 6 + 6)
    tied = NetBuilder((10, 4)).linear("head", 6, bias=False, tied=True)
    assert tied.params == 0 and tied.forward_flops == 10 * 2 * 4 * 6


def test_residual_and_branches() -> None:
    b = NetBuilder((4, 8, 8))
    add = b.residual("add", lambda: b.conv("c", 8, 3, 2, 1), lambda: b.conv("s", 8, 1, 2))
    assert add.input_elements == 2 * 8 * 4 * 4 and b.shape == (8, 4, 4)
    cat = b.branches("cat", lambda: b.conv("a", 3, 1), lambda: b.maxpool("p", 3, 1, 1))
    assert b.shape == (11, 4, 4) and cat.forward_flops == 0
    with pytest.raises(ValueError, match=re.escape("bad: add needs >= 2 equal shapes, got [(5, 4, 4), (11, 4, 4)]")):
        b.residual("bad", lambda: b.conv("d", 5, 1))  # shapes differ: 5 vs 11 channels


def test_duplicate_names_rejected() -> None:
    b = NetBuilder((4,))
    b.linear("fc", 4)
    with pytest.raises(ValueError, match="duplicate layer name 'fc'"):
        b.linear("fc", 4)
