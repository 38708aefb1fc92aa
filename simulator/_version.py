"""The clustersim version, in a module of its own.

Modules inside :mod:`simulator` import it from here (``from ._version import
__version__``), never back from the package's ``__init__``, which re-exports it.
"""

__version__ = "0.1.0"
