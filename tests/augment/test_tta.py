"""Test-time augmentation: invariant models are unchanged, averages are right, modes restored."""
import pickle

import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.tta import TTA, crop_view, tta_views


class FlipInvariant(nn.Module):
    """f(x) = g(x + hflip(x)): exactly invariant to horizontal flips."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3))

    def forward(self, x):
        return self.net(x + x.flip(-1))


def test_flip_invariant_model_equals_tta_of_it():
    torch.manual_seed(0)
    model = FlipInvariant()
    x = torch.rand(5, 2, 6, 6)
    model(x)  # materialise the lazy layer
    with torch.no_grad():
        torch.testing.assert_close(TTA(model, "flips")(x), model(x), atol=1e-6, rtol=1e-6)
        probs = TTA(model, "flips", average="probs")(x)
        torch.testing.assert_close(probs, model(x).softmax(1), atol=1e-6, rtol=1e-6)


def test_average_over_views_matches_manual_loop_and_batched_equals_unbatched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    x = torch.rand(3, 3, 8, 8)
    for transforms in ("flips", "five_crop", "ten_crop", "scales", ["identity", "vflip"]):
        views = tta_views(transforms)
        manual = torch.stack([model(v(x)) for v in views]).mean(0)
        with torch.no_grad():
            torch.testing.assert_close(TTA(model, transforms)(x), manual, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(TTA(model, transforms, batched=False)(x), manual, atol=1e-5, rtol=1e-5)
            probs = TTA(model, transforms, average="probs")(x)
            torch.testing.assert_close(probs.sum(1), torch.ones(3))
    assert len(tta_views("five_crop")) == 5 and len(tta_views("ten_crop")) == 10
    assert len(tta_views("scales", scales=(0.8, 1.0, 1.2, 1.4))) == 4


def test_crops_are_the_corners_and_centre_back_at_input_size():
    x = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8)
    top_left = crop_view(0, 0, 0.5, fit="pad")(x)
    assert top_left.shape == x.shape
    torch.testing.assert_close(top_left[..., 2:6, 2:6], x[..., :4, :4])  # the crop, centred, zero padded
    assert top_left[..., :2, :].abs().sum() == 0
    bottom_right = crop_view(1, 1, 0.5)(x)
    ref = nn.functional.interpolate(x[..., 4:, 4:], size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(bottom_right, ref)
    # scale 1.0 is the identity; other scales keep the size
    for v in tta_views("scales", scales=(1.0, 0.7, 1.3)):
        assert v(x).shape == x.shape
    torch.testing.assert_close(tta_views("scales", scales=(1.0,))[0](x), x)


def test_model_runs_in_eval_mode_and_mode_is_restored():
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x.flatten(1)[:, :2]

    spy = Spy().train()
    TTA(spy, "flips")(torch.rand(2, 1, 3, 3))
    assert seen == [False] and spy.training
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(9, 2)).train()
    x = torch.rand(4, 1, 3, 3)
    tta = TTA(model, ["identity"])
    torch.testing.assert_close(tta(x), tta(x))  # dropout off: deterministic
    assert model.training


def test_a_wrapped_model_runs_bare_and_its_own_mode_is_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(9, 2))
    wrapped = nn.DataParallel(model).train()  # what DDP is to unwrapping: the model in .module
    model.eval()  # the bare model's mode, not the wrapper's, is what runs (and what must come back)
    tta = TTA(wrapped, "flips")
    assert tta.model is model and set(tta.state_dict()) == {f"model.{k}" for k in model.state_dict()}
    x = torch.rand(4, 1, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(tta(x), TTA(model, "flips")(x))
    assert not model.training and wrapped.training
    model.train()
    tta(x)
    assert model.training


def test_custom_callables_and_pickling():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    tta = TTA(model, [lambda x: x, lambda x: x * 0])
    x = torch.rand(3, 1, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(tta(x), (model(x) + model(x * 0)) / 2)
    clone = pickle.loads(pickle.dumps(TTA(model, "ten_crop")))
    with torch.no_grad():
        torch.testing.assert_close(clone(x), TTA(model, "ten_crop")(x))


@pytest.mark.parametrize("make, match", [
    (lambda: TTA(nn.Identity(), "twenty_crop"), "transforms must be one of .*; got 'twenty_crop'"),
    (lambda: TTA(nn.Identity(), ["rot90"]), "transform name must be one of 'identity', 'hflip', 'vflip'; got 'rot90'"),
    (lambda: TTA(nn.Identity(), [3]), "a TTA transform must be a name or a callable, got 3"),
    (lambda: TTA(nn.Identity(), []), "transforms must hold at least one view, got an empty list"),
    (lambda: TTA(nn.Identity(), average="median"), "average must be one of 'logits', 'probs'; got 'median'"),
    (lambda: TTA(lambda x: x), "model must be an nn.Module, got function"),
    (lambda: TTA(nn.Identity(), "five_crop", crop_fraction=1.5), r"crop_fraction must be in \(0.0, 1.0\], got 1.5"),
    (lambda: TTA(nn.Identity(), "scales", scales=(1.0, -1.0)), "scales must be > 0, got -1.0"),
    (lambda: TTA(nn.Identity())(torch.rand(3, 4)), r"TTA needs a batch N x C x H x W, got torch.Size\(\[3, 4\]\)"),
])
def test_errors(make, match):
    with pytest.raises(RegularkitError, match=match):
        make()
