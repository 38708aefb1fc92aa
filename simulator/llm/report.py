"""The terminal report of a transformer-parallel step (``clustersim simulate``)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..results import SimResult

BREAKDOWN_LABELS = {
    "compute_s": "compute",
    "recompute_s": "recomputation",
    "tp_communication_s": "tensor-parallel collectives",
    "cp_communication_s": "ring attention (exposed)",
    "ep_communication_s": "expert all-to-all",
    "pipeline_wait_s": "pipeline bubble + transfers",
    "fsdp_gather_wait_s": "ZeRO-3 parameter gathers (exposed)",
    "dp_exposed_s": "data-parallel reduce (exposed)",
    "optimizer_s": "optimizer step",
    "param_gather_s": "parameter all-gather",
}


def print_llm_report(console: Console, result: SimResult, source: str) -> None:
    llm = result.extra["llm"]
    layout = llm["layout"]
    console.print(Text(f"clustersim {result.version} - {result.scenario} ({source})", style="bold"), soft_wrap=True)
    head = Table(show_header=False)
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_row("cluster", f"{result.nodes} x {result.gpus_per_node} {result.gpu} = {result.total_gpus} GPUs")
    head.add_row("model", f"{result.model} ({llm['parameters'] / 1e9:.2f} B parameters), "
                 f"{layout['sequence_length']}-token sequences")
    head.add_row("parallelism", f"tensor {layout['tensor']} x pipeline {layout['pipeline']} x data {layout['data']}"
                 + (f" x context {layout['context']}" if layout["context"] > 1 else "")
                 + f"; {layout['schedule']}" + (f" (v={layout['virtual_stages']})" if layout["virtual_stages"] > 1
                                               else "")
                 + f", ZeRO {layout['zero_stage']}, recompute {layout['recompute']}"
                 + (", sequence parallel" if layout["sequence_parallel"] else ""))
    head.add_row("batch", f"{layout['global_batch']} sequences = {layout['micro_batches']} micro-batches of "
                 f"{layout['micro_batch']} per pipeline")
    head.add_row("step time", f"{llm['step_time_s']:.3f} s")
    head.add_row("tokens/s", f"{llm['tokens_per_s']:,.0f} ({llm['tokens_per_s_per_gpu']:,.0f} per GPU)")
    head.add_row("MFU", f"{llm['mfu']:.1%} ({llm['model_tflops_per_gpu']:.0f} model TFLOP/s per GPU)")
    head.add_row("ideal pipeline bubble", f"{llm['ideal_bubble_fraction']:.1%}")
    console.print(head)
    parts = Table(title="where stage 0's step went")
    for header in ("", "s", "share"):
        parts.add_column(header, justify="left" if not header else "right")
    for key, label in BREAKDOWN_LABELS.items():
        value = result.breakdown.get(key, 0.0)
        if value:
            parts.add_row(label, f"{value:.3f}", f"{value / result.iteration_time_s:.1%}")
    console.print(parts)
    memory = Table(title="memory per GPU (GiB)")
    for header in ("stage", "model states", "activations", "logits", "workspace", "total"):
        memory.add_column(header, justify="right")
    for s, m in enumerate(llm["memory_gib_per_stage"]):
        memory.add_row(str(s), f"{m['model_states']:.1f}", f"{m['activations']:.1f}", f"{m['logits']:.1f}",
                       f"{m['workspace']:.1f}", f"{m['total']:.1f}")
    console.print(memory)
