"""Training flips and translations, test views: what each switch puts in and takes out."""
import torch
from torch import nn

from regularkit.augment import HorizontalFlip, RandomCrop
from regularkit.speedrun.augmentation import batch_transform, shift, model_at_test, views_at_test
from regularkit.speedrun.config import SpeedrunConfig


def test_shift_moves_content_with_zeros_coming_in():
    x = torch.arange(16.0).view(1, 1, 4, 4) + 1
    out = shift(x, 1, 1)
    assert torch.equal(out[0, 0, 1:, 1:], x[0, 0, :3, :3])
    assert out[0, 0, 0].abs().sum() == 0 and out[0, 0, :, 0].abs().sum() == 0
    assert torch.equal(shift(shift(x, -1, -1), 1, 1)[0, 0, 1:, 1:], x[0, 0, 1:, 1:])


def test_training_ops_follow_the_switches():
    ops = lambda cfg: [type(op) for op in batch_transform(cfg).pipeline.ops]  # noqa: E731
    assert ops(SpeedrunConfig()) == [HorizontalFlip, RandomCrop]
    assert ops(SpeedrunConfig(without=("flip",))) == [RandomCrop]
    assert ops(SpeedrunConfig(without=("translate",))) == [HorizontalFlip]
    assert batch_transform(SpeedrunConfig(without=("flip", "translate"))) is None
    assert batch_transform(SpeedrunConfig(translate=0, without=("flip",))) is None


def test_training_transform_only_flips_left_right_and_shifts_within_range():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:14, 4:8] = 1.0                       # a blob left of centre
    cfg = SpeedrunConfig(translate=2)
    out, y = batch_transform(cfg)(x, torch.zeros(64, dtype=torch.long), torch.Generator().manual_seed(0))
    rows = out[:, 0].sum(2).nonzero()[:, 1]
    assert rows.min() >= 8 and rows.max() <= 15     # vertical position moves by <= 2 pixels: never flipped
    cols = out[:, 0].sum(1).argmax(1)
    assert (cols > 14).any() and (cols < 14).any()  # some mirrored, some not
    assert torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # a 2-pixel shift keeps the whole blob


class CountingModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls, self.images = 0, 0
        self.lin = nn.Linear(28 * 28, 10)

    def forward(self, x):
        self.calls += 1
        self.images += x.shape[0]
        return self.lin(x.flatten(1))


def test_without_tta_the_model_sees_each_test_image_once():
    x = torch.rand(5, 1, 28, 28)
    for cfg, views in ((SpeedrunConfig(without=("tta",)), 1), (SpeedrunConfig(tta_shift=0), 2),
                       (SpeedrunConfig(), 6)):
        model = CountingModel()
        model_at_test(model, cfg)(x)
        assert model.calls == 1 and model.images == 5 * views
    assert len(views_at_test(SpeedrunConfig(tta_shift=2))) == 6
    model = CountingModel()
    assert model_at_test(model, SpeedrunConfig(without=("tta",))) is model
