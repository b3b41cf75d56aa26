"""Bridges to training frameworks; each submodule imports its framework, this package imports nothing.

* :mod:`~regularkit.integrations.lightning` -- Lightning callbacks: fused weight penalties,
  constraints after the optimizer step, EMA and SWA with their state in the checkpoint,
  penalty schedules (``pip install 'regularkit[lightning]'``).

``import regularkit.integrations`` works without any framework installed; importing a
submodule without its framework raises one ``ImportError`` that names the package to install.
"""
