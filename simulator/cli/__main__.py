"""``python -m simulator.cli``: the ``clustersim`` command."""

import sys

try:  # Ctrl-C before the error funnel is loaded: one line, exit 130, as the console script
    from .app import main

    main()
except KeyboardInterrupt:
    print("aborted", file=sys.stderr)
    sys.exit(130)
