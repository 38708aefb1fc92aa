"""The user's cache folder for clustersim: ``$XDG_CACHE_HOME/clustersim``, else
``~/.cache/clustersim`` (sweep results and compiled engine builds live under it)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clustersim"
