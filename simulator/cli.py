"""The ``clustersim`` command line.

Every user error (bad file, unknown key, impossible value, unknown name) is printed as
one ``error:`` paragraph naming the file and field, with exit code 2 and no traceback.
"""

from __future__ import annotations

import os
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import catalog, sweep_cli, zoo
from .advise import resource_label
from .engine import simulate as run_simulation
from .errors import (
    ClusterSimError, check_output_path, excerpt, figure_format, os_error_message, save_figure, strict_json,
    write_atomic,
)
from .loading import DEFAULT_SCENARIO_NAME, format_validation_error, load_scenario
from .results import SimResult
from .scenario import ALLOW_LARGE_ENV
from .sync import SYNC_STRATEGIES
from .trace import chrome_trace

#: Set to 1 to see the traceback of an internal error instead of its one-line message.
DEBUG_ENV = "CLUSTERSIM_DEBUG"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clustersim")
@click.option("--allow-large", is_flag=True,
              help=f"Lift the safeguard limits on counts (nodes, GPUs, iterations, sweep runs...); "
                   f"same as {ALLOW_LARGE_ENV}=1.")
def cli(allow_large: bool) -> None:
    """Simulate data-parallel deep-learning training on GPU clusters."""
    if allow_large:
        os.environ[ALLOW_LARGE_ENV] = "1"  # inherited by sweep worker processes


@cli.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field, e.g. cluster.nodes=4.")
@click.option("--json", "json_out", metavar="FILE", help="Write the result as JSON to FILE ('-' for stdout).")
@click.option("--trace", "trace_out", metavar="FILE", help="Write a Chrome trace-event JSON (open it in Perfetto).")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the table.")
def simulate(
    scenario: Path | None, overrides: tuple[str, ...], json_out: str | None, trace_out: str | None, quiet: bool
) -> None:
    """Simulate SCENARIO (YAML or JSON); with no file, the embedded default scenario."""
    if json_out == "-" and trace_out == "-":
        raise ClusterSimError("--json - and --trace - cannot both write to stdout; give one of them a file")
    check_output_path(json_out, "--json")
    check_output_path(trace_out, "--trace")
    loaded = load_scenario(scenario, overrides)
    source = str(scenario) if scenario else DEFAULT_SCENARIO_NAME
    result = located(source, run_simulation, loaded, record_timeline=trace_out is not None)
    timeline = result.extra.pop("timeline") if trace_out else None
    # Always serialized, so a non-finite result is an error, never a table or invalid JSON.
    text = strict_json(result.to_dict(), sort_keys=True, indent=2)  # = SimResult.to_json(), strict
    if trace_out:
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


@cli.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a field, e.g. cluster.nodes=4.")
@click.option("--png", "png", required=True, metavar="FILE", help="Write the drawing to FILE (PNG).")
def topology(scenario: Path | None, overrides: tuple[str, ...], png: str) -> None:
    """Draw the cluster of SCENARIO: GPUs, switches and NICs labeled, link speeds shown."""
    from topologies.draw import draw_cluster  # matplotlib is only loaded to draw

    from .engine import build

    figure_format(png, "--png")  # before any work: a bad suffix or folder is refused at once
    loaded = load_scenario(scenario, overrides)
    sim = located(str(scenario) if scenario else DEFAULT_SCENARIO_NAME, build, loaded)
    figure = draw_cluster(sim.cluster.graph, title=loaded.name)
    save_figure(figure, png, "--png")
    click.echo(f"wrote {png}: {sim.cluster.graph.number_of_nodes()} nodes, {sim.cluster.graph.number_of_edges() // 2} links")
    library = sim.context.collectives
    if library is not None:
        click.echo(f"collectives: {library.backend.name}, {len(library.rings)} channel(s); rings (one per channel):")
        for c, ring in enumerate(library.rings):
            click.echo(f"  channel {c}: " + " -> ".join(str(g) for g in ring) + f" -> {ring[0]}")


@cli.command()
@click.argument("kind", type=click.Choice(["scenario", "sweep"]), default="scenario")
def schema(kind: str) -> None:
    """Print the JSON Schema of scenario files (default) or sweep files.

    The same text is committed as schemas/scenario.schema.json and
    schemas/sweep.schema.json; name one in a YAML file's first line for completion and
    checking in editors: `# yaml-language-server: $schema=../schemas/scenario.schema.json`.
    """
    from .editor_schema import schema_text

    click.echo(schema_text(kind), nl=False)


