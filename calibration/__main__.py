"""``python -m calibration``: the probe's command line."""

import sys

if __name__ == "__main__":
    try:  # Ctrl-C before the error funnel is loaded: one line, exit 130, as in clustersim
        from calibration.cli import main

        main()
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        sys.exit(130)
