"""``errors.RegularkitError``: the one error type for bad input, a ``ValueError``, and what raises it."""
import pytest

from regularkit import constraints
from regularkit.errors import RegularkitError


def test_it_is_a_value_error_so_callers_catching_value_error_keep_working():
    assert issubclass(RegularkitError, ValueError) and not issubclass(ValueError, RegularkitError)
    with pytest.raises(ValueError, match="bad"):
        raise RegularkitError("bad")


def test_library_validation_raises_it_with_the_received_value():
    with pytest.raises(RegularkitError, match=r"max_value must be > 0, got -1"):
        constraints.MaxNorm(max_value=-1.0)
