"""``_util.fmt``: percentages as tables print them; never ``-0.00`` (issue 24, item 9), negatives kept.

Found by mutation testing: ``text[1:]`` -> ``text[0:]`` survived, because no test printed a negative
value that rounds to zero.
"""
import pytest

from regularkit._util.fmt import pct, pct_pm


@pytest.mark.parametrize("fraction, digits, text", [
    (0.05678, 2, "5.68"), (0.05678, 1, "5.7"), (0.05678, 0, "6"),
    (-0.00001, 2, "0.00"), (-0.00004999, 2, "0.00"), (-0.0004, 1, "0.0"), (-0.004, 0, "0"),  # no "-0"
    (-0.00005, 2, "-0.01"), (-0.0567, 2, "-5.67"), (-1.0, 2, "-100.00"),                     # a real sign stays
    (0.0, 2, "0.00"), (1.0, 3, "100.000"),
])
def test_pct_rounds_half_to_even_like_format_and_drops_a_minus_on_zero(fraction, digits, text):
    assert pct(fraction, digits) == text
    assert pct(fraction, digits) == format(100 * fraction, f".{digits}f").replace("-", "", 1) \
        if float(format(100 * fraction, f".{digits}f")) == 0 else format(100 * fraction, f".{digits}f")


def test_pct_pm_joins_mean_and_spread():
    assert pct_pm(0.05, 0.0123) == "5.00 ± 1.23"
    assert pct_pm(-0.00001, 0.001, 1) == "0.0 ± 0.1"
    assert pct_pm(-0.02, 0.0, 0) == "-2 ± 0"
