"""The contract's machinery: ops as nn.Modules (Sequential, train/eval, the module-tree walk), one image,
integer rounding, memory format."""
import pytest
import torch
from torch import nn

import regularkit.augment as A
from regularkit.augment.base import Augmentation, check_input, fill_for, in_float, keep_layout, to_integer
from regularkit.errors import RegularkitError


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_an_op_in_front_of_a_model_augments_in_training_and_not_in_eval():
    """Keras' preprocessing layers (and dropout), not torchvision v2: ``model.eval()`` predicts on clean inputs."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 5, 2))
    model = nn.Sequential(A.HorizontalFlip(p=1.0), net)
    x = torch.rand(6, 3, 4, 5, generator=gen(0))
    torch.testing.assert_close(model(x), net(x.flip(-1)), rtol=0, atol=0)
    model.eval()
    assert not model[0].training
    torch.testing.assert_close(model(x), net(x), rtol=0, atol=0)


def test_module_apply_with_a_function_still_walks_the_module_tree():
    """``nn.Module.apply(fn)`` (``model.apply(init)``) recurses into an op; ``op.apply(x, y, params)`` augments."""
    seen = []
    model = nn.Sequential(A.Compose([A.HorizontalFlip(), A.MixUp(num_classes=3)]), nn.Linear(2, 2))
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["HorizontalFlip", "MixUp", "ModuleDict", "Compose", "Linear", "Sequential"]

    class Invert(Augmentation):  # a user's op gets the same treatment
        def make_params(self, x, generator=None):
            return {}

        def apply(self, x, y, params):
            return 1 - x, y

    op = Invert()
    assert op.apply(lambda m: None) is op
    x = torch.rand(2, 1, 3, 3)
    assert torch.equal(op(x), 1 - x) and torch.equal(op.apply(x, None, {})[0], 1 - x)


def test_one_image_with_its_targets():
    x = torch.rand(3, 5, 4, generator=gen(0))
    assert torch.equal(A.HorizontalFlip(p=1.0)(x), x.flip(-1))
    soft = torch.tensor([0.25, 0.75, 0.0])
    out, y = A.CutMix(num_classes=3)(x, soft, gen(0))
    assert out.shape == (3, 5, 4) and torch.equal(y, soft)  # a batch of one is paired with itself
    out, y = A.CutMix(num_classes=3)(x, torch.tensor(2), gen(0))
    assert torch.equal(y, torch.tensor([0.0, 0.0, 1.0]))
    with pytest.raises(RegularkitError, match=r"y of one image must be a 0-d class index or soft targets \(K,\), "
                                              r"got \(2,\)"):
        A.HorizontalFlip()(x, torch.tensor([0, 1]))


def test_integer_results_are_rounded_half_to_even_and_clamped():
    values = torch.tensor([-3.0, 0.5, 1.5, 2.4999, 2.5, 254.5, 255.4, 300.0])
    assert to_integer(values, torch.uint8).tolist() == [0, 0, 2, 2, 2, 254, 255, 255]
    assert to_integer(values, torch.int8).tolist() == [-3, 0, 2, 2, 2, 127, 127, 127]
    assert fill_for(0.5, torch.uint8) == 0 and fill_for(1.5, torch.uint8) == 2 and fill_for(-4.0, torch.uint8) == 0
    assert fill_for(0.7, torch.float16) == 0.7
    x8 = torch.tensor([[10, 200]], dtype=torch.uint8)
    assert in_float(x8, lambda v: v * 1.3).tolist() == [[13, 255]] and in_float(x8, lambda v: v * 1.3).dtype == x8.dtype


def test_layout_and_input_checks():
    x = torch.rand(2, 3, 4, 5)
    cl = x.contiguous(memory_format=torch.channels_last)
    assert keep_layout(x.clone(), cl).is_contiguous(memory_format=torch.channels_last)
    assert keep_layout(cl.clone(), x).is_contiguous(memory_format=torch.channels_last)  # never forces contiguity
    assert keep_layout(torch.rand(2, 1, 4, 5), torch.rand(2, 1, 4, 5)).is_contiguous()
    batch, single = check_input(x[0])
    assert single and batch.shape == (1, 3, 4, 5)
    batch, single = check_input(x[0], images=False)
    assert not single and batch.shape == (3, 4, 5)
    with pytest.raises(RegularkitError, match=r"seed must be >= 0, got -1"):
        A.HorizontalFlip(seed=-1)
