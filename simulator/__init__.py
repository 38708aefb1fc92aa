"""clustersim: a discrete-event simulator of data-parallel training on GPU clusters.

The public API is small:

>>> from simulator import load_scenario, simulate
>>> result = simulate(load_scenario("scenarios/pcie_8gpu.yaml"))
>>> result.throughput_samples_per_s, result.speedup

A run goes through four phases: **load** (YAML/JSON + ``--set`` overrides -> validated
:class:`Scenario`), **build** (topology graph, network, compute costs, strategy),
**run** (SimPy), **collect** (:class:`SimResult`). See ``shared/DESIGN.md``.
"""

__version__ = "0.1.0"

from .engine import simulate  # noqa: E402
from .errors import CalibrationError, ClusterSimError, ScenarioError, SimulationError, TopologyError  # noqa: E402
from .loading import load_scenario  # noqa: E402
from .results import SimResult  # noqa: E402
from .scenario import Scenario  # noqa: E402
from .sweep import run_sweep  # noqa: E402

__all__ = [
    "CalibrationError",
    "ClusterSimError",
    "Scenario",
    "ScenarioError",
    "SimResult",
    "SimulationError",
    "TopologyError",
    "__version__",
    "load_scenario",
    "run_sweep",
    "simulate",
]
