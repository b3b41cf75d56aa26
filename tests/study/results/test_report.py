"""study/results/report.py: how a strength is written in the table."""
import pytest

from regularkit.study.results.report import strength_text


@pytest.mark.parametrize("strength, text", [
    (None, "-"),
    ({"field": "reg.l2", "value": 0.01}, "λ=0.01"),
    ({"field": "model.dropout", "value": 0.45123, "tuned": True}, "p=0.45 ✓"),
    ({"field": "reg.l2", "value": 1.705887e-05, "tuned": True}, "λ=1.7e-05 ✓"),
    ({"field": "reg.ema_decay", "value": 0.9958207, "tuned": True}, "decay=0.996 ✓"),   # not "decay=1"
    ({"field": "reg.ema_decay", "value": 0.99995}, "decay=0.99995"),
    ({"field": "reg.ema_decay", "value": 1.0}, "decay=1"),
    ({"field": "reg.early_stopping.patience", "value": 10, "tuned": True}, "patience=10 ✓"),
    ({"field": "reg.l1", "value": {"reg.l1": 1e-4, "reg.l2": 5e-3}, "tuned": True}, "λ₁=0.0001 λ=0.005 ✓"),
])
def test_strength_text(strength, text):
    assert strength_text(strength) == text


def _summaries():
    from regularkit.metrics.paired import Interval
    from regularkit.study.results.summary import RecipeSummary

    stats = {"train_error": (0.0771, 0.0062), "val_error": (0.125, 0.0019), "test_error": (0.1368, 0.0005),
             "gap": (0.0598, 0.0062), "ensemble_test_error": (0.1291, 0.0), "tta_test_error": (0.1407, 0.0),
             "ece": (0.0293, 0.001)}
    base = RecipeSummary("baseline", "", [0, 1, 2], stats=dict(stats))
    other = RecipeSummary("random-erasing", "", [0, 1, 2], stats=dict(stats),
                          strength={"field": "augment.erasing", "value": 0.1433, "tuned": True},
                          deltas={"test_error": Interval(-0.0026, -0.0067, 0.0015, 3, "t", p_value=0.12)})
    return [base, other]


def _printed(width, terminal):
    import io

    from rich.console import Console

    from regularkit.study.results.report import print_table

    out = io.StringIO()
    print_table(_summaries(), title="t", console=Console(file=out, width=width, force_terminal=terminal,
                                                        color_system=None))
    return out.getvalue()


def test_a_log_gets_the_whole_table_whatever_its_width():
    text = _printed(60, terminal=False)  # a pipe or a log: nothing cut, nothing left out
    assert "…" not in text and "5.98 ± 0.62" in text and "-0.26 [-0.67, 0.15]" in text and "14.07" in text
    assert "too narrow" not in text


@pytest.mark.parametrize("width", [80, 100, 120])
def test_a_narrow_terminal_leaves_out_extra_columns_from_the_right_and_says_so(width):
    text = _printed(width, terminal=True)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    assert "too narrow for" in text and "ECE %" in text.split("too narrow for")[1]
    cells = text.split()
    for part in ("7.71", "0.62", "12.50", "13.68", "5.98", "-0.26", "p=0.14"):  # every number whole, maybe wrapped
        assert part in cells, part
    if width >= 120:  # room for the main columns: not wrapped
        assert "5.98 ± 0.62" in text and "-0.26 [-0.67, 0.15]" in text


def test_a_wide_terminal_shows_every_column():
    text = _printed(200, terminal=True)
    assert "too narrow" not in text and "ECE %" in text and "TTA test %" in text and "…" not in text


def test_the_delta_of_a_recipe_that_predicts_with_tta_is_marked():
    from regularkit.study.results.report import table_rows

    header, rows = table_rows(_summaries(), terminal=True)  # both carry a TTA error in this fixture
    assert rows[1][header.index("Δ test (95% CI)")] == "-0.26 [-0.67, 0.15] TTA"


def test_the_caption_explains_tta_only_when_a_recipe_predicts_with_it():
    from regularkit.study.results.report import caption

    with_tta = _summaries()
    without = _summaries()
    for s in without:
        del s.stats["tta_test_error"]
    assert "TTA: the recipe's error with test-time augmentation" in caption(with_tta)
    assert "TTA" not in caption(without) and "* beyond seed noise; strength ✓" in caption(without)
