"""Allreduce times from the user's own nccl-tests run (``training.collectives.measured``).

A scenario can name a saved nccl-tests ``all_reduce_perf`` output of the cluster it
describes: the job's world size on its hosts (the file's ``# Rank`` lines are checked
against ``cluster``). Each gradient bucket's allreduce then takes the measured time in
place of the collective model: the out-of-place time at a measured size, linearly
interpolated between the two nearest measured sizes, and beyond them the alpha-beta line
fitted over every measured size (:class:`~simulator.calibrated_run.CalibratedAllreduce`,
the same rule a calibration profile's allreduce follows). Buckets run one at a time, as
on NCCL's single stream, and a bucket starts once every rank has it ready; while one
runs, the ranks' compute is slowed by the backend's ``compute_interference`` as with the
modelled collectives (nccl-tests times a collective alone).

What it does not carry over: anything of the run other than the allreduce (the model
still computes, buckets and overlaps), and a different world size or host count (use a
run of the job's own size). ``clustersim collectives --nccl-tests FILE --fit`` is the
alternative that keeps the network model and fits its two machine figures instead.
"""

from __future__ import annotations

from .alpha_beta import fit_alpha_beta, fit_alpha_beta_pieces
from .calibrated_run import CalibratedAllreduce
from .errors import ScenarioError
from .nccl_tests import MAX_OUTPUT_BYTES, NcclTestsRun, measured_elsewhere, parse_nccl_tests
from .profile import CollectiveFit
from .resolved import Resolved
from .safe_input import read_text_file
from .sync import SyncContext, Synchronizer

FIELD = "training.collectives.measured"


def read_measured_allreduce(path: str, world_size: int, nodes: int) -> NcclTestsRun:
    """The run ``path`` names, checked to be an allreduce of ``world_size`` ranks on
    ``nodes`` hosts (where the file lists its ranks)."""
    run = parse_nccl_tests(read_text_file(path, limit=MAX_OUTPUT_BYTES, what=FIELD), path, default_op="allreduce")
    if run.op != "allreduce":
        raise ScenarioError(f"{FIELD}: {path}: measured {run.op}; this field takes an all_reduce_perf run")
    if measured_elsewhere(run, world_size, nodes):
        raise ScenarioError(
            f"{FIELD}: {path}: measured on {run.world_size} ranks on {run.nodes} host(s), the scenario runs "
            f"{world_size} GPUs on {nodes} node(s); use a run of the job's own size")
    if len(run.times_s) < 2:
        raise ScenarioError(f"{FIELD}: {path}: measured {len(run.times_s)} size(s); at least 2 are needed")
    return run


def collective_fit(run: NcclTestsRun, world_size: int, nodes: int) -> CollectiveFit:
    """The alpha-beta fit (over all sizes, and piecewise) of the run's times: the fit a
    calibration profile's collectives get, so a measured allreduce extrapolates the same
    way whichever way it was measured."""
    sizes, times = list(run.times_s), list(run.times_s.values())
    return CollectiveFit(collective="allreduce", world_size=world_size, nodes=nodes,
                         fit=fit_alpha_beta(sizes, times), pieces=fit_alpha_beta_pieces(sizes, times))


class MeasuredAllreduce(CalibratedAllreduce):
    """:class:`CalibratedAllreduce` on a measured nccl-tests run, the ranks' compute
    slowed while it runs as the backend's collectives slow it (``ctx.sharing``)."""

    def __init__(self, ctx: SyncContext, run: NcclTestsRun, world_size: int, nodes: int):
        self.run = run
        super().__init__(ctx, collective_fit(run, world_size, nodes), dict(run.times_s), shared=True)

    def describe(self) -> dict[str, object]:
        """What the results record of the measurement used."""
        sizes = list(self.run.times_s)
        return {"path": self.run.path, "sizes": len(sizes), "min_bytes": min(sizes), "max_bytes": max(sizes),
                "world_size_checked": self.run.world_size is not None, "versions": list(self.run.versions)}


def measured_allreduce(view: Resolved, strategy_name: str, context: SyncContext) -> Synchronizer:
    """The synchronizer of a scenario with ``training.collectives.measured`` (build phase)."""
    from .calibrated import is_allreduce

    if not is_allreduce(strategy_name):
        raise ScenarioError(f"{FIELD}: times an allreduce; training.strategy {strategy_name} does not allreduce")
    nodes = view.scenario.cluster.nodes
    run = read_measured_allreduce(str(view.scenario.training.collectives.measured), view.total_gpus, nodes)
    return MeasuredAllreduce(context, run, view.total_gpus, nodes)
