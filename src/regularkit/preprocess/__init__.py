"""Input normalisation fitted on the training split only, and the guard that keeps it there.

* :mod:`~regularkit.preprocess.transforms` -- ``Standardize``, ``MinMax``, ``Rescale``,
  ``PCAWhiten``, ``ZCAWhiten`` (deck 003, "Input Normalization": compute on the
  training set, apply to validation and test);
* :mod:`~regularkit.preprocess.dtype` -- ``ToDtype`` (torchvision v2) and ``Rescaling`` (Keras): uint8 to
  float inside the model;
* :mod:`~regularkit.preprocess.base` -- ``Preprocessor``: every fitted transform is an ``nn.Module`` whose
  statistics are buffers (in ``state_dict``, exported and compiled with the model);
* :mod:`~regularkit.preprocess.splitguard` -- ``mark_split`` / ``split_of``: fitting on data
  tagged as validation or test is refused.
"""
from regularkit.preprocess.base import Preprocessor
from regularkit.preprocess.dtype import Rescaling, ToDtype, rescale, to_dtype
from regularkit.preprocess.splitguard import as_fit_tensor, check_fit_split, mark_split, split_of
from regularkit.preprocess.transforms import MinMax, PCAWhiten, Rescale, Standardize, ZCAWhiten

__all__ = ["Standardize", "MinMax", "Rescale", "PCAWhiten", "ZCAWhiten", "Preprocessor", "ToDtype", "Rescaling",
           "to_dtype", "rescale", "mark_split", "split_of",
           "check_fit_split", "as_fit_tensor", "REGISTRY"]

#: The one registry of preprocessors (used by the conformance suite and configs).
REGISTRY = {"standardize": Standardize, "min_max": MinMax, "rescale": Rescale,
            "pca_whiten": PCAWhiten, "zca_whiten": ZCAWhiten}
