"""Collectives (allreduce, allgather, reduce-scatter, broadcast) as programs of flows, and as a library runs them.

The package splits what one long module per side used to hold (issue #16) along the
seams the code already had, so that each piece reads on its own:

* :mod:`~simulator.collectives.backend`: a library's figures, the backend files'
  data model and loading (no graphs, no arithmetic);
* :mod:`~simulator.collectives.channels`: the graph as the library sees it (achievable
  link bandwidths, host staging, its channel rings);
* :mod:`~simulator.collectives.cost`: the library's latency and bandwidth estimate and
  its choice of algorithm and protocol, as a :class:`~simulator.collectives.cost.CollectivePlan`;
* :mod:`~simulator.collectives.fabric`: what a collective runs on and the shared flow
  plumbing (ring steps, concurrent phases, host fabric);
* :mod:`~simulator.collectives.algorithms`: the allreduce algorithms (ring, tree,
  halving-doubling, hierarchical) with their closed forms, and the plain collectives;
* :mod:`~simulator.collectives.library`: :class:`~simulator.collectives.library.CollectiveLibrary`,
  which plans each call with the cost model and runs it as flows on the topology.

Import from those modules: this ``__init__`` re-exports nothing, so the import graph
shows which part each caller uses (and nothing imports back up into it).
"""
