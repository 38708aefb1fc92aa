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
from rich.table import Column, Table

from topologies import FABRICS, SERVER_LAYOUTS

from .. import catalog, compute, kernel_efficiency, zoo
from .. import device_reduce as _device_reduce  # noqa: F401 - registers its strategy for `list strategies`
from .. import parameter_servers as _parameter_servers  # noqa: F401 - the same
from ..collectives.backend import get_backend, list_backends
from ..editor_schema import schema_text
from ..frameworks import get_preset, list_frameworks
from ..scenario import WorkloadSpec
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


def _print_gpus(console: Console) -> None:
    """Datasheet figures and the layer-time model's parameters per GPU, with sources."""
    from ..llm.run import TRANSFORMER_MATMUL_SHARE, llm_compute_efficiency

    eff_cuda, eff_tc = compute.DEFAULT_EFFICIENCY["cuda_cores"], compute.DEFAULT_EFFICIENCY["tensor_cores"]
    w = WorkloadSpec()
    # names are what users type: never cut (the narrower columns wrap instead)
    widest = max(map(len, catalog.list_gpus()))
    sheet = Table(Column("name", no_wrap=True, min_width=widest), "arch", "SMs", "MHz", "fp32 TF", "fp16 TF",
                  "mem GiB", "GB/s", "PCIe", box=box.SIMPLE_HEAD, pad_edge=False, title="datasheet")
    model = Table(Column("name", no_wrap=True, min_width=widest), "clock x", "issue", "MMA width", "GEMM fp32 TF",
                  "GEMM fp16 TF", "conv fp16 TF", "eff. GB/s", box=box.SIMPLE_HEAD, pad_edge=False,
                  title="layer-time model (shipped defaults)")
    transformer_table = Table("name", "matmul max", "transformer TF", box=box.SIMPLE_HEAD, pad_edge=False,
                              title="transformer step (shipped defaults)")
    for name in catalog.list_gpus():
        g = catalog.get_gpu(name)
        fp16 = g.peak_tflops.get("fp16", float("nan"))
        clock = g.sustained_clock_ratio
        issue = compute.fma_issue_share(g)
        scalar = compute.device_rates(g, "fp32", eff_cuda, 1.0, 0.0).scalar_flops_s / 1e12
        width = g.flops_per_sm_clock("fp16") if g.architecture in compute.TENSOR_CORE_ARCHITECTURES else None
        # the simulator's own rates, at the default efficiency an fp16 run on this card gets
        fp16_rates = compute.device_rates(g, "fp16", compute.default_compute_efficiency("fp16", g.architecture), 1.0,
                                          0.0)
        tensor, conv = fp16_rates.matrix_flops_s / 1e12, fp16_rates.convolution_flops_s / 1e12
        mhz = f"{g.peak_clock_mhz:g}" if g.peak_clock_mhz else "-"
        sheet.add_row(name, g.architecture, str(g.sm_count or "-"), mhz, f"{g.peak_tflops['fp32']:g}",
                      f"{fp16:g}", f"{g.memory_gib:g}", f"{g.memory_bandwidth_gbytes_s:g}", f"gen{g.pcie_gen}")
        half = g.peak_tflops.get("bf16", g.peak_tflops.get("fp16"))
        transformer = f"{half * llm_compute_efficiency(g, None):.0f}" if half and half > g.peak_tflops["fp32"] else "-"
        model.add_row(name, f"{clock:g}", f"{issue:.3g}", f"{width:.0f}" if width else "-",
                      f"{scalar:.1f}", f"{tensor:.1f}",
                      f"{conv:.1f}", f"{g.memory_bandwidth_gbytes_s * w.memory_efficiency:.0f}")
        transformer_table.add_row(name, f"{g.matmul_efficiency:g}" if g.matmul_efficiency is not None else "-",
                                  transformer)
    q, ref = kernel_efficiency.CONV_STAGING_FLOPS_PER_SM_CLOCK, kernel_efficiency.REFERENCE_MMA_WIDTH
    staging = "conv = GEMM (no staging cost)" if q is None else (
        "conv = the same for implicit-GEMM convolutions on tensor cores, whose operand staging runs at "
        f"Q = {q:g} FLOP per SM per clock: x (1 + {ref:g}/Q) / (1 + MMA width / Q), MMA width = dense fp16 "
        "tensor-core FLOP per SM per clock (MHz: the clock the datasheet peaks are quoted at)")
    console.print(sheet)
    console.print(model)
    console.print(transformer_table)
    console.print(
        f"GEMM = TFLOP/s of a large, tile-aligned product: peak x sustained clock x compute efficiency "
        f"(x issue, the share of the CUDA cores' FMA issue the schedulers can feed: Kepler's two thirds for its "
        f"dual issue, times 1 - {compute.NON_FMA_ISSUE_SHARE:g} for the slots other instructions take where a "
        f"scheduler feeds 32 or more FP32 lanes; Volta, Turing and GA100 partitions of 16 lanes issue them in "
        f"between) "
        f"({eff_cuda:g} on CUDA cores, {eff_tc:g} on tensor cores); smaller and ragged shapes lose more to tile, "
        f"wave and k quantization on the SMs (simulator/kernel_efficiency.py). {staging}. "
        f"eff. GB/s = bandwidth x memory "
        f"efficiency {w.memory_efficiency:g}; every kernel costs {w.layer_overhead_us:g} us; overlap loss "
        f"{kernel_efficiency.OVERLAP_LOSS:g}. Fitted on the published one-GPU points (205), cross-validated leaving "
        "one GPU out: benchmarks/accuracy_single_gpu.py --cv. matmul max = measured maximum achievable bf16 matmul "
        "rate over the peak (sources below); transformer TF = the transformer step's large products (simulator/llm): "
        f"{TRANSFORMER_MATMUL_SHARE:g} x matmul max x the bf16/fp16 peak (the measured cards' mean where a card "
        "has none), fitted on the LLM dev set: benchmarks/accuracy_llm.py. Datasheet sources: catalog entries "
        "(simulator/catalog/gpus.py).", soft_wrap=False)
    for name in catalog.list_gpus():
        g = catalog.get_gpu(name)
        if g.sustained_clock_ratio != 1.0:
            console.print(f"clock x {g.sustained_clock_ratio:g} for {name}: {g.clock_source}")
        if g.cuda_core_issue_share != 1.0:
            console.print(f"issue x {g.cuda_core_issue_share:g} for {name}: {g.issue_source}")
        if g.matmul_efficiency is not None:
            console.print(f"matmul max {g.matmul_efficiency:g} for {name}: {g.matmul_source}")


@click.command(name="list")
@click.argument("what", type=click.Choice(["gpus", "models", "links", "topologies", "strategies", "backends",
                                           "frameworks"]))
def list_(what: str) -> None:
    """List the names scenario files can use."""
    console = Console()
    if what == "gpus":
        _print_gpus(console)
        return
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
        table = Table("name", "kind", "line rate Gb/s", "efficiency", "latency us", "transport")
        for name in catalog.list_links():
            link = catalog.get_link(name)
            table.add_row(name, link.kind, f"{link.line_rate_gbps:g}", f"{link.efficiency:.3f}", f"{link.latency_us:g}",
                          link.transport or "-")
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
