"""The small residual CNN: builder contract, linear drop-path rates, residual identity, learning."""
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.models.resnet import BasicBlock, ResNet, build_resnet
from regularkit.noise import DropBlock2d, DropBlockSchedule, Dropout, DropPath


def leaf_call_order(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    order = []
    hooks = [m.register_forward_hook(lambda mod, args, out: order.append(mod))
             for m in model.modules() if not list(m.children())]
    model(x)
    for h in hooks:
        h.remove()
    return order


@pytest.mark.parametrize("input_shape, batch", [((1, 8, 8), 3), ((3, 28, 28), 2), ((2, 1, 1), 2), ((1, 7, 5), 1)])
def test_builder_contract(input_shape, batch):
    torch.manual_seed(0)
    model = build_resnet(input_shape, 10, widths=(8, 16), drop_path=0.2).eval()
    x = torch.randn(batch, *input_shape)
    out = model(x)
    assert out.shape == (batch, 10) and out.dtype == torch.float32
    order = leaf_call_order(model, x)
    assert order[-1] is model.head and isinstance(model.head, nn.Linear)
    assert model.head.out_features == 10


def test_registry_builds_it_from_a_config():
    from regularkit.models import MODELS, build_model
    from regularkit.train import ModelConfig
    cfg = ModelConfig(kind="resnet", channels=(4, 8), drop_path=0.1, batchnorm=False, dropout=0.2)
    model = MODELS["resnet"](cfg, (1, 8, 8), 4)
    assert isinstance(model, ResNet) and model(torch.randn(2, 1, 8, 8)).shape == (2, 4)
    assert [b.drop_path.p for b in model.blocks] == pytest.approx([0.05, 0.1])
    assert isinstance(model.dropout, Dropout) and model.dropout.p == 0.2
    # build_model dispatches through the registry: same seed, the same weights as the registry's own call
    torch.manual_seed(3)
    direct = MODELS["resnet"](cfg, (1, 8, 8), 4)
    built = build_model(cfg, (1, 8, 8), 4, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(direct.state_dict().values(), built.state_dict().values()))


@pytest.mark.parametrize("widths, blocks", [((16, 32, 64), 1), ((8, 16), 3), ((8,), 4)])
def test_drop_path_rates_grow_linearly_with_depth(widths, blocks):
    model = build_resnet((1, 8, 8), 10, widths=widths, blocks_per_stage=blocks, drop_path=0.3)
    rates = [m.p for m in model.modules() if isinstance(m, DropPath)]
    depth = len(widths) * blocks
    assert len(rates) == depth
    assert rates == pytest.approx([0.3 * (layer + 1) / depth for layer in range(depth)])
    assert model.drop_path_rates == pytest.approx(rates)


def test_block_in_eval_is_the_full_residual_function():
    torch.manual_seed(1)
    block = BasicBlock(4, 4, drop_path=0.5).eval()
    x = torch.randn(3, 4, 5, 5)
    branch = block.bn2(block.conv2(block.act(block.bn1(block.conv1(x)))))
    assert torch.equal(block(x), torch.relu(x + branch))


def test_block_in_train_drops_whole_samples_of_the_branch_and_keeps_the_identity():
    torch.manual_seed(2)
    block = BasicBlock(4, 4, drop_path=0.5, batchnorm=False).train()
    x = torch.randn(64, 4, 5, 5)
    out = block(x)
    identity_only = (out == torch.relu(x)).flatten(1).all(1)
    # ~half the samples see only relu(x); the rest see relu(x + branch / keep)
    assert 16 < int(identity_only.sum()) < 48
    branch = block.conv2(block.act(block.conv1(x)))
    kept = ~identity_only
    assert torch.allclose(out[kept], torch.relu(x + branch / 0.5)[kept], atol=1e-6)


def test_projection_shortcut_when_shape_changes():
    block = BasicBlock(4, 8, stride=2)
    assert isinstance(block.shortcut, nn.Sequential)
    assert block(torch.randn(2, 4, 6, 6)).shape == (2, 8, 3, 3)
    assert isinstance(BasicBlock(4, 4).shortcut, nn.Identity)


def test_options_change_the_architecture():
    with_bn = build_resnet((1, 8, 8), 3, widths=(4, 8))
    without = build_resnet((1, 8, 8), 3, widths=(4, 8), batchnorm=False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in without.modules())
    assert all(m.bias is not None for m in without.modules() if isinstance(m, nn.Conv2d))
    assert all(m.bias is None for m in with_bn.modules() if isinstance(m, nn.Conv2d))
    dropped = build_resnet((1, 8, 8), 3, widths=(4,), dropout=0.4)
    assert isinstance(dropped.dropout, Dropout) and dropped.dropout.p == 0.4
    assert isinstance(with_bn.dropout, nn.Identity)
    assert len(build_resnet((1, 8, 8), 3, widths=(4, 8), blocks_per_stage=2).blocks) == 4


def test_eval_is_deterministic_and_train_is_random_with_drop_path():
    torch.manual_seed(3)
    model = build_resnet((1, 8, 8), 5, widths=(4, 8), drop_path=0.5, batchnorm=False)
    x = torch.randn(8, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))
    torch.manual_seed(4)
    a = model(x)
    torch.manual_seed(4)
    assert torch.equal(model(x), a)  # draws from the global RNG the training loop seeds


