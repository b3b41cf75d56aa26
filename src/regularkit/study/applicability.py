"""Which recipes can run here: :mod:`regularkit.recipe.rules`, under the study's import path."""
from regularkit.recipe.rules import IMAGE_ONLY, Applicability, check_recipes, describe_data, regression_reason

__all__ = ["IMAGE_ONLY", "Applicability", "check_recipes", "describe_data", "regression_reason"]
