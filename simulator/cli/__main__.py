"""``python -m simulator.cli``: the ``clustersim`` command."""

from .app import main

main()
