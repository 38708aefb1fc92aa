"""What the three advisors share: scenario variants and resource labels.

:func:`with_` returns a scenario with dotted fields replaced (validated again);
:func:`quick` shortens a scenario for searches; :func:`resource_label` names a
resource with its kind, as the reports print it.
"""

from __future__ import annotations

from typing import Any

from ..results import resource_label  # re-exported: the advisers' labels
from ..scenario import Scenario

__all__ = ["quick", "resource_label", "with_"]


def with_(scenario: Scenario, **dotted: Any) -> Scenario:
    data = scenario.model_dump()
    for key, value in dotted.items():
        node = data
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    return Scenario.model_validate(data)


def quick(scenario: Scenario) -> Scenario:
    """Fewer iterations for searches (identical ranks: every iteration is the same)."""
    return with_(scenario, **{"simulation.iterations": min(scenario.simulation.iterations, 2),
                              "simulation.warmup_iterations": min(scenario.simulation.warmup_iterations, 1),
                              "simulation.replications": 1})


