"""Calibration: the torch probe that measures real hardware and the fitting that turns
its samples into a profile the simulator reads.

Empty for now: the probe, the measured-run harness and the fits arrive with the
calibration issue. It will be installed with the ``probe`` extra and is the only part
of clustersim that imports torch (``calibration -> simulator -> topologies``).
"""
