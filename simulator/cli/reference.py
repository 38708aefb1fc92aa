"""``clustersim schema`` and ``clustersim list``: what scenario files may contain.

``schema`` prints the JSON Schema of scenario or sweep files; ``list`` prints the names
a scenario file can use (GPUs, models, links, topologies, strategies, collective
backends, framework presets), each with a one-line description.
"""

from __future__ import annotations

import re

import click
from rich import box
from rich.console import Console
from rich.table import Table

from topologies import FABRICS, SERVER_LAYOUTS

from .. import catalog, zoo
from ..collective_cost import get_backend, list_backends
from ..editor_schema import schema_text
from ..frameworks import get_preset, list_frameworks
from ..sync import SYNC_STRATEGIES


@click.command()
@click.argument("kind", type=click.Choice(["scenario", "sweep"]), default="scenario")
def schema(kind: str) -> None:
    """Print the JSON Schema of scenario files (default) or sweep files.

    The same text is committed as schemas/scenario.schema.json and
    schemas/sweep.schema.json; name one in a YAML file's first line for completion and
    checking in editors: `# yaml-language-server: $schema=../schemas/scenario.schema.json`.
    """
    click.echo(schema_text(kind), nl=False)


@click.command(name="list")
@click.argument("what", type=click.Choice(["gpus", "models", "links", "topologies", "strategies", "backends",
                                           "frameworks"]))
def list_(what: str) -> None:
    """List the names scenario files can use."""
    console = Console()
    if what == "gpus":
        table = Table("name", "arch", "fp32 TF", "fp16 TF", "memory GiB", "GB/s", "PCIe")
        for name in catalog.list_gpus():
            g = catalog.get_gpu(name)
            table.add_row(
                name, g.architecture, f"{g.peak_tflops['fp32']:g}", f"{g.peak_tflops.get('fp16', float('nan')):g}",
                f"{g.memory_gib:g}", f"{g.memory_bandwidth_gbytes_s:g}", f"gen{g.pcie_gen}",
            )
    elif what == "models":  # short headers, numbers never wrapped: readable at 80 columns
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("name", no_wrap=True)
        for header in ("params M", "GFLOP fwd", "layers"):  # forward GFLOPs per sample
            table.add_column(header, justify="right", no_wrap=True)
        table.add_column("unit", no_wrap=True)
        table.add_column("description", min_width=20)
        for name in zoo.list_models():
            m = zoo.model_summary(name)
            table.add_row(
                name, f"{m['params'] / 1e6:.2f}", f"{m['forward_gflops']:.2f}", str(m["layers"]),
                m["sample_unit"], m["description"],
            )
    elif what == "links":
        table = Table("name", "kind", "line rate Gb/s", "efficiency", "latency us")
        for name in catalog.list_links():
            link = catalog.get_link(name)
            table.add_row(name, link.kind, f"{link.line_rate_gbps:g}", f"{link.efficiency:.3f}", f"{link.latency_us:g}")
    elif what == "topologies":
        table = Table("name", "role", "description")
        for name, fn in sorted(SERVER_LAYOUTS.items()):
            table.add_row(name, "cluster.server.layout", _summary(fn.__doc__))
        for name, fn in sorted(FABRICS.items()):
            same = [other for other, f in sorted(FABRICS.items()) if f is fn and other < name]
            table.add_row(name, "cluster.fabric.topology",
                          f"The same as {same[0]}." if same else _summary(fn.__doc__))
    elif what == "backends":
        table = Table("name", "role", "description", "source")
        for name in list_backends():
            b = get_backend(name)
            table.add_row(name, "training.collectives.backend", b.description, b.source)
    elif what == "frameworks":
        table = Table("name", "role", "description")
        for name in list_frameworks():
            table.add_row(name, "training.framework", " ".join(str(get_preset(name).get("description", "")).split()))
    else:
        table = Table("name", "description")
        for name, cls in sorted(SYNC_STRATEGIES.items()):
            table.add_row(name, _summary(cls.__doc__))
    console.print(table)


def _summary(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line, without reST markup
    (``:data:`NAME``` -> NAME, double backquotes dropped)."""
    text = " ".join((doc or "").strip().split("\n\n")[0].split())
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)
