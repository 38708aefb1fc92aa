"""``python -m simulator.cli``: the ``clustersim`` command."""

from . import main

main()
