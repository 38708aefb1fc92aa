"""The tree is ruff-clean under the configuration in ``pyproject.toml`` (``[tool.ruff]``:
pycodestyle, pyflakes, import order, bugbear, pyupgrade at 120 columns), so a lint
finding fails the suite and not only CI; and the modules of the strict mypy override
(``[[tool.mypy.overrides]]``) type-check under the strict flags. Skipped where ruff or
mypy is not installed (they come with the ``dev`` extra)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import PurePosixPath

import pytest

from .conftest import REPO_ROOT

CHECKED = ["simulator", "topologies", "calibration", "tests", "benchmarks"]


def _ruff() -> list[str] | None:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    return [found] if found else None


def test_ruff_check_is_clean():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([*ruff, "check", "--no-cache", *CHECKED], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


#: The per-module flags of ``mypy --strict`` that a strict override in ``pyproject.toml`` sets.
STRICT_FLAGS = ("disallow_any_generics", "disallow_subclassing_any", "disallow_untyped_calls",
                "disallow_untyped_defs", "disallow_incomplete_defs", "check_untyped_defs",
                "disallow_untyped_decorators", "warn_return_any", "no_implicit_reexport", "strict_equality",
                "extra_checks")


def _strict_patterns() -> list[str]:
    """The module patterns of the ``[[tool.mypy.overrides]]`` that set every strict flag."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns: list[str] = []
    for override in config["tool"]["mypy"].get("overrides", []):
        if all(override.get(flag) is True for flag in STRICT_FLAGS):
            module = override["module"]
            patterns += [module] if isinstance(module, str) else module
    return patterns


def _module_of(path: str) -> str:
    """``simulator/zoo/cnn.py`` -> ``simulator.zoo.cnn``; ``simulator/zoo/__init__.py`` -> ``simulator.zoo``."""
    parts = list(PurePosixPath(path.replace("\\", "/")).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _matches(module: str, pattern: str) -> bool:
    """mypy's rule: ``a.b`` names that module only, ``a.b.*`` it and every submodule."""
    if pattern.endswith(".*"):
        base = pattern[:-2]
        return module == base or module.startswith(base + ".")
    return module == pattern


def test_the_strict_list_names_real_modules():
    """Every strict pattern names a module or package of the tree (a typo would check nothing)."""
    patterns = _strict_patterns()
    assert {"topologies", "simulator.network", "simulator.zoo.*"} <= set(patterns)
    for pattern in patterns:
        path = REPO_ROOT / pattern.removesuffix(".*").replace(".", "/")
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), pattern


def test_every_module_of_simulator_and_topologies_is_on_the_strict_list():
    """#16: mypy strict on all of ``simulator/`` and ``topologies/``; a new module joins."""
    patterns = _strict_patterns()
    modules = [_module_of(path.relative_to(REPO_ROOT).as_posix())
               for package in ("simulator", "topologies") for path in sorted((REPO_ROOT / package).rglob("*.py"))]
    assert len(modules) > 100  # the walk found the packages
    assert [m for m in modules if not any(_matches(m, p) for p in patterns)] == []


def test_strict_modules_are_mypy_clean():
    """``topologies/`` and the ``simulator/`` modules of the strict override in
    ``[tool.mypy]`` type-check under the strict flags. One run over the configured
    files, so a strict module is checked with everything it imports."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    patterns = _strict_patterns()
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), output  # 1: findings (perhaps only in modules not yet strict)
    assert re.search(r"^(Success: no issues found|Found \d+ errors? in)", proc.stdout, re.MULTILINE), output
    assert "prevented further checking" not in output, output
    findings = [line for line in proc.stdout.splitlines()
                if ": error:" in line and any(_matches(_module_of(line.split(":", 1)[0]), p) for p in patterns)]
    assert not findings, "\n".join(findings)
