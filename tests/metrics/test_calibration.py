"""regularkit.calibration: ECE against a hand-computed example and a plain loop; the diagram file."""
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from regularkit.errors import RegularkitError
from regularkit.metrics.calibration import calibration_bins, expected_calibration_error, reliability_diagram

# Four predictions, 5 bins (0, .2], (.2, .4], ..., (.8, 1]:
#   conf .9  correct  -> bin 4;  conf .7 wrong, conf .7 correct -> bin 3;  conf .55 wrong -> bin 2
PROBS = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.55, 0.45]], dtype=torch.float64)
LABELS = torch.tensor([0, 1, 1, 1])
# ECE = 1/4 |1 - .9| + 2/4 |.5 - .7| + 1/4 |0 - .55| = .025 + .1 + .1375
HAND_ECE = 0.2625


def test_ece_hand_computed():
    assert expected_calibration_error(PROBS, LABELS, n_bins=5) == pytest.approx(HAND_ECE, abs=1e-12)


def test_bins_hand_computed():
    bins = calibration_bins(PROBS, LABELS, n_bins=5)
    assert bins.counts.tolist() == [0, 0, 1, 2, 1]
    assert bins.accuracy[2:].tolist() == [0.0, 0.5, 1.0]
    assert np.allclose(bins.confidence[2:].numpy(), [0.55, 0.7, 0.9])
    assert torch.isnan(bins.accuracy[:2]).all()  # empty bins are marked, not zero


def test_bins_are_right_closed():
    # a confidence of exactly 0.6 belongs to (0.4, 0.6], Guo et al.'s B_m = ((m-1)/M, m/M]
    probs = torch.tensor([[0.6, 0.2, 0.2], [0.2, 0.2, 0.6]], dtype=torch.float64)
    assert calibration_bins(probs, torch.tensor([0, 0]), n_bins=5).counts.tolist() == [0, 0, 2, 0, 0]


def test_perfect_calibration_gives_zero():
    # 10 predictions at confidence 0.8, 8 of them right
    probs = torch.tensor([[0.8, 0.2]] * 10, dtype=torch.float64)
    y = torch.tensor([0] * 8 + [1] * 2)
    assert expected_calibration_error(probs, y) == pytest.approx(0.0, abs=1e-12)


def _reference_ece(probs: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs((pred[inside] == y[inside]).mean() - conf[inside].mean())
    return total


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(2, 6), n_bins=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_ece_matches_a_plain_loop_and_lies_in_unit_interval(n, k, n_bins, seed):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(n, k, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    ece = expected_calibration_error(logits, y, n_bins, from_logits=True)
    assert ece == pytest.approx(_reference_ece(logits.softmax(1).numpy(), y.numpy(), n_bins), abs=1e-12)
    assert 0.0 <= ece <= 1.0


def test_logits_flag_and_soft_labels():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])
    y = torch.tensor([0, 0, 1])
    via_logits = expected_calibration_error(logits, y, from_logits=True)
    assert via_logits == pytest.approx(expected_calibration_error(logits.softmax(1), y))
    soft_y = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])  # argmax is the label
    assert expected_calibration_error(logits, soft_y, from_logits=True) == pytest.approx(via_logits)


@pytest.mark.parametrize("call, message", [
    (lambda: expected_calibration_error(torch.tensor([[2.0, 1.0]]), torch.tensor([0])),
     r"pass from_logits=True for logits\), got a row summing to 3"),
    (lambda: expected_calibration_error(PROBS, LABELS, n_bins=0), r"n_bins must be >= 1, got 0"),
    (lambda: expected_calibration_error(PROBS, torch.tensor([0, 1])), r"shape \(4,\) or N x K soft targets, got shape \(2,\)"),
    (lambda: expected_calibration_error(PROBS[:, 0], LABELS), r"probs must be N x K with K >= 2, got shape \(4,\)"),
    (lambda: expected_calibration_error([[0.5, 0.5]], LABELS), r"probs must be a torch.Tensor, got list"),
])
def test_errors_name_the_value(call, message):
    with pytest.raises(RegularkitError, match=message):
        call()


def test_reliability_diagram_writes_a_png(tmp_path):
    path = reliability_diagram(PROBS, LABELS, tmp_path / "sub" / "rel.png", n_bins=5)
    assert path == tmp_path / "sub" / "rel.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(path.parent) == ["rel.png"]  # no temp file left behind


def test_reliability_diagram_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "rel.png"
    path.write_bytes(b"previous")

    def broken_savefig(self, *args, **kwargs):
        raise RuntimeError("disk full")

    from matplotlib.figure import Figure
    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        reliability_diagram(PROBS, LABELS, path, n_bins=5)
    assert path.read_bytes() == b"previous"  # the old file is intact
    assert os.listdir(tmp_path) == ["rel.png"]
