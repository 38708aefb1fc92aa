"""``clustersim import-model``: write a model file from a torch ``nn.Module``.

Registered on the main group by :mod:`simulator.cli.app`; needs the ``probe`` extra
(torch). ``MODULE:CALLABLE`` names a Python module (importable from the working
directory, or a ``.py`` file) and a callable in it that returns the ``nn.Module`` (or
the module object itself). The import is :mod:`simulator.zoo.torch_import`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import ClusterSimError, check_output_path, excerpt, write_atomic


def _shape(text: str) -> list[int]:
    try:
        shape = [int(part) for part in text.replace("x", ",").split(",") if part.strip()]
    except ValueError:
        shape = []
    if not shape or any(d < 1 for d in shape) or len(shape) > 8:
        raise click.BadParameter(f"{excerpt(text)}: expected positive sizes separated by commas, e.g. 3,224,224")
    return shape


def _load_target(spec: str) -> tuple[Any, str]:
    """The object ``MODULE:CALLABLE`` names (called when it is not a module already)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ClusterSimError(f"{excerpt(spec)}: expected MODULE:CALLABLE, e.g. mymodels:resnet or net.py:build")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise ClusterSimError(f"{module_name}: no such file")
            loader_spec = importlib.util.spec_from_file_location(path.stem, path)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, "")  # modules in the working directory, as `python -m` finds them
            module = importlib.import_module(module_name)
    except ClusterSimError:
        raise
    except Exception as exc:  # the user's code: any error it raises
        raise ClusterSimError(f"cannot import {module_name}: {type(exc).__name__}: {excerpt(str(exc), 200)}") \
            from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ClusterSimError(f"{module_name} has no {excerpt(attribute)}")
        target = getattr(target, part)
    try:
        import torch
    except ImportError as exc:
        raise ClusterSimError(f"`clustersim import-model` needs the probe extra (torch): {exc}") from None
    if not isinstance(target, torch.nn.Module):
        if not callable(target):
            raise ClusterSimError(f"{spec} is neither an nn.Module nor a callable that returns one")
        try:
            target = target()
        except Exception as exc:
            raise ClusterSimError(f"{spec}() raised {type(exc).__name__}: {excerpt(str(exc), 200)}") from None
    return target, attribute.rpartition(".")[2]


@click.command(name="import-model")
@click.argument("target", metavar="MODULE:CALLABLE")
@click.option("--input-shape", "input_shape", required=True, callback=lambda _c, _p, v: _shape(v),
              help="One sample's input, e.g. 3,224,224 (an image) or 128 (token ids).")
@click.option("-o", "--output", "output", default="-", show_default=True,
              help="Model file to write ('-' for stdout).")
@click.option("--name", default=None, help="Model name in scenarios and results (default: the callable's name).")
@click.option("--sample-unit", type=click.Choice(["images", "sequences"]), default="images", show_default=True,
              help="What one sample is; sequences feed int64 token ids.")
def import_model(target: str, input_shape: list[int], output: str, name: str | None, sample_unit: str) -> None:
    """Write a model file (YAML) from a torch nn.Module (needs the probe extra).

    Shapes are propagated on the meta device (no memory, no arithmetic) and FLOPs
    counted by torch's FlopCounterMode; layers the zoo knows are written by shape, the
    rest by numbers. Use the file as `workload.model_file:` in a scenario.
    """
    from .. import zoo
    from ..zoo.model_file import model_from_data
    from ..zoo.torch_import import ImportProblem, import_torch_module, write_model_file

    check_output_path(output, "-o")
    module, default_name = _load_target(target)
    if default_name in zoo.list_models():  # `mymodels:resnet18`: a zoo name cannot be taken
        default_name += "_imported"
    try:
        data = import_torch_module(module, input_shape, name=name or default_name, sample_unit=sample_unit)
        model = model_from_data({k: v for k, v in data.items() if not k.endswith("_total")})
    except ImportProblem as exc:
        raise ClusterSimError(f"{target}: {exc}") from None
    except ValueError as exc:  # a layer the file cannot express: a bug in the mapping, said in one line
        raise ClusterSimError(f"{target}: the imported layers do not validate: {excerpt(str(exc), 300)}") from None
    text = write_model_file(data)
    if output == "-":
        click.echo(text, nl=False)
    else:
        write_atomic(output, text, "-o")
    click.echo(f"{model.name}: {len(model.layers)} layers, {model.total_params:,} parameters "
               f"(torch: {data['parameters_total']:,}), {model.total_forward_flops / 1e9:.3f} GFLOPs per sample"
               + (f"; wrote {output}" if output != "-" else ""), err=True)
