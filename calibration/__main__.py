"""``python -m calibration probe|calibrate|measure``."""

from calibration.cli import main

if __name__ == "__main__":
    main()
