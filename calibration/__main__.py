"""``python -m calibration probe|calibrate``."""

from calibration.cli import main

if __name__ == "__main__":
    main()
