"""study/results/finish.py: the seeds' ensemble error and the chance error, against NumPy restatements."""
import numpy as np
import pytest
import torch

from regularkit.study.results import finish
from regularkit.study.results.summary import RecipeSummary


def test_chance_error_is_one_minus_the_most_common_class_share():
    y = torch.tensor([0, 1, 1, 2, 1, 0, 1, 3])
    assert finish.chance_error(y) == pytest.approx(1 - 4 / 8)
    assert finish.chance_error(torch.zeros(5, dtype=torch.long)) == 0.0


def test_the_seed_ensemble_averages_probabilities_and_pools_them_for_calibration(monkeypatch):
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.integers(0, 3, 40))
    probs = [rng.dirichlet(np.ones(3), 40).astype(np.float32) for _ in range(3)]
    monkeypatch.setattr(finish, "stored_outputs", lambda records, store: ({"a": probs, "b": probs[:1]}, 2))
    a, b, c = (RecipeSummary(name, "", [0]) for name in ("a", "b", "c"))
    assert finish.add_seed_ensembles([a, b, c], [], None, y) == 2          # the runs this store cannot see
    expected = float((np.mean(probs, axis=0).argmax(1) != y.numpy()).mean())
    assert a.stats["ensemble_test_error"] == (expected, 0.0)
    # not the mean of the members' errors: averaging probabilities is another prediction
    members = np.mean([(p.argmax(1) != y.numpy()).mean() for p in probs])
    assert expected != pytest.approx(members)
    np.testing.assert_array_equal(a.pooled_probs[0], np.concatenate(probs))
    np.testing.assert_array_equal(a.pooled_probs[1], np.tile(y.numpy(), 3))
    assert "ensemble_test_error" not in b.stats and b.pooled_probs[0] is probs[0]   # one seed: no ensemble
    assert c.pooled_probs is None and c.stats == {}                                 # nothing stored
