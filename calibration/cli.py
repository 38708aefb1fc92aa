"""``clustersim probe``, ``calibrate``, ``measure``, ``selfcheck`` and ``import-trace`` (also ``python -m calibration``).

Registered under the ``clustersim.commands`` entry-point group, so the simulator's CLI
finds them without importing this package. torch is imported only when ``probe`` or ``measure`` runs:
``calibrate`` (a refit from raw samples) and ``import-trace`` (a profiler trace read as JSON) work without it.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from simulator.cli.runner import run_group  # the console script's error funnel, without its commands
from simulator.errors import CalibrationError, ClusterSimError, write_atomic
from simulator.loading import did_you_mean
from simulator.profile import load_profile

#: Exit status of a command stopped by Ctrl-C (128 + SIGINT), as the shell reports it.
INTERRUPTED_EXIT = 130


def _ints(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise click.BadParameter(f"expected positive integers, got {text!r}")
    return values


def _command_line() -> str:
    prog = "python -m calibration" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name
    return " ".join([prog, *(shlex.quote(a) for a in sys.argv[1:])])


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Profile file to write (JSON).")
@click.option("--quick", is_flag=True, help="A small subset: alexnet at batch 1, 2; allreduce 4 KB-4 MB on 2 processes.")
@click.option("--models", help="Comma-separated zoo models to time per layer (default: preset's).")
@click.option("--batches", help="Comma-separated batch sizes (default: preset's).")
@click.option("--repeats", type=click.IntRange(1), help="Timed repeats per measurement.")
@click.option("--procs", type=click.IntRange(2), help="Local processes for collectives (default: GPUs or CPU cores).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Device to time (default: cuda when present).")
@click.option("--catalog-gpu", help="Catalog GPU name of this device when it is not recognized automatically.")
@click.option("--notes", default="", help="Free text stored in the profile's provenance.")
@click.option("--no-progress", is_flag=True, help="Do not draw the progress bar.")
def probe(output: Path, quick: bool, models: str | None, batches: str | None, repeats: int | None,
          procs: int | None, device: str | None, catalog_gpu: str | None, notes: str, no_progress: bool) -> None:
    """Measure this machine (CUDA if present, else the CPU) and write a profile.

    Under torchrun (RANK, WORLD_SIZE, MASTER_ADDR set) the collectives span every
    process and host; rank 0 measures the rest and writes the profile. Ctrl-C keeps
    what was measured so far.
    """
    try:
        from . import probe as probe_module
    except ImportError as exc:
        raise ClusterSimError(
            f"`clustersim probe` needs torch ({exc}); install it with `pip install clustersim[probe]`"
        ) from None
    from simulator import catalog, zoo

    model_list = models.split(",") if models else None
    for name in model_list or []:
        if name not in zoo.list_models():
            raise ClusterSimError(f"--models: unknown model {name!r}{did_you_mean(name, zoo.list_models())}; "
                                  f"known: {', '.join(zoo.list_models())}")
    if catalog_gpu is not None and catalog_gpu not in catalog.list_gpus():
        raise ClusterSimError(f"--catalog-gpu: unknown GPU {catalog_gpu!r}{did_you_mean(catalog_gpu, catalog.list_gpus())}; "
                              "see `clustersim list gpus`")
    config = probe_module.preset(
        quick, models=model_list, batches=_ints(batches), repeats=repeats, max_procs=procs, device=device,
        catalog_gpu=catalog_gpu, notes=notes or None,
    )
    command = _command_line()
    try:
        profile = probe_module.run_probe(config, output, command, show_progress=not no_progress, echo=click.echo)
    except ValueError as exc:
        raise ClusterSimError(f"probe: {exc}") from None
    if profile is not None and profile.provenance.interrupted_during is not None:
        # Ctrl-C: what was measured is written (above); the exit status says it was cut
        # short, 130 like every other interrupted command.
        click.echo(f"interrupted: the partial profile is in {output}", err=True)
        sys.exit(INTERRUPTED_EXIT)


@click.command()
@click.argument("raw", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Profile file to write.")
def calibrate(raw: Path, output: Path) -> None:
    """Refit every model of RAW (a profile, fits optional) from its raw samples."""
    from datetime import UTC, datetime

    from simulator import __version__

    from .fit import refit

    profile = load_profile(raw)
    try:
        fitted = refit(profile)
    except ValueError as exc:
        raise CalibrationError(f"{raw}: cannot fit: {exc}") from None
    # The samples and their provenance stay; the notes say the fits are newer than the probe.
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"clustersim calibrate {shlex.quote(str(raw))} -o {shlex.quote(str(output))}"
    note = f"Fits recomputed from the raw samples on {when} by `{command}` (clustersim {__version__})."
    notes = f"{profile.provenance.notes.rstrip()} {note}".strip()
    fitted = fitted.model_copy(update={"provenance": fitted.provenance.model_copy(update={"notes": notes})})
    write_atomic(output, fitted.to_json(), "-o")  # no half-written profile on a full disk
    fits = sum(len(m.fits) for m in fitted.models)
    colls = len(fitted.collectives.fits) if fitted.collectives else 0
    click.echo(f"wrote {output}: {fits} layer fits, {colls} collective fits")


@click.command()
@click.option("--model", required=True, help="Zoo model with a torch definition (alexnet, vgg16, resnet18/34/50).")
@click.option("--procs", type=click.IntRange(1), default=2, show_default=True,
              help="Local data-parallel processes (one GPU each on CUDA).")
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True, help="Batch per process.")
@click.option("--iterations", type=click.IntRange(1), default=10, show_default=True, help="Timed iterations.")
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True, help="Untimed iterations first.")
@click.option("--threads", type=click.IntRange(1), help="torch threads per process (default: cores // procs).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Device (default: cuda when enough GPUs).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Measured-runs CSV to append to (created with its header if absent).")
@click.option("--profile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Calibration profile the row's scenario points at (default on the CPU: the shipped CPU profile).")
def measure(model: str, procs: int, batch: int, iterations: int, warmup: int, threads: int | None,
            device: str | None, output: Path, profile: Path | None) -> None:
    """Time a real DDP training run (gloo on CPU, NCCL on GPUs) and append it as a measured case.

    The row (metric throughput_samples_per_s) and its scenario file (in a folder next to
    the CSV, `calibration:` = the profile) can then be checked with `clustersim validate`.
    """
    try:
        from . import measure as measure_module
    except ImportError as exc:
        raise ClusterSimError(
            f"`clustersim measure` needs torch ({exc}); install it with `pip install clustersim[probe]`"
        ) from None
    from . import models as torch_models

    if model not in torch_models.MODELS:
        raise ClusterSimError(f"--model: no torch definition of {model!r}; measurable: {', '.join(torch_models.MODELS)}")
    config = measure_module.MeasureConfig(model=model, procs=procs, batch=batch, iterations=iterations,
                                          warmup=warmup, threads=threads, device=device)
    try:
        measure_module.measure(config, output, profile, _command_line(), echo=click.echo)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ClusterSimError(f"measure: {exc}") from None


@click.command(name="import-trace")
@click.argument("traces", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", help="Zoo model the traces are of (`clustersim list models`).")
@click.option("--model-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Model file (README \"Bring your own model\") the traces are of, instead of --model.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Profile file to write (JSON).")
@click.option("--device-name", help="Device name to record (default: the trace's GPU, else 'CPU of host H').")
@click.option("--catalog-gpu", help="Catalog GPU the traced GPU is, when its name is not recognized.")
@click.option("--threads", type=click.IntRange(1), help="torch threads of the traced CPU process (default: --cpu-count).")
@click.option("--cpu-count", type=click.IntRange(1), help="Cores of the traced CPU host (default: this machine's).")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]),
              help="Optimizer the trace's step ran (default: from its Optimizer.step annotation; SGD -> momentum).")
@click.option("--min-matched", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of the model's layers that must match an operator, else the trace is of another model.")
@click.option("--notes", default="", help="Free text stored in the profile's provenance.")
def import_trace(traces: tuple[Path, ...], model: str | None, model_file: Path | None, output: Path,
                 device_name: str | None, catalog_gpu: str | None, threads: int | None, cpu_count: int | None,
                 optimizer: str | None, min_matched: float, notes: str) -> None:
    """Read per-layer times from PyTorch profiler (Kineto) TRACES into a profile.

    Each TRACE is a trace of a few training iterations (`prof.export_chrome_trace`,
    record_shapes=True, prof.step() per iteration); several traces at different batch
    sizes give a fit over batch. Forward operators are matched to the model's layers by
    shape, backward nodes by autograd sequence number; CPU op time, or device kernel time
    on GPU traces; the median over profiler steps. The share of step time no layer gets
    is printed and stored in the profile's provenance. `calibration: OUTPUT` in a
    scenario then uses it like a probe's profile.

    A command of its own, not `calibrate --from-trace`: `calibrate` refits a profile
    from the raw samples it already holds (a profile in, the same profile out, nothing
    else to say), while this one reads a foreign format and needs a model and facts the
    trace lacks (threads, cores, optimizer); as options of `calibrate` they would apply
    to one of its two modes only. Like the other commands it is published under the
    `clustersim.commands` entry points and needs no torch.
    """
    from simulator import zoo
    from simulator.loading import load_model_file

    from .kineto import import_trace as read_trace
    from .kineto_profile import build_profile
    from .kineto_trace import load_trace

    if (model is None) == (model_file is None):
        raise click.UsageError("give the model the traces are of: --model NAME or --model-file FILE")
    if model_file is not None:
        net = load_model_file(model_file, register=False)
    else:
        known = [*zoo.list_models(), *zoo.registered_models()]
        try:
            net = zoo.get_model(model)  # type: ignore[arg-type]
        except KeyError:
            raise ClusterSimError(f"--model: unknown model {model!r}{did_you_mean(model, known)}; "
                                  "see `clustersim list models`, or give --model-file") from None
    if catalog_gpu is not None:
        from simulator import catalog

        if catalog_gpu not in catalog.list_gpus():
            raise ClusterSimError(f"--catalog-gpu: unknown GPU {catalog_gpu!r}{did_you_mean(catalog_gpu, catalog.list_gpus())}; "
                                  "see `clustersim list gpus`")
    imports = [read_trace(load_trace(path), net, min_matched=min_matched) for path in traces]
    profile, warnings = build_profile(imports, command=_command_line(), device_name=device_name,
                                      catalog_gpu=catalog_gpu, threads=threads, cpu_count=cpu_count,
                                      optimizer=optimizer, notes=notes)
    write_atomic(output, profile.to_json(), "-o")
    from .kineto import summary

    for imported in imports:
        click.echo(summary(imported))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    layers = {s.layer for s in profile.models[0].samples}
    click.echo(f"wrote {output}: {net.name}, {len(layers)} layers timed at batch(es) "
               f"{', '.join(map(str, profile.models[0].batches))} ({profile.device_label})")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def group() -> None:
    """Calibrate clustersim from real hardware."""


from .selfcheck import command as selfcheck  # noqa: E402 - defined with its logic; torch-free to import

group.add_command(probe)
group.add_command(calibrate)
group.add_command(measure)
group.add_command(selfcheck)
group.add_command(import_trace)


def main(argv: list[str] | None = None) -> None:
    """``python -m calibration``: user errors exit 2 with one message, no traceback."""
    run_group(group, argv, "python -m calibration")
