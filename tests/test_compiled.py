"""The optional compiled engine core (simulator.compiled, `clustersim accelerate`): used
only where a build matches the sources, and byte for byte the results of the sources."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from simulator import compiled

REPO = Path(__file__).resolve().parent.parent


def _python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter with ``env`` (the suite's own default, the
    sources, lifted unless given) and return its output."""
    full = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    full.update(env)
    done = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


WHICH = "import simulator, simulator.flows as f; print(simulator.ENGINE); print(f.__file__)"


def _core_copy(root: Path) -> Path:
    for module in compiled.CORE:
        target = compiled.source_of(module, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(compiled.source_of(module), target)
    return root


def test_the_build_key_follows_every_core_source(tmp_path):
    root = _core_copy(tmp_path)
    assert compiled.build_key(root) == compiled.build_key()
    keys = {compiled.build_key(root)}
    for module in compiled.CORE:
        source = compiled.source_of(module, root)
        original = source.read_bytes()
        source.write_bytes(original + b"\n")  # (a blank line is a change: the build is of other bytes)
        keys.add(compiled.build_key(root))
        source.write_bytes(original)
    assert len(keys) == len(compiled.CORE) + 1
    assert compiled.build_key(root) == compiled.build_key()


def test_without_a_build_the_sources_run(tmp_path):
    engine, flows_file = _python(WHICH, CLUSTERSIM_COMPILED_DIR=str(tmp_path / "none")).splitlines()
    assert engine.startswith("pure Python (no compiled build")
    assert flows_file.endswith("flows.py")


def test_a_build_of_other_sources_is_not_used(tmp_path):
    stale = tmp_path / ("0" * 24)
    stale.mkdir()
    (stale / compiled.MANIFEST).write_text("{}")
    engine, flows_file = _python(WHICH, CLUSTERSIM_COMPILED_DIR=str(tmp_path)).splitlines()
    assert engine.startswith("pure Python (no build of these sources")
    assert flows_file.endswith("flows.py")


def test_accelerate_without_mypyc_exits_2_with_one_line(tmp_path):
    code = ("import sys; sys.modules['mypyc'] = None; sys.modules['mypyc.build'] = None\n"
            "from simulator.cli import main\n"
            "try:\n    main(['accelerate'])\nexcept SystemExit as e:\n    print('exit', e.code)")
    out = _python(code, CLUSTERSIM_COMPILED_DIR=str(tmp_path))
    assert out.splitlines()[-1] == "exit 2"
    assert not (tmp_path / compiled.build_key()).exists()


def _can_compile() -> bool:
    return (importlib.util.find_spec("mypyc") is not None and importlib.util.find_spec("setuptools") is not None
            and shutil.which(str(sysconfig.get_config_var("CC") or "cc").split()[0]) is not None
            and (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file())


@pytest.mark.skipif(not _can_compile(), reason="needs mypy (mypyc), setuptools, a C compiler and Python's headers")
def test_the_compiled_core_gives_the_golden_results_byte_for_byte(tmp_path):
    """Builds the core (about half a minute on two cores), then runs the stored golden results of
    the example scenarios and the probe scenarios (detailed paths among them) with it."""
    done = subprocess.run([sys.executable, "-m", "simulator.cli", "accelerate"], capture_output=True, text=True,
                          env={**os.environ, "CLUSTERSIM_COMPILED_DIR": str(tmp_path)}, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / compiled.build_key() / compiled.MANIFEST).is_file()
    engine, flows_file = _python(WHICH, CLUSTERSIM_COMPILED_DIR=str(tmp_path)).splitlines()
    assert engine.startswith("compiled")
    assert flows_file.endswith(".so")
    assert _python(WHICH, CLUSTERSIM_COMPILED_DIR=str(tmp_path), CLUSTERSIM_PURE_PYTHON="1").endswith("flows.py")
    goldens = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                              "tests/test_golden_results.py", "-k", "example or probe"],
                             env={**os.environ, "CLUSTERSIM_COMPILED_DIR": str(tmp_path),
                                  compiled.PURE_ENV: "0"}, capture_output=True, text=True, cwd=REPO)
    assert goldens.returncode == 0, goldens.stdout[-3000:]
    assert " passed" in goldens.stdout and "failed" not in goldens.stdout