@cli.command(name="list")
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
        from topologies import FABRICS, SERVER_LAYOUTS

        table = Table("name", "role", "description")
        for name, fn in sorted(SERVER_LAYOUTS.items()):
            table.add_row(name, "cluster.server.layout", _summary(fn.__doc__))
        for name, fn in sorted(FABRICS.items()):
            same = [other for other, f in sorted(FABRICS.items()) if f is fn and other < name]
            table.add_row(name, "cluster.fabric.topology",
                          f"The same as {same[0]}." if same else _summary(fn.__doc__))
    elif what == "backends":
        from .collective_cost import get_backend, list_backends

        table = Table("name", "role", "description", "source")
        for name in list_backends():
            b = get_backend(name)
            table.add_row(name, "training.collectives.backend", b.description, b.source)
    elif what == "frameworks":
        from .frameworks import get_preset, list_frameworks

        table = Table("name", "role", "description")
        for name in list_frameworks():
            table.add_row(name, "training.framework", " ".join(str(get_preset(name).get("description", "")).split()))
    else:
        table = Table("name", "description")
        for name, cls in sorted(SYNC_STRATEGIES.items()):
            table.add_row(name, _summary(cls.__doc__))
    console.print(table)


def located(source: str, fn, *args, **kwargs):
    """Call ``fn``; a user error it raises (building or running the scenario) is
    prefixed with the scenario's file, so every message names FILE: field."""
    try:
        return fn(*args, **kwargs)
    except ClusterSimError as exc:
        message = str(exc)
        if message.startswith(source):
            raise
        located_exc = type(exc)(f"{source}: {message}")
        raise located_exc from None


