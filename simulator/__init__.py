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

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ._version import __version__
from .compiled import enable as _enable_compiled_core

# Before any engine module loads: the compiled core where a build matches the sources
# (`clustersim accelerate`; simulator.compiled), else the sources.
ENGINE = _enable_compiled_core()

# Public name -> the module that defines it. Loaded on first use (PEP 562), so that
# ``clustersim --version`` and ``import simulator.errors`` do not pay for the engine,
# networkx, pandas and the schema.
_LAZY = {
    "simulate": ".engine",
    "CalibrationError": ".errors",
    "ClusterSimError": ".errors",
    "ScenarioError": ".errors",
    "SimulationError": ".errors",
    "TopologyError": ".errors",
    "load_scenario": ".loading",
    "SimResult": ".results",
    "Scenario": ".scenario",
    "run_sweep": ".sweep",
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
