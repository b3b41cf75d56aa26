"""What the study measures beside the errors: calibration, sparsity, and the summary statistics.

* :mod:`~regularkit.metrics.calibration` -- ECE and the reliability diagram (Guo et al. 2017);
* :mod:`~regularkit.metrics.sparsity` -- weight and activation sparsity;
* :mod:`~regularkit.metrics.summary` -- the gap and mean ± std (ddof = 1), one definition each;
* :mod:`~regularkit.metrics.paired` -- paired differences by seed: t interval, family adjustment, seeds needed.
"""
from regularkit.metrics.calibration import (
                                            CalibrationBins,
                                            calibration_bins,
                                            expected_calibration_error,
                                            reliability_diagram,
)
from regularkit.metrics.sparsity import activation_modules, activation_sparsity, weight_sparsity
from regularkit.metrics.paired import Interval, adjust, paired_interval, seeds_needed
from regularkit.metrics.summary import gap, mean_std

__all__ = ["CalibrationBins", "calibration_bins", "expected_calibration_error", "reliability_diagram",
           "activation_modules", "activation_sparsity", "weight_sparsity", "gap", "mean_std",
           "Interval", "paired_interval", "adjust", "seeds_needed"]
