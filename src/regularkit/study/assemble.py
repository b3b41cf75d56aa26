"""A recipe -> the parts of a run: :mod:`regularkit.recipe.assemble`, under the study's import path."""
from regularkit.recipe.assemble import RunParts, assemble, build_batch_transform, smoothing_site

__all__ = ["RunParts", "assemble", "build_batch_transform", "smoothing_site"]
