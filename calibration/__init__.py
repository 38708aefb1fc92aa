"""Calibration: the torch probe that measures real hardware and the fitting that turns
its samples into a profile the simulator reads.

* :mod:`calibration.probe` - ``clustersim probe``: per-layer forward/backward times of
  zoo models (:mod:`~calibration.layers`, torch definitions in
  :mod:`~calibration.models`), matmul/conv efficiency and copy bandwidth
  (:mod:`~calibration.kernels`), collectives (:mod:`~calibration.collectives`) and an
  environment fingerprint (:mod:`~calibration.environment`);
* :mod:`calibration.fit` - numpy fits (linear per layer against batch, alpha-beta per
  collective and world size) and ``clustersim calibrate`` (refit from raw samples).

Installed with the ``probe`` extra; the only part of clustersim that imports torch
(``calibration -> simulator -> topologies``). The profile schema lives in
:mod:`simulator.profile`. Real profiles made on this project's machines are shipped in
``calibration/profiles/``.
"""
