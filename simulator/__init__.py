"""clustersim: a discrete-event simulator of data-parallel training on GPU clusters.

The public API is small:

>>> from simulator import load_scenario, simulate
>>> result = simulate(load_scenario("scenarios/pcie_8gpu_server.yaml"))
>>> result.throughput_samples_per_s, result.speedup

A run goes through four phases: **load** (YAML/JSON + ``--set`` overrides -> validated
:class:`Scenario`), **build** (topology graph, network, compute costs, strategy),
**run** (SimPy), **collect** (:class:`SimResult`). The README's "Layout" section maps
the modules.

Modules inside the package never import from this ``__init__`` (an import-graph test
checks it): the version lives in :mod:`simulator._version`, re-exported here.
"""

from ._version import __version__
from .engine import simulate
from .errors import CalibrationError, ClusterSimError, ScenarioError, SimulationError, TopologyError
from .loading import load_scenario
from .results import SimResult
from .scenario import Scenario
from .sweep import run_sweep

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
