"""Reading nccl-tests output (``all_reduce_perf`` and friends) as measurements.

nccl-tests (github.com/NVIDIA/nccl-tests) is what NCCL users run every day; its stdout
is the measurement they have. :func:`read_nccl_tests` turns one saved run into an
:class:`NcclTestsRun`: which collective, how many ranks on how many hosts, the devices,
and the time of every size, so ``clustersim collectives SCENARIO --nccl-tests FILE``
can print the prediction beside it.

What is read, and from where:

- **the collective**: an ``OP=FILE`` prefix the user gives; else nccl-tests' own
  ``# Collective test starting: all_reduce_perf`` line (newer versions); else the binary
  name in the file name (``all_reduce_perf``, ``all_gather``, ``reduce_scatter``,
  ``broadcast``). The table alone cannot tell an allreduce from a reduce-scatter (both
  ``sum``, root -1), so a file that says none of these is refused, naming the prefix.
- **ranks and hosts**: the ``#  Rank  N ... on HOST device D [BUS] NAME`` lines, which
  rank 0 prints for every rank (with MPI too): their count is the world size, their
  distinct hosts the node count. A file without them (output cut short) gives neither,
  and the caller says the world size was not checked.
- **times**: every table row (``size count type redop [root] time algbw busbw #wrong
  time algbw busbw #wrong``), laid out by the header line that names the columns (the
  ``root`` column came with nccl-tests 2.10). The out-of-place time is the measurement
  (nccl-tests' first block, what its busbw summary averages too); the in-place one is
  kept beside it. A size listed twice (runs appended to one file) gets the median.
  MPI launchers' line prefixes (``[1,0]<stdout>:``, ``[0]``) are stripped.
- **versions**: the ``nccl-tests version`` / ``NCCL version`` lines where printed.

Collectives the simulator does not model (``alltoall``, ``reduce``, ``sendrecv``,
``gather``, ``scatter``, ``hypercube``) are refused with one message.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ScenarioError, excerpt
from .safe_input import read_text_file

if TYPE_CHECKING:
    from .scenario import Scenario

#: A saved nccl-tests run is a few kB to a few hundred kB.
MAX_OUTPUT_BYTES = 4 * 2**20

#: nccl-tests binary stems (and the spellings users write) -> the simulator's names.
NCCL_TESTS_OPS = {
    "all_reduce": "allreduce", "allreduce": "allreduce",
    "all_gather": "allgather", "allgather": "allgather",
    "reduce_scatter": "reduce_scatter", "reducescatter": "reduce_scatter",
    "broadcast": "broadcast",
}
#: nccl-tests binaries whose collective the simulator does not model.
UNMODELLED = ("alltoall", "sendrecv", "hypercube", "gather", "scatter", "reduce")

_PREFIX = re.compile(r"^\s*(\[\d+(,\d+)*\](<stdout>|<stderr>)?:?\s?)+")
_RANK = re.compile(r"^#\s*Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)"
                   r"\s+device\s+\d+\s+\[[^\]]*\]\s+(.+?)\s*$")
_STARTING = re.compile(r"Collective test starting:\s*(\S+)")
_VERSION = re.compile(r"(nccl-tests version [^\n]*|NCCL version \S+)")


@dataclass(frozen=True)
class NcclTestsRun:
    """One nccl-tests run read from a file."""

    path: str
    op: str  # allreduce, allgather, reduce_scatter, broadcast
    world_size: int | None  # ranks listed in the file; None if it lists none
    nodes: int | None  # distinct hosts of those ranks
    devices: tuple[str, ...]  # device names, rank order
    versions: tuple[str, ...]  # nccl-tests / NCCL version lines as printed
    times_s: dict[int, float] = field(default_factory=dict)  # out-of-place time per size (bytes)
    in_place_times_s: dict[int, float] = field(default_factory=dict)


def split_op_prefix(spec: str) -> tuple[str | None, str]:
    """``("allreduce", "out.txt")`` from ``allreduce=out.txt``; ``(None, spec)`` without a
    known collective before the first ``=`` (a path may contain ``=`` itself)."""
    head, sep, tail = spec.partition("=")
    if sep and head.strip().lower() in NCCL_TESTS_OPS:
        return NCCL_TESTS_OPS[head.strip().lower()], tail
    if sep and head.strip().lower() in UNMODELLED:
        raise ScenarioError(f"--nccl-tests {spec}: {head.strip()} is not a collective the simulator models "
                            f"(choose from {', '.join(sorted(set(NCCL_TESTS_OPS.values())))})")
    return None, spec


def _op_from_name(name: str, where: str) -> str | None:
    """The collective a binary or file name names (``all_reduce_perf``), else None."""
    stem = name.lower().replace("-", "_")
    for key in sorted(NCCL_TESTS_OPS, key=len, reverse=True):  # reduce_scatter before reduce
        if ("_" in key and key in stem) or re.search(rf"(^|[^a-z]){key}([^a-z]|$)", stem):
            return NCCL_TESTS_OPS[key]
    for other in UNMODELLED:
        if re.search(rf"(^|[^a-z]){other}(_perf)?([^a-z]|$)", stem):
            raise ScenarioError(f"{where}: {other} is not a collective the simulator models "
                                f"(choose from {', '.join(sorted(set(NCCL_TESTS_OPS.values())))})")
    return None


def _columns(header: str) -> list[str] | None:
    """The column names of a table header line (``# size count type redop root time
    algbw busbw #wrong time ...``), or None if the line is not that header."""
    tokens = header.lstrip("#").split()
    if len(tokens) >= 6 and tokens[:2] == ["size", "count"] and "time" in tokens:
        return tokens
    return None


def _number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def parse_nccl_tests(text: str, source: str, op: str | None = None, default_op: str | None = None) -> NcclTestsRun:
    """An :class:`NcclTestsRun` from nccl-tests stdout ``text`` (``source`` names it in
    errors; ``op`` overrides what the file says; ``default_op`` is taken where it says
    nothing). Raises :class:`ScenarioError`."""
    lines = [_PREFIX.sub("", line) for line in text.splitlines()]
    if op is None:
        for line in lines:
            match = _STARTING.search(line)
            if match:
                op = _op_from_name(match.group(1), source)
                break
    if op is None:
        op = _op_from_name(Path(source).name, source) or default_op
    if op is None:
        raise ScenarioError(
            f"{source}: cannot tell which collective this nccl-tests output measured (no 'Collective test "
            f"starting' line, no binary name in the file name); name it: --nccl-tests allreduce={source}")

    ranks: dict[int, tuple[str, str]] = {}
    versions: list[str] = []
    columns: list[str] | None = None
    out_of_place: dict[int, list[float]] = {}
    in_place: dict[int, list[float]] = {}
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            rank = _RANK.match(stripped)
            if rank:
                ranks[int(rank.group(1))] = (rank.group(2), rank.group(3))
                continue
            found = _columns(stripped)
            if found is not None:
                columns = found
                continue
            version = _VERSION.search(stripped)
            if version and version.group(1) not in versions:
                versions.append(version.group(1))
            continue
        tokens = stripped.split()
        if not tokens[0].isdigit():
            continue  # NCCL INFO / WARN lines, launcher chatter
        if columns is None:
            raise ScenarioError(f"{source}: line {number}: a table row before nccl-tests' header line "
                                f"('#  size  count  type  redop ... time  algbw  busbw'); is the output complete?")
        if len(tokens) < columns.index("time") + 3:
            raise ScenarioError(f"{source}: line {number}: {excerpt(stripped, 60)} has {len(tokens)} columns, "
                                f"the header names {len(columns)}")
        size = int(tokens[0])
        if size < 1:
            continue  # nccl-tests prints 0-byte rows for sizes below one element per rank
        times = [i for i, name in enumerate(columns) if name == "time"]
        values = [_number(tokens[i]) if i < len(tokens) else None for i in times]
        if values[0] is None or values[0] <= 0:
            raise ScenarioError(f"{source}: line {number}: out-of-place time {excerpt(tokens[times[0]])} is not "
                                f"a positive number of microseconds")
        out_of_place.setdefault(size, []).append(values[0] * 1e-6)
        if len(values) > 1 and values[1] is not None and values[1] > 0:
            in_place.setdefault(size, []).append(values[1] * 1e-6)
    if not out_of_place:
        raise ScenarioError(f"{source}: no nccl-tests table rows (size, count, type, ..., time, algbw, busbw) found")
    hosts = {host for host, _ in ranks.values()}
    if ranks and sorted(ranks) != list(range(len(ranks))):
        raise ScenarioError(f"{source}: the '# Rank' lines list ranks {sorted(ranks)[:8]}..., not 0..{len(ranks) - 1}; "
                            f"is the output complete?")
    return NcclTestsRun(
        path=source, op=op, world_size=len(ranks) or None, nodes=len(hosts) or None,
        devices=tuple(ranks[r][1] for r in sorted(ranks)), versions=tuple(versions),
        times_s={s: statistics.median(t) for s, t in sorted(out_of_place.items())},
        in_place_times_s={s: statistics.median(t) for s, t in sorted(in_place.items())},
    )


def read_nccl_tests(spec: str) -> NcclTestsRun:
    """:func:`parse_nccl_tests` of the file ``spec`` names (``[OP=]PATH``)."""
    op, path = split_op_prefix(spec)
    text = read_text_file(path, limit=MAX_OUTPUT_BYTES, what="--nccl-tests")
    return parse_nccl_tests(text, path, op)


def measured_elsewhere(run: NcclTestsRun, world_size: int, nodes: int) -> bool:
    """Whether ``run`` lists its ranks and they are not ``world_size`` ranks on ``nodes``
    hosts (a run that lists no ranks cannot be told apart)."""
    return run.world_size is not None and (
        run.world_size != world_size or (run.nodes is not None and run.nodes != nodes))


def check_runs(runs: list[NcclTestsRun], scenario: Scenario) -> list[str]:
    """Refuse runs of another world size or host count than the scenario's (one
    :class:`ScenarioError` naming the file); the warnings for runs that list no ranks."""
    c = scenario.cluster
    warnings = []
    for run in runs:
        if run.world_size is None:
            warnings.append(f"{run.path}: lists no '# Rank' lines, so its world size is not checked against the "
                            f"scenario's {c.total_gpus} GPUs")
            continue
        if measured_elsewhere(run, c.total_gpus, c.nodes):
            raise ScenarioError(
                f"{run.path}: measured on {run.world_size} ranks on {run.nodes} host(s), the scenario has "
                f"{c.total_gpus} GPUs on {c.nodes} node(s) ({c.nodes} x {c.gpus_per_node}); describe the measured "
                f"cluster (--set cluster.nodes=... --set cluster.gpus_per_node=...)")
    return warnings


def nccl_tests_samples(runs: list[NcclTestsRun]) -> dict[tuple[str, int], float]:
    """(op, bytes) -> out-of-place seconds of the runs (the median where several runs
    measured the same collective and size)."""
    times: dict[tuple[str, int], list[float]] = {}
    for run in runs:
        for size, t in run.times_s.items():
            times.setdefault((run.op, size), []).append(t)
    return {key: statistics.median(ts) for key, ts in times.items()}


def run_meta(run: NcclTestsRun) -> dict[str, Any]:
    """What ``--json`` records of an nccl-tests run."""
    return {"path": run.path, "op": run.op, "world_size": run.world_size, "nodes": run.nodes,
            "devices": sorted(set(run.devices)), "versions": list(run.versions), "sizes": len(run.times_s)}
