"""Input normalisation fitted on the training split only, and the guard that keeps it there.

* :mod:`~regularkit.preprocess.transforms` -- ``Standardize``, ``MinMax``, ``Rescale``,
  ``PCAWhiten``, ``ZCAWhiten`` (deck 003, "Input Normalization": compute on the
  training set, apply to validation and test);
* :mod:`~regularkit.preprocess.splitguard` -- ``mark_split`` / ``split_of``: fitting on data
  tagged as validation or test is refused.
"""
from regularkit.preprocess.splitguard import as_fit_tensor, check_fit_split, mark_split, split_of
from regularkit.preprocess.transforms import MinMax, PCAWhiten, Rescale, Standardize, ZCAWhiten

__all__ = ["Standardize", "MinMax", "Rescale", "PCAWhiten", "ZCAWhiten", "mark_split", "split_of",
           "check_fit_split", "as_fit_tensor", "REGISTRY"]

#: The one registry of preprocessors (used by the conformance suite and configs).
REGISTRY = {"standardize": Standardize, "min_max": MinMax, "rescale": Rescale,
            "pca_whiten": PCAWhiten, "zca_whiten": ZCAWhiten}
