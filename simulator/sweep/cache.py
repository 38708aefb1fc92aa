"""A result cache on disk: one JSON file of metrics per (canonical scenario, version).

A re-run sweep only simulates the scenarios that changed. The key is the SHA-256 of
the canonical scenario JSON (with the contents of the files it reads: a calibration
profile, a model file) and the package version, so a new release never serves
stale numbers. Failed runs are not cached. Writes go to a temporary file and are
renamed into place, so concurrent sweeps and interruptions never leave half a file.
Location: ``cache_dir``, else ``$CLUSTERSIM_CACHE_DIR``, else
``~/.cache/clustersim/results``.

Why not diskcache or joblib.Memory (considered, issue #17): diskcache keeps entries in
SQLite, which is not safe on the network filesystems dask workers of a cluster sweep
share, and joblib.Memory keys on pickled arguments (a pydantic scenario pickles with its
class's module path, so a refactor would silently miss every entry). One JSON file per
content hash, written atomically, is what both would have to be configured into, in a
few dozen lines with no dependency.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..user_cache import user_cache_root

ENV_VAR = "CLUSTERSIM_CACHE_DIR"


def default_cache_dir() -> Path:
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return user_cache_root() / "results"


class ResultCache:
    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            metrics: dict[str, Any] = json.loads(self._path(key).read_text())
            return metrics
        except (OSError, ValueError):  # missing or damaged: simulate again
            return None

    def put(self, key: str, metrics: dict[str, Any]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(metrics, f, sort_keys=True)
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written only costs time