def test_it_learns_a_small_problem():
    # 32 random 8x8 images with random labels: a working residual net memorises them quickly.
    torch.manual_seed(5)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 4, (32,))
    model = build_resnet((1, 8, 8), 4, widths=(8, 16), drop_path=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(40):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    assert float((model(x).argmax(1) == y).float().mean()) >= 0.9


def test_pickles():
    model = build_resnet((1, 8, 8), 3, widths=(4, 8), drop_path=0.2).eval()
    clone = pickle.loads(pickle.dumps(model))
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(clone(x), model(x))


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_shape=(8, 8)), r"the resnet needs images C x H x W, got input shape \(8, 8\)"),
    (dict(num_classes=0), r"num_classes must be >= 1, got 0"),
    (dict(widths=()), r"widths must name at least one stage, got \(\)"),
    (dict(widths=(8, 0)), r"widths must be >= 1, got 0"),
    (dict(blocks_per_stage=0), r"blocks_per_stage must be >= 1, got 0"),
    (dict(drop_path=1.0), r"drop_path must be in \[0, 1\), got 1.0"),
    (dict(dropout=-0.1), r"dropout must be in \[0, 1\), got -0.1"),
    (dict(input_shape=(1, 0, 8)), r"input_shape must be >= 1, got 0"),
])
def test_errors(kwargs, message):
    args = dict(input_shape=(1, 8, 8), num_classes=3)
    args.update(kwargs)
    with pytest.raises(RegularkitError, match=message):
        build_resnet(args.pop("input_shape"), args.pop("num_classes"), **args)


# --------------------------------------------------------------------------- mixing stages (Manifold MixUp, issue 22)
def test_mixing_stages_chain_is_the_forward_block_by_block():
    torch.manual_seed(0)
    m = ResNet((2, 8, 8), 3, widths=(4, 6), blocks_per_stage=2, drop_path=0.3, dropout=0.2)
    stages = m.mixing_stages()
    assert len(stages) == 1 + 4 + 1 and stages[0] is m.stem and list(stages[1:5]) == list(m.blocks)
    x = torch.randn(5, 2, 8, 8)
    for mode in (True, False):
        m.train(mode)
        torch.manual_seed(1)
        expected = m(x)
        torch.manual_seed(1)
        out = x
        for stage in stages:
            out = stage(out)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- DropBlock (issue 22)
def test_drop_block_in_the_last_two_stages_as_timm_places_it():
    torch.manual_seed(0)
    m = build_resnet((1, 16, 16), 3, widths=(4, 6, 8), blocks_per_stage=2, drop_block=0.2, drop_block_size=3)
    placed = [None if b.drop_block is None else (b.drop_block.drop_prob, b.drop_block.gamma_scale,
                                                 b.drop_block.fast) for b in m.blocks]
    assert placed == [None, None, (0.2, 0.25, False), (0.2, 0.25, False), (0.2, 1.0, False), (0.2, 1.0, False)]
    assert all(isinstance(b.drop_block, DropBlock2d) for b in m.blocks[2:])
    torch.manual_seed(0)
    plain = build_resnet((1, 16, 16), 3, widths=(4, 6, 8), blocks_per_stage=2)
    plain.load_state_dict(m.state_dict())
    x = torch.randn(4, 1, 16, 16)
    assert torch.equal(m.eval()(x), plain.eval()(x))
    assert not torch.equal(m.train()(x), plain.train()(x))
    schedule = DropBlockSchedule(m, ramp_steps=10)  # the paper's linear ramp reaches every placed layer
    assert all(b.drop_block.drop_prob == 0.0 for b in m.blocks[2:])
    torch.testing.assert_close(m.train()(x), plain.train()(x), rtol=0, atol=0)  # rate 0 at step 0: nothing dropped
    schedule.step()
    assert all(b.drop_block.drop_prob == pytest.approx(0.02) for b in m.blocks[2:])
