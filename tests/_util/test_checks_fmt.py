"""The validation checks name the parameter and the received value; the number formats people read."""
import math

import pytest

from regularkit._util.checks import check_choice, check_in_range, check_int, check_number, check_positive, check_rate
from regularkit._util.fmt import pct, pct_pm
from regularkit.errors import RegularkitError


@pytest.mark.parametrize("call, match", [
    (lambda: check_number("lr", "0.1"), r"lr must be a number, got '0.1'"),  # a quoted number is not a number
    (lambda: check_number("lr", True), r"lr must be a number, got True"),
    (lambda: check_number("lr", math.inf), r"lr must be finite, got inf"),
    (lambda: check_positive("lr", 0), r"lr must be > 0, got 0"),
    (lambda: check_rate("p", 1.0), r"p must be in \[0, 1\), got 1.0"),
    (lambda: check_in_range("a", 2, 0, 1, high_inclusive=False), r"a must be in \[0, 1\), got 2"),
    (lambda: check_int("epochs", 2.5), r"epochs must be an integer, got 2.5"),
    (lambda: check_int("epochs", "3"), r"epochs must be an integer, got '3'"),
    (lambda: check_int("epochs", 0, minimum=1), r"epochs must be >= 1, got 0"),
    (lambda: check_choice("mode", "MAX", ("min", "max")), r"mode must be one of 'min', 'max'; got 'MAX'"),
])
def test_checks_name_parameter_and_value(call, match):
    with pytest.raises(RegularkitError, match=match):
        call()


def test_checks_return_the_clean_value():
    assert check_number("x", 3) == 3.0 and isinstance(check_number("x", 3), float)
    assert check_int("n", 4, minimum=1) == 4


def test_percent_formats():
    assert pct(0.05678) == "5.68" and pct(0.05678, 1) == "5.7"
    assert pct_pm(0.05, 0.0123) == "5.00 ± 1.23"


def test_one_closed_and_one_half_open_rate_check():
    """check_probability is [0, 1] (a drop rate of 1 gives zeros, as torch); check_rate is [0, 1) (where 1 means
    nothing: Gaussian dropout's p / (1 - p)); no other copy of either exists in the package."""
    import pathlib

    from regularkit._util.checks import check_probability, check_rate
    from regularkit.errors import RegularkitError
    assert check_probability("p", 1) == 1 and check_probability("p", 0.0) == 0.0
    with pytest.raises(RegularkitError, match=r"^p must be in \[0, 1\], got 1.5$"):
        check_probability("p", 1.5)
    with pytest.raises(RegularkitError, match=r"^p must be in \[0, 1\), got 1.0$"):
        check_rate("p", 1.0)
    src = pathlib.Path(__file__).resolve().parents[2] / "src" / "regularkit"
    defined = [p.relative_to(src).as_posix() for p in src.rglob("*.py")
               if "def check_probability" in p.read_text() or "def check_drop_rate" in p.read_text()]
    assert defined == ["_util/checks.py"]
