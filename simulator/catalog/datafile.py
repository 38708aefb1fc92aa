"""Reading the catalog's data files (``simulator/data/catalog/*.yaml``).

The datasheet figures live in YAML so they can be read and edited without touching
code. Each file is validated when it is read by the pydantic types of the module that
owns it; a wrong entry fails with the file, the entry and the field named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from simulator.errors import ClusterSimError

#: libyaml's safe loader where it is installed (about 8x faster than the pure-Python one):
#: the package's own data files (catalogs, backends, framework presets) are read at start-up.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SHOWN_ERRORS = 3

FileModel = TypeVar("FileModel", bound=BaseModel)


class CatalogFileError(ClusterSimError):
    """A catalog data file is missing, not YAML, or fails validation."""


class _Named(Protocol):
    @property
    def name(self) -> str: ...


Entry = TypeVar("Entry", bound=_Named)


def catalog_path(name: str) -> str:
    """The file's path inside the package, as messages name it."""
    return f"simulator/data/catalog/{name}.yaml"


def _problems(exc: ValidationError) -> str:
    shown = [
        f"{'.'.join(str(part) for part in error['loc']) or '(entry)'}: {error['msg']}"
        for error in exc.errors()[:_SHOWN_ERRORS]
    ]
    more = exc.error_count() - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def read_catalog_file(name: str, model: type[FileModel]) -> FileModel:
    """``data/catalog/<name>.yaml`` parsed and validated by ``model``."""
    where = catalog_path(name)
    try:
        text = (resources.files("simulator") / "data" / "catalog" / f"{name}.yaml").read_text(encoding="utf-8")
        data = yaml.load(text, Loader=SAFE_LOADER)  # a safe loader: plain data, no tags
        return model.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogFileError(f"{where}: cannot read the catalog: {exc}") from exc
    except ValidationError as exc:
        raise CatalogFileError(f"{where}: {_problems(exc)}") from exc


def entries_by_name(name: str, rows: Iterable[Mapping[str, Any]], make: Callable[..., Entry]) -> Mapping[str, Entry]:
    """Each row of file ``name`` made into an entry by ``make(**row)`` (which validates it),
    as a read-only mapping name -> entry in file order; a name given twice is refused."""
    table: dict[str, Entry] = {}
    for index, row in enumerate(rows):
        label = f"{catalog_path(name)}: entry {index} ({row.get('name', 'no name')!r})"
        try:
            entry = make(**row)
        except ValidationError as exc:
            raise CatalogFileError(f"{label}: {_problems(exc)}") from exc
        except (TypeError, ValueError) as exc:
            raise CatalogFileError(f"{label}: {exc}") from exc
        if entry.name in table:
            raise CatalogFileError(f"{label}: {entry.name!r} is listed twice")
        table[entry.name] = entry
    return MappingProxyType(table)
