"""The engine core, compiled to C with mypyc: optional, same results, two to three times
the events per second on the detailed path (``benchmarks/engine_speed.py --events-ratio
--both-engines``).

Every flow of a detailed run passes through a handful of modules (:data:`CORE`: the
max-min core, flows and their groups, finishing times, the network and its sharing, the
event loop, a ring member). They are plain typed Python; ``clustersim accelerate``
compiles them with mypyc (shipped with mypy; a C compiler is needed) into a cache
folder, and :func:`enable` (called when :mod:`simulator` is imported) loads the compiled
modules instead of the sources from then on. Nothing is written into the package.

Why it can be trusted:

- **Same results.** The compiled modules do the same float operations in the same order
  (IEEE doubles either way); ``tests/test_compiled.py`` builds the core and checks that the
  stored golden results (``tests/golden/``) come out byte for byte.
- **Never stale.** A build is keyed by a hash of the core's sources and the Python
  version: once a source changes, the build no longer matches and the sources run again
  (rebuild with ``clustersim accelerate``).
- **Off switch.** ``CLUSTERSIM_PURE_PYTHON=1`` runs the sources even where a build
  matches (the test suite runs so, apart from the test that checks the build).

Why optional, not built at install: a compiler and mypy are not on every machine, a
compiled module shadows its source for whoever edits it (hence the key), and the
pure-Python engine is the reference the compiled one is checked against.
"""

from __future__ import annotations

import os
import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from .user_cache import user_cache_root

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

# The modules compiled, in dependency order. (simulator.route stays interpreted: a frozen
# dataclass with a cached property, which a compiled class would not keep.)
CORE = (
    "simulator.maxmin",
    "simulator.flows",
    "simulator.finishing",
    "simulator.network_sharing",
    "simulator.network",
    "simulator.event_loop",
    "simulator.collectives.ring_member",
)
GROUP = "clustersim_core"  # mypyc's shared library: <GROUP>__mypyc
PURE_ENV = "CLUSTERSIM_PURE_PYTHON"
FOLDER_ENV = "CLUSTERSIM_COMPILED_DIR"
MANIFEST = "manifest.json"
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding simulator/


class CompileError(RuntimeError):
    """The core could not be compiled (no mypy, no C compiler, or mypyc failed)."""


def cache_root() -> Path:
    """Where builds are kept: ``$CLUSTERSIM_COMPILED_DIR``, else ``compiled`` in the user's
    clustersim cache (``~/.cache/clustersim`` unless ``$XDG_CACHE_HOME`` says otherwise)."""
    configured = os.environ.get(FOLDER_ENV)
    return Path(configured) if configured else user_cache_root() / "compiled"


