"""study/report.py: how a strength is written in the table."""
import pytest

from regularkit.study.report import strength_text


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
