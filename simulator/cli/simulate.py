"""``clustersim simulate`` and ``clustersim topology``: one scenario, simulated or drawn.

``simulate`` prints the report (:func:`print_report`: the headline numbers, where an
iteration's time goes, the most utilized resources, where the lost speedup goes, the
bottleneck and what was calibrated), or writes the result as JSON and a Chrome trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..engine import build
from ..engine import simulate as run_simulation
from ..errors import ClusterSimError, check_output_path, figure_format, save_figure, strict_json, write_atomic
from ..layer_report import by_kind, layer_rows
from ..loading import DEFAULT_SCENARIO_NAME, load_scenario
from ..results import SimResult, resource_label
from .plain import Block, Grid, Line, print_blocks
from .runner import located

if TYPE_CHECKING:  # rich is imported where a report is printed: `simulate -q` and --json runs skip it
    from rich.console import Console


@click.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field, e.g. cluster.nodes=4.")
@click.option("--json", "json_out", metavar="FILE", help="Write the result as JSON to FILE ('-' for stdout).")
@click.option("--trace", "trace_out", metavar="FILE", help="Write a Chrome trace-event JSON (open it in Perfetto).")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the table.")
@click.option("--layers", "layers_shown", type=click.IntRange(min=0), default=None, is_flag=False, flag_value=20,
              metavar="[N]", help="Also print the N most expensive layers (default 20) and the time per layer kind.")
def simulate(
    scenario: Path | None, overrides: tuple[str, ...], json_out: str | None, trace_out: str | None, quiet: bool,
    layers_shown: int | None,
) -> None:
    """Simulate SCENARIO (YAML or JSON); with no file, the embedded default scenario."""
    if json_out == "-" and trace_out == "-":
        raise ClusterSimError("--json - and --trace - cannot both write to stdout; give one of them a file")
    check_output_path(json_out, "--json")
    check_output_path(trace_out, "--trace")
    loaded = load_scenario(scenario, overrides)
    source = str(scenario) if scenario else DEFAULT_SCENARIO_NAME
    result = located(source, run_simulation, loaded, record_timeline=trace_out is not None)
    timeline = result.extra.pop("timeline") if trace_out else {}
    # per-layer rows of a data-parallel rank (a transformer-parallel step reports its own)
    rows = [] if loaded.training.parallelism is not None else located(source, layer_rows, loaded)
    # Always serialized, so a non-finite result is an error, never a table or invalid JSON.
    text = json_text({**result.to_dict(), "layers": rows}, needed=json_out is not None)  # SimResult + per-layer times
    if trace_out:
        from ..trace import chrome_trace  # only with --trace

        trace_text = strict_json(chrome_trace(timeline))
        if trace_out == "-":
            click.echo(trace_text)
        else:
            write_atomic(trace_out, trace_text, "--trace")
    if json_out == "-":
        click.echo(text)
    elif json_out:
        write_atomic(json_out, text + "\n", "--json")
    if not quiet and json_out != "-" and trace_out != "-":
        print_report(result, str(scenario) if scenario else DEFAULT_SCENARIO_NAME)
        if layers_shown is not None:
            from rich.console import Console

            print_layers(Console(), rows, layers_shown)


def json_text(data: dict[str, Any], needed: bool) -> str:
    """The result as JSON (sorted keys, indented), or, when ``needed`` is false, the
    check alone that it can be written (no NaN or infinity), by the C encoder (which
    json uses only without indentation) first: on any error the full serialization runs and raises
    the same error as ever; without one, "" (nothing will be written)."""
    if not needed:
        try:
            strict_json(data, sort_keys=True)
            return ""
        except Exception:  # noqa: BLE001 - the full form below raises it as it always did
            pass
    return strict_json(data, sort_keys=True, indent=2)


def print_layers(console: Console, rows: list[dict[str, Any]], shown: int) -> None:
    """The ``shown`` most expensive layers of one rank, then the totals per layer kind."""
    from rich.table import Table

    table = Table(title=f"one rank's compute: the {min(shown, len(rows))} most expensive of {len(rows)} layers")
    for header in ("layer", "kind", "algorithm", "forward ms", "backward ms", "share"):
        table.add_column(header, justify="right" if header.endswith(("ms", "share")) else "left")
    for row in sorted(rows, key=lambda r: -(r["forward_ms"] + r["backward_ms"]))[:shown]:
        # a fork's producer: its backward includes summing its readers' gradients
        note = f"sum x{row['readers']}" if row.get("readers", 1) > 1 else ""
        table.add_row(row["layer"], row["kind"], row["algorithm"] or note, f"{row['forward_ms']:.3f}",
                      f"{row['backward_ms']:.3f}", f"{row['share']:.1%}")
    console.print(table)
    kinds = Table(title="per layer kind")
    for header in ("kind", "layers", "ms", "share"):
        kinds.add_column(header, justify="left" if header == "kind" else "right")
    for kind, count, ms, share in by_kind(rows):
        kinds.add_row(kind, str(count), f"{ms:.2f}", f"{share:.1%}")
    console.print(kinds)


@click.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field, e.g. cluster.nodes=4.")
@click.option("--png", "png", required=True, metavar="FILE", help="Write the drawing to FILE (PNG).")
def topology(scenario: Path | None, overrides: tuple[str, ...], png: str) -> None:
    """Draw the cluster of SCENARIO: GPUs, switches and NICs labeled, link speeds shown."""
    from topologies.draw import draw_cluster  # matplotlib is only loaded to draw

    figure_format(png, "--png")  # before any work: a bad suffix or folder is refused at once
    loaded = load_scenario(scenario, overrides)
    sim = located(str(scenario) if scenario else DEFAULT_SCENARIO_NAME, build, loaded)
    figure = draw_cluster(sim.cluster.graph, title=loaded.name)
    save_figure(figure, png, "--png")
    click.echo(f"wrote {png}: {sim.cluster.graph.number_of_nodes()} nodes, "
               f"{sim.cluster.graph.number_of_edges() // 2} links")
    library = sim.context.collectives
    if library is not None:
        click.echo(f"collectives: {library.backend.name}, {len(library.rings)} channel(s); rings (one per channel):")
        for c, ring in enumerate(library.rings):
            click.echo(f"  channel {c}: " + " -> ".join(str(g) for g in ring) + f" -> {ring[0]}")


def print_report(result: SimResult, source: str) -> None:
    if "llm" in result.extra:
        from rich.console import Console

        from ..llm.report import print_llm_report

        print_llm_report(Console(), result, source)
        return
    print_blocks(report_blocks(result, source))


def _accumulated(result: SimResult) -> str:
    """' x N accumulated' where each iteration sums N micro-batches per GPU."""
    steps = result.global_batch // max(result.total_gpus * result.batch_per_gpu, 1)
    return f" x {steps} accumulated" if steps > 1 else ""


def report_blocks(result: SimResult, source: str) -> list[Block]:
    """The report: the headline numbers, where an iteration's time goes, the most utilized
    resources, where the lost speedup goes, the bottleneck and what was calibrated."""
    unit = result.sample_unit
    # The title on its own line: a table title wraps to the table's width.
    blocks: list[Block] = [Line([(f"clustersim {result.version} - {result.scenario} ({source})", True)])]
    blocks.append(Grid([("", "left"), ("", "right")], [
        ("cluster", f"{result.nodes} x {result.gpus_per_node} {result.gpu} = {result.total_gpus} GPUs"),
        ("workload", f"{result.model}, batch {result.batch_per_gpu}/GPU{_accumulated(result)} "
                     f"({result.global_batch} global)"),
        ("strategy", f"{result.strategy} ({result.mode} path)"),
        ("iteration time", f"{result.iteration_time_s * 1e3:.2f} ms"),
        ("throughput", f"{result.throughput_samples_per_s:,.1f} {unit}/s"),
        ("speedup over 1 GPU", f"{result.speedup:.2f}x"),
        ("scaling efficiency", f"{result.scaling_efficiency:.1%}"),
    ], show_header=False, bold_first=True))

    parts = Grid([("part", "left"), ("ms", "right"), ("share", "right")], title="where one iteration's time goes")
    labels = {"compute_s": "compute", "interference_s": "compute slowed by collectives",
              "bucket_copy_s": "gradient bucket copies",
              "exposed_communication_s": "exposed communication", "input_wait_s": "input pipeline wait",
              "input_copy_s": "batch copied from host", "idle_s": "idle"}
    for key, label in labels.items():
        if key not in result.breakdown:  # (the optional parts, where they occur)
            continue
        value = result.breakdown[key]
        parts.rows.append((label, f"{value * 1e3:.2f}", f"{value / result.iteration_time_s:.1%}"))
    parts.rows.append(
        ("(communication in flight, overlapped or not)", f"{result.breakdown['communication_s'] * 1e3:.2f}", "")
    )
    blocks.append(parts)

    blocks.append(Grid([("resource", "left"), ("kind", "left"), ("utilization", "right")],
                       [(u.resource, u.kind, f"{u.utilization:.1%}") for u in result.utilization],
                       title="most utilized resources"))
    if result.attribution:
        lost_speedup = result.attribution["lost_speedup"]
        lost = Grid([("cause", "left"), ("ms / iteration", "right"), ("speedup lost", "right")],
                    title=f"where the lost speedup goes ({lost_speedup:.2f} of {result.total_gpus})")
        for cause, value in result.attribution["seconds"].items():
            if abs(value) > 1e-9:
                lost.rows.append((cause.replace("_", " "), f"{value * 1e3:.2f}",
                                  f"{result.attribution['speedup'][cause]:.2f}"))
        blocks.append(lost)
    b = result.bottleneck
    blocks.append(Line([("bottleneck: ", False), (resource_label(b.resource, b.kind), True),
                        (f" at {b.utilization:.1%} utilization", False)]))
    blocks += calibration_blocks(result.extra.get("calibration"), result.extra.get("measured_allreduce"))
    return blocks


def calibration_blocks(report: dict[str, Any] | None, measured: dict[str, Any] | None = None) -> list[Block]:
    """Which numbers came from the calibration profile (or a measured nccl-tests run) and
    which are estimates."""
    if report is None and measured is not None:
        unchecked = "" if measured["world_size_checked"] else "; its world size is not checked: it lists no ranks"
        return [Line([("calibration: none - compute is a roofline estimate; allreduce times measured: ", False),
                      (f"{measured['path']} ({measured['sizes']} sizes, training.collectives.measured{unchecked})",
                       True)], markup=True)]
    if report is None:
        return [Line([("calibration: none - every number is a roofline/network estimate", False)], markup=True)]
    layers = (f"{report['layers_calibrated']} calibrated ({report['layer_times']}), "
              f"{report['layers_estimated']} estimated")
    if report["estimated_layer_names"]:
        layers += ": " + ", ".join(report["estimated_layer_names"])
    return [Grid([("", "left"), ("", "left")], [
        ("device", report["device"]), ("layer times", layers), ("optimizer step", report["optimizer_step"]),
        ("communication", report["communication"])], title=f"calibrated vs estimated ({report['profile']})",
        show_header=False, bold_first=True)]
