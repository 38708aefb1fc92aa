"""What the distribution promises besides the code: one version (``pyproject.toml`` and
``simulator.__version__`` agree, the latter kept in ``simulator/_version.py``), the
``py.typed`` markers shipped as package data, and the console script and the
``clustersim.commands`` plugin entry points naming objects that exist."""

from __future__ import annotations

import importlib
import tomllib

import click

import simulator
from simulator._version import __version__

from .conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_one_version():
    assert PYPROJECT["project"]["version"] == __version__ == simulator.__version__


def test_typed_packages_ship_their_marker():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for package in ("simulator", "topologies"):
        assert (REPO_ROOT / package / "py.typed").is_file()
        assert "py.typed" in data[package]


def _load(reference: str):
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def test_console_script_and_plugin_commands_resolve():
    assert callable(_load(PYPROJECT["project"]["scripts"]["clustersim"]))
    plugins = PYPROJECT["project"]["entry-points"]["clustersim.commands"]
    assert {"probe", "calibrate", "measure"} <= set(plugins)
    for name, reference in plugins.items():
        command = _load(reference)
        assert isinstance(command, click.Command), name


def test_data_files_ship_as_package_data():
    """Every file the simulator reads from ``simulator/data`` (catalog, backends,
    frameworks, default scenario) is matched by a package-data pattern, so an installed
    copy has it too."""
    root = REPO_ROOT / "simulator"
    shipped = {path for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["simulator"]
               for path in root.glob(pattern)}
    data_files = [path for path in (root / "data").rglob("*.yaml")]
    assert (root / "data" / "catalog" / "gpus.yaml") in data_files
    assert [path for path in data_files if path not in shipped] == []
