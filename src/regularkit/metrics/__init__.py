"""What the study measures beside the errors: calibration, sparsity, and the summary statistics.

* :mod:`~regularkit.metrics.calibration` -- ECE and the reliability diagram (Guo et al. 2017);
* :mod:`~regularkit.metrics.sparsity` -- weight and activation sparsity;
* :mod:`~regularkit.metrics.summary` -- the gap and mean ± std (ddof = 1), one definition each;
* :mod:`~regularkit.metrics.paired` -- paired differences by seed: t interval, family adjustment, seeds needed.

Names are resolved on first use (as :mod:`regularkit.data` does): importing
``regularkit.metrics.sparsity`` for training does not import SciPy's statistics
(0.45 s), which only the paired intervals need.
"""

from __future__ import annotations

from regularkit._util.exports import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "CalibrationBins": "calibration", "calibration_bins": "calibration",
    "expected_calibration_error": "calibration", "reliability_diagram": "calibration",
    "activation_modules": "sparsity", "activation_sparsity": "sparsity", "weight_sparsity": "sparsity",
    "Interval": "paired", "adjust": "paired", "paired_interval": "paired", "seeds_needed": "paired",
    "gap": "summary", "mean_std": "summary",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
