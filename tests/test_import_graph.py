"""The import graph of ``simulator``, ``topologies`` and ``calibration`` (issue #16).

Read from the source with ``ast`` (every ``import``, at module level, inside functions
or under ``TYPE_CHECKING``: a lazy import hides a cycle, it does not remove it) into a
networkx graph of modules, it specifies three rules: imports go one way,
``calibration -> simulator -> topologies``; no module imports a name back up from its
own package's ``__init__`` (the version lives in ``simulator._version``, not in
``simulator/__init__.py``); and there are no import cycles, except the documented
cycles listed in :data:`ENGINE_BACK_EDGES` (none left).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("simulator", "topologies", "calibration")
#: Which top-level package may import which (besides itself).
MAY_IMPORT = {"calibration": {"simulator", "topologies"}, "simulator": {"topologies"}, "topologies": set()}

#: Import cycles allowed (none since the engine split: build, built, training).
#: Any edge listed here must exist, and must leave the list once it is gone.
ENGINE_BACK_EDGES: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _import_graph() -> nx.DiGraph:
    """Modules as nodes; an edge per imported module, with ``attribute=True`` when a
    name is taken from a package's ``__init__`` (``from pkg import name`` where
    ``pkg.name`` is not a module) and the line it is on."""
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = alias.name
                    while target and target not in modules:  # `import a.b.c` of a name in a.b
                        target = target.rpartition(".")[0]
                    if target:
                        graph.add_edge(name, target, attribute=False, line=node.lineno)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                if base.partition(".")[0] not in PACKAGES:
                    continue
                assert base in modules, f"{path}:{node.lineno}: no module {base}"
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in modules:
                        graph.add_edge(name, submodule, attribute=False, line=node.lineno)
                    else:
                        graph.add_edge(name, base, attribute=True, line=node.lineno)
    return graph


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return _import_graph()


def _where(graph: nx.DiGraph, u: str, v: str) -> str:
    return f"{u} -> {v} (line {graph.edges[u, v]['line']})"


def test_the_graph_sees_the_packages(graph):
    """Guards the other tests against passing on an empty or unconnected graph."""
    assert graph.number_of_nodes() > 30
    assert graph.number_of_edges() > 100
    assert {"simulator.engine", "simulator.cli.app", "simulator.cli.runner", "topologies.cluster",
            "calibration.cli"} <= set(graph)
    assert graph.has_edge("calibration.cli", "simulator.cli.runner")
    assert graph.has_edge("simulator.build", "topologies")
    assert graph.has_edge("simulator.engine", "simulator.build")


def test_imports_go_one_way(graph):
    wrong = [_where(graph, u, v) for u, v in graph.edges
             if u.partition(".")[0] != v.partition(".")[0]
             and v.partition(".")[0] not in MAY_IMPORT[u.partition(".")[0]]]
    assert not wrong, "calibration -> simulator -> topologies only; these go the other way: " + "; ".join(wrong)


def test_no_module_imports_back_up_into_its_packages_init(graph):
    back_up = [_where(graph, u, v) for u, v, attribute in graph.edges(data="attribute")
               if attribute and u.startswith(v + ".")]
    assert not back_up, "names taken from the importer's own package __init__: " + "; ".join(back_up)


def test_the_cli_runner_does_not_load_the_commands(graph):
    """``calibration`` imports the error funnel; that must not pull in every command."""
    reached = nx.descendants(graph, "simulator.cli.runner")
    assert not {m for m in reached if m.startswith("simulator.cli.")}, sorted(reached)


def test_no_import_cycles_but_the_documented_engine_ones(graph):
    stale = sorted(edge for edge in ENGINE_BACK_EDGES if not graph.has_edge(*edge))
    assert not stale, f"no longer imported, remove from ENGINE_BACK_EDGES: {stale}"
    acyclic = graph.copy()
    acyclic.remove_edges_from(ENGINE_BACK_EDGES)
    cycles = [" -> ".join([*cycle, cycle[0]]) for cycle in nx.simple_cycles(acyclic)]
    assert not cycles, "import cycles: " + "; ".join(sorted(cycles)[:10])


def test_every_llm_and_zoo_module_imports_first_in_a_fresh_interpreter():
    """The static graph above sees ``simulator.zoo.builder`` and ``simulator.zoo`` as two
    nodes, but importing the first runs the second (its package ``__init__``) first. The
    zoo registers the transformer presets of ``simulator.llm`` and ``simulator.llm.stage``
    builds on the zoo's builder: each of these modules must import on its own, first."""
    import subprocess
    import sys

    names = [name for name in _modules() if name.startswith(("simulator.llm", "simulator.zoo"))]
    assert len(names) > 10
    code = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('simulator')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append(f'{name}: {exc}')\n"
        "print('\\n'.join(failed))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""
