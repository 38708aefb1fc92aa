"""User-facing errors.

Every mistake a user can make (a bad scenario file, an impossible topology, a corrupt
calibration profile, a simulation that cannot finish) raises one of these. The CLI
prints the message as one located paragraph and exits with code 2; Python callers
can catch :class:`ClusterSimError`.
"""

from __future__ import annotations


class ClusterSimError(Exception):
    """Base class of every error clustersim reports to a user."""

    exit_code = 2


class ScenarioError(ClusterSimError):
    """A scenario file or override is malformed, unknown or impossible."""


class TopologyError(ClusterSimError):
    """The cluster described cannot be built (no route, bad layout)."""


class CalibrationError(ClusterSimError):
    """A calibration profile is missing, corrupt or of the wrong version."""


class SimulationError(ClusterSimError):
    """The simulation could not finish (work left waiting, deadlock)."""