def _summary(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line, without reST markup
    (``:data:`NAME``` -> NAME, double backquotes dropped)."""
    text = " ".join((doc or "").strip().split("\n\n")[0].split())
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)



def print_report(result: SimResult, source: str) -> None:
    console = Console()
    unit = result.sample_unit
    # The title on its own line: a table title wraps to the table's width.
    console.print(Text(f"clustersim {result.version} - {result.scenario} ({source})", style="bold"), soft_wrap=True)
    head = Table(show_header=False)
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_row("cluster", f"{result.nodes} x {result.gpus_per_node} {result.gpu} = {result.total_gpus} GPUs")
    head.add_row("workload", f"{result.model}, batch {result.batch_per_gpu}/GPU ({result.global_batch} global)")
    head.add_row("strategy", f"{result.strategy} ({result.mode} path)")
    head.add_row("iteration time", f"{result.iteration_time_s * 1e3:.2f} ms")
    head.add_row("throughput", f"{result.throughput_samples_per_s:,.1f} {unit}/s")
    head.add_row("speedup over 1 GPU", f"{result.speedup:.2f}x")
    head.add_row("scaling efficiency", f"{result.scaling_efficiency:.1%}")
    console.print(head)

    parts = Table(title="where one iteration's time goes")
    parts.add_column("part")
    parts.add_column("ms", justify="right")
    parts.add_column("share", justify="right")
    labels = {"compute_s": "compute", "exposed_communication_s": "exposed communication", "idle_s": "idle"}
    for key, label in labels.items():
        value = result.breakdown[key]
        parts.add_row(label, f"{value * 1e3:.2f}", f"{value / result.iteration_time_s:.1%}")
    parts.add_row(
        "(communication in flight, overlapped or not)", f"{result.breakdown['communication_s'] * 1e3:.2f}", ""
    )
    console.print(parts)

    util = Table(title="most utilized resources")
    util.add_column("resource")
    util.add_column("kind")
    util.add_column("utilization", justify="right")
    for u in result.utilization:
        util.add_row(u.resource, u.kind, f"{u.utilization:.1%}")
    console.print(util)
    if result.attribution:
        lost = Table(title=f"where the lost speedup goes ({result.attribution['lost_speedup']:.2f} of {result.total_gpus})")
        lost.add_column("cause")
        lost.add_column("ms / iteration", justify="right")
        lost.add_column("speedup lost", justify="right")
        for cause, value in result.attribution["seconds"].items():
            if abs(value) > 1e-9:
                lost.add_row(cause.replace("_", " "), f"{value * 1e3:.2f}", f"{result.attribution['speedup'][cause]:.2f}")
        console.print(lost)
    b = result.bottleneck
    console.print(Text.assemble("bottleneck: ", (resource_label(b.resource, b.kind), "bold"),
                                f" at {b.utilization:.1%} utilization"), soft_wrap=True)
    print_calibration(console, result.extra.get("calibration"))


def print_calibration(console: Console, report: dict | None) -> None:
    """Which numbers came from the calibration profile and which are estimates."""
    if report is None:
        console.print("calibration: none - every number is a roofline/network estimate")
        return
    table = Table(title=f"calibrated vs estimated ({report['profile']})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    layers = f"{report['layers_calibrated']} calibrated ({report['layer_times']}), {report['layers_estimated']} estimated"
    if report["estimated_layer_names"]:
        layers += ": " + ", ".join(report["estimated_layer_names"])
    for label, value in (("device", report["device"]), ("layer times", layers),
                         ("optimizer step", report["optimizer_step"]), ("communication", report["communication"])):
        table.add_row(label, value)
    console.print(table)


def _register_plugin_commands() -> None:
    """Add commands that optional packages publish under the ``clustersim.commands``
    entry-point group (``calibration`` does, for ``probe`` and ``calibrate``), so the
    simulator never imports them. A command whose extra is not installed is replaced by
    one that says which extra to install."""
    for entry in entry_points(group="clustersim.commands"):
        if entry.name in cli.commands:
            continue
        try:
            command = entry.load()
        except ImportError as exc:
            command = _missing_extra_command(entry.name, exc)
        cli.add_command(command, entry.name)


def _missing_extra_command(name: str, exc: ImportError) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def unavailable(args: tuple[str, ...]) -> None:
        raise ClusterSimError(f"`clustersim {name}` needs an optional extra that is not installed ({exc})")

    return unavailable


cli.add_command(sweep_cli.sweep)
cli.add_command(sweep_cli.plot)
from . import advise_cli  # noqa: E402
cli.add_command(advise_cli.advise)
from . import validation_cli  # noqa: E402
cli.add_command(validation_cli.validate)
from . import collectives_report  # noqa: E402
cli.add_command(collectives_report.collectives)
_register_plugin_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors exit 2 with one message, no traceback."""
    run_group(cli, argv, "clustersim")


def _fail(message: str, code: int) -> None:
    """Print one ``error:`` line (whitespace and newlines folded) and exit."""
    click.echo("error: " + " ".join(str(message).split()), err=True)
    sys.exit(code)


def run_group(group: click.Group, argv: list[str] | None, prog_name: str) -> None:
    """Run a click group so that every error is one ``error:`` line, never a traceback
    (shared with ``python -m calibration``): user errors, bad options and OS errors
    (``error: PATH: reason``) exit 2; anything else is a bug, reported on one line with
    exit code 1 (``CLUSTERSIM_DEBUG=1`` shows its traceback)."""
    from pydantic import ValidationError

    try:
        group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except ClusterSimError as exc:
        _fail(str(exc), exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line, not the usage text
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(exc.format_message() + hint, exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except OSError as exc:
        _fail(os_error_message(exc), 2)
    except ValidationError as exc:
        _fail(format_validation_error(exc), 2)
    except ValueError as exc:
        if "null byte" not in str(exc):  # os.stat and open refuse a NUL in a path (click checks paths)
            _internal_error(exc)
        _fail("a path argument contains a NUL byte", 2)
    except (RecursionError, MemoryError) as exc:
        _fail(f"input too large or nested too deeply ({type(exc).__name__})", 2)
    except Exception as exc:  # noqa: BLE001 - the last net: one line, never a traceback
        _internal_error(exc)


def _internal_error(exc: Exception) -> None:
    if os.environ.get(DEBUG_ENV):
        raise exc
    _fail(f"internal error (a bug; please report it - {DEBUG_ENV}=1 shows the traceback): "
          f"{type(exc).__name__}: {excerpt(str(exc), 300)}", 1)


if __name__ == "__main__":
    main()