def source_of(module: str, root: Path = _PACKAGE_ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def build_key(root: Path = _PACKAGE_ROOT) -> str:
    """Hash of the core's sources, the interpreter, its extension suffix and how the core
    is compiled: a build is used only by the sources and Python it was made from."""
    import hashlib  # (here: enable() is on every start-up's path, and most never get this far)

    digest = hashlib.sha256(f"{sys.implementation.cache_tag}|{EXTENSION_SUFFIXES[0]}|{_MYPY_INI}|{_SETUP}".encode())
    for module in CORE:
        digest.update(module.encode() + b"\0" + source_of(module, root).read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def _extension(folder: Path, module: str) -> Path:
    return folder.joinpath(*module.split(".")).with_name(module.rsplit(".", 1)[-1] + EXTENSION_SUFFIXES[0])


class _CompiledCore(MetaPathFinder):
    """Serves the core's modules from a build folder (its shared library loaded first,
    as the modules' shims import it by name)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in CORE:
            return None
        library = f"{GROUP}__mypyc"
        if library not in sys.modules:
            spec = spec_from_file_location(library, self.folder / (library + EXTENSION_SUFFIXES[0]))
            if spec is None or spec.loader is None:
                return None
            loaded = module_from_spec(spec)
            sys.modules[library] = loaded
            spec.loader.exec_module(loaded)
        return spec_from_file_location(fullname, _extension(self.folder, fullname))


def _finder() -> _CompiledCore | None:
    return next((f for f in sys.meta_path if isinstance(f, _CompiledCore)), None)


def enable() -> str:
    """Load the compiled core from now on if a build matches the sources (and
    ``CLUSTERSIM_PURE_PYTHON`` is not set); returns which engine runs, in words."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"pure Python ({PURE_ENV} is set)"
    root = cache_root()
    if not root.is_dir():  # (never built: no hashing at every start-up)
        return "pure Python (no compiled build: `clustersim accelerate` makes one)"
    try:
        folder = root / build_key()
    except OSError:  # sources not readable as files (a zipped install): run them
        return "pure Python (sources not on disk)"
    if not (folder / MANIFEST).is_file():
        return "pure Python (no build of these sources: `clustersim accelerate` makes one)"
    if _finder() is None:
        loaded = [m for m in CORE if m in sys.modules]
        if loaded:  # (imported before: mixing the two would break isinstance checks)
            return f"pure Python ({loaded[0]} was imported before the compiled core was enabled)"
        sys.meta_path.insert(0, _CompiledCore(folder))
    return f"compiled ({folder})"


def in_use() -> bool:
    """Whether the core's modules imported so far are the compiled ones."""
    return any(getattr(sys.modules.get(m), "__file__", "").endswith(EXTENSION_SUFFIXES[0]) for m in CORE)


_SETUP = """\
import sys
from setuptools import setup
from mypyc.build import mypycify

setup(name="clustersim-core", script_args=["build_ext", "--inplace"],
      ext_modules=mypycify(["--config-file", "mypy.ini", *sys.argv[1:]], opt_level="3", group_name={group!r}))
"""
# The rest of the package is Any to mypyc (its objects handled as the interpreter
# would): following it would take mypyc minutes, not seconds. Third-party types (SimPy,
# numpy) are followed: a compiled class derived from one mypyc cannot see is not sound.
_MYPY_INI = ("[mypy]\npython_version = {major}.{minor}\nignore_missing_imports = True\n"
             "[mypy-simulator.*]\nfollow_imports = skip\n[mypy-topologies.*]\nfollow_imports = skip\n")


def build(say: Callable[[str], None] = print) -> Path:
    """Compile the core into ``cache_root() / build_key()`` and return that folder.
    Raises :class:`CompileError` with the reason when it cannot."""
    import json
    import shutil
    import subprocess
    import tempfile

    try:
        import mypyc.build  # noqa: F401  (only to say early what is missing)
        import setuptools  # noqa: F401
    except ImportError as exc:
        raise CompileError(f"compiling the engine core needs mypy (with mypyc) and setuptools: "
                           f"pip install 'clustersim[fast]' (mypy and setuptools) ({exc})") from None
    key = build_key()
    folder = cache_root() / key
    with tempfile.TemporaryDirectory(prefix="clustersim-compile-") as tmp:
        work = Path(tmp)
        for package in ("simulator", "topologies"):  # (the whole package: the core imports the rest)
            shutil.copytree(_PACKAGE_ROOT / package, work / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
        if build_key(work) != key:
            raise CompileError("the sources changed while they were being copied; run it again")
        (work / "mypy.ini").write_text(_MYPY_INI.format(major=sys.version_info[0], minor=sys.version_info[1]))
        (work / "setup_core.py").write_text(_SETUP.format(group=GROUP))
        say(f"compiling {len(CORE)} modules with mypyc (half a minute or so)...")
        sources = [str(source_of(m, Path("."))) for m in CORE]
        done = subprocess.run([sys.executable, "setup_core.py", *sources], cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise CompileError(f"mypyc failed (a C compiler and Python's headers are needed):\n{tail}")
        partial = folder.with_name(key + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        library = f"{GROUP}__mypyc{EXTENSION_SUFFIXES[0]}"
        for file in [Path(library)] + [_extension(Path("."), m) for m in CORE]:
            if not (work / file).is_file():
                raise CompileError(f"mypyc did not produce {file}")
            (partial / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(work / file, partial / file)
    (partial / MANIFEST).write_text(json.dumps({"key": key, "modules": list(CORE), "python": sys.version,
                                                "sources": str(_PACKAGE_ROOT)}, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)  # (whole or not at all: a reader sees the manifest last)
    return folder


def remove() -> int:
    """Delete every build; returns how many there were."""
    import shutil

    root = cache_root()
    builds = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    shutil.rmtree(root, ignore_errors=True)
    return len(builds)
