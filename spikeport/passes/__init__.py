"""Passes over a network that need a simulator: above ``models`` and ``backends``, below ``api``.

- :mod:`.calibrate`: calibration towards the ANN (bias, initial membrane, weights) and the
  choice of the L4 strength, each measured with the reference executor;
- :mod:`.diagnose`: per-layer agreement of a run with the ANN;
- :mod:`.adjust`: the conversion adjustments (L4, calibration) as ``convert`` applies them.
"""
