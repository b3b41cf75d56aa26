"""regularkit.transfer_demo: the lecture's transfer table, on synthetic tasks (always) and Fashion-MNIST if present."""
import json

import numpy as np
import pytest
import torch

from regularkit.demos import transfer as T
from regularkit.demos.transfer import experiment as E
from regularkit.errors import RegularkitError
from regularkit.transfer import bn_frozen

PNG = b"\x89PNG\r\n\x1a\n"
TINY = dict(seeds=(0, 1), sizes=(12, None), different_sizes=(16, None), pretrain_epochs=6, epochs=1, min_steps=4,
            probe_steps=8, channels=(4, 8), widths=(16,), batch_size=32, probe_pool=2)


def _images(n, classes, seed, side=8, noise=0.3):
    """Class prototypes (one random pattern per class, from ``classes``' own seed) plus pixel noise."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(max(classes) + 1, 1, side, side, generator=torch.Generator().manual_seed(1000 + sum(classes)))
    y = torch.arange(n) % len(classes)
    x = (protos[torch.tensor(classes)[y]] + noise * torch.randn(n, 1, side, side, generator=g)).clamp(0, 1)
    return x.numpy(), y.numpy()


@pytest.fixture(scope="module")
def data():
    source = _images(300, [0, 1, 2], seed=1)
    similar = (*_images(90, [3, 4, 5, 6], seed=2), *_images(60, [3, 4, 5, 6], seed=3))
    different = (*_images(80, [7, 8], seed=4, side=4), *_images(40, [7, 8], seed=5, side=4))  # 4x4: resized to 8x8
    return {"source": source, "similar": similar, "different": different}


@pytest.fixture(scope="module")
def trained(data):
    cfg = T.TransferSettings(**TINY)
    model, info = T.pretrain(E._tensors(*data["source"]), cfg)
    (xtr, ytr), test = E._task(data["similar"], "similar")
    return cfg, model, info, T.make_split((xtr, ytr), test, 40, 0, cfg)


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same(a, b, keys):
    return all(torch.equal(a[k], b[k]) for k in keys)


@pytest.fixture(scope="module")
def table(data):
    return T.transfer_table(progress=False, **data, **TINY)


def test_pretraining_learns_the_source(trained):
    _, model, info, _ = trained
    assert info["val_error"] < 0.3 and info["epochs"] <= 6 and model.head.out_features == 3


def test_split_is_stratified_and_carves_validation(trained):
    cfg, _, _, split = trained
    assert len(split.y_train) + len(split.y_val) == 40 and len(split.y_val) == 8  # 20%
    assert torch.bincount(split.y_val).tolist() == [2, 2, 2, 2] and split.num_classes == 4
    assert len(split.y_test) == 60


def test_linear_on_top_changes_only_the_new_head(trained):
    cfg, pretrained, _, split = trained
    before = _state(pretrained)
    model, info = T.run_method("linear_top", pretrained, split, cfg, seed=0)
    assert _same(before, _state(pretrained), before)  # the pretrained network itself is never touched
    after = model.state_dict()
    body = [k for k in before if not k.startswith("head.")]
    assert any("running_mean" in k for k in body) and any("num_batches_tracked" in k for k in body)
    assert _same(before, after, body)  # frozen weights *and* BatchNorm statistics (bn="eval")
    assert all(bn_frozen(m) for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase))
    assert model.head.out_features == 4 and model.head.in_features == pretrained.head.in_features
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    assert info["stage1"]["lrs"] == {"head": cfg.lr}


def test_linear_probe_on_cached_features_equals_the_whole_network(trained, monkeypatch):
    cfg, pretrained, _, split = trained
    fast, info = T.run_method("linear_top", pretrained, split, cfg, seed=0)
    assert info["stage1"]["cached_blocks"] == 4  # input dropout, conv, flatten, dense block
    monkeypatch.setattr(E, "_fixed", lambda block: False)  # no caching: every step runs the whole network
    slow, info = T.run_method("linear_top", pretrained, split, cfg, seed=0)
    assert info["stage1"]["cached_blocks"] == 0
    torch.testing.assert_close(fast.head.weight, slow.head.weight, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("method, moved, still", [
    ("finetune_top", ("features.", "head."), ("conv.",)),
    ("finetune_all", ("conv.", "features.", "head."), ()),
])
def test_finetuning_moves_what_it_says_and_holds_bn_statistics(trained, method, moved, still):
    cfg, pretrained, _, split = trained
    before = _state(pretrained)
    model, history = T.run_method(method, pretrained, split, cfg, seed=0)
    after = model.state_dict()
    stats = [k for k in before if "running_" in k or "num_batches" in k]
    assert stats and _same(before, after, stats)  # bn="eval" in both stages
    weights = [k for k, _ in pretrained.named_parameters() if not k.startswith("head.")]
    for prefix in moved[:-1]:  # the new head has another shape; the body layers can be compared
        assert not _same(before, after, [k for k in weights if k.startswith(prefix)]), prefix
    for prefix in still:
        assert _same(before, after, [k for k in weights if k.startswith(prefix)]), prefix
    # the cookbook's rates: head 1, top-most layers 1/10, the rest 1/100 of the original lr
    assert history["stage1"]["lrs"] == {"head": cfg.lr}
    expected = {"head": cfg.lr, "top": cfg.lr * 0.1} | ({"rest": cfg.lr * 0.01} if method == "finetune_all" else {})
    assert history["stage2"]["lrs"] == pytest.approx(expected)
    assert model.head.out_features == 4


def test_stage_probe_is_a_linear_classifier_on_a_frozen_stage(trained):
    cfg, pretrained, _, split = trained
    before = _state(pretrained)
    probe, _ = T.run_method("linear_conv1", pretrained, split, cfg, seed=0)
    assert probe.head.in_features == 4 * 2 * 2 and probe.head.out_features == 4  # channels x pool x pool
    assert [n for n, p in probe.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    body = {k: v for k, v in probe.body.state_dict().items()}
    assert all(torch.equal(v, before[f"conv.{int(k.split('.')[0]) - 1}.{k.split('.', 1)[1]}"])
               for k, v in body.items())  # body[0] is the input dropout; conv layers follow
    with pytest.raises(RegularkitError, match=r"stage must be in \[1, 2\] for this CNN, got 3"):
        T.StageProbe(pretrained, 3, 4)


def test_feature_cache_reuses_only_identical_bottoms(trained):
    _, pretrained, _, split = trained
    cache = E._FeatureCache()
    blocks = E._blocks(pretrained)
    a = cache(blocks, 2, split.x_train)
    assert cache(blocks, 2, split.x_train) is a
    other = E._blocks(E._new_cnn((1, 8, 8), 3, T.TransferSettings(**TINY), seed=5))
    assert not torch.equal(cache(other, 2, split.x_train), a)
    probe = T.StageProbe(pretrained, 2, 4, pool=2)  # same weights as the CNN's conv, another function
    assert cache(E._blocks(probe), 3, split.x_train).shape[1] == 8 * 2 * 2


def test_unknown_method():
    with pytest.raises(RegularkitError, match=r"method must be one of 'scratch', .*'finetune_all'; got 'dropout'"):
        T.run_method("dropout", None, None, T.TransferSettings(), 0)


def test_table_has_every_cell_and_a_verdict_per_quadrant(table):
    for task, sizes in (("similar", ["12", "all"]), ("different", ["16", "all"])):
        assert table.sizes(task) == sizes
        summary = table.summary(task)
        assert set(summary) == {(m, s) for m in T.METHODS for s in sizes}
        assert all(v["runs"] == 2 and 0 <= v["mean"] <= 1 and v["std"] >= 0 for v in summary.values())
    cells = table.cells()
    assert [(c["task"], c["amount"]) for c in cells] == list(T.ADVICE)
    for c in cells:
        assert c["best_transfer"] in T.METHODS[1:] and c["pick"] in T.ADVICE[c["task"], c["amount"]][1]
        assert c["verdict"].split(":")[0] in ("agrees", "tie", "disagrees")
        assert (c["verdict"] == "agrees") == (c["pick"] == c["best_transfer"])
        assert c["best_transfer_error"]["mean"] <= c["pick_error"]["mean"]
        d, ds = c["scratch_gap"]  # error(scratch) - error(best transfer method), paired over the seeds
        assert d == pytest.approx(c["scratch_error"]["mean"] - c["best_transfer_error"]["mean"])
        assert c["vs_scratch"].split(" ")[0] == ("tie" if abs(d) <= ds else "transfer" if d > 0 else "scratch")
    assert [c["size"] for c in cells] == ["12", "all", "16", "all"]
    assert len(table.records) == 2 * (2 + 2) * len(T.METHODS)
    n = {r["size"]: r["n_train"] + r["n_val"] for r in table.records if r["task"] == "different"}
    assert n == {"16": 16, "all": 80}


def test_result_round_trips_through_json(table):
    again = T.TransferResult.from_dict(json.loads(json.dumps(table.to_dict())))
    assert again.cells() == table.cells() and again.summary("different") == table.summary("different")


def test_gap_is_paired_over_seeds(table):
    err = {(r["method"], r["seed"]): r["test_error"] for r in table.records
           if (r["task"], r["size"]) == ("similar", "12")}
    diffs = [err["scratch", s] - err["linear_top", s] for s in (0, 1)]
    assert table.gap("similar", "12", "scratch", "linear_top") == pytest.approx((np.mean(diffs), np.std(diffs, ddof=1)))


def test_same_seeds_same_numbers(data, table):
    again = T.transfer_table(progress=False, **data, **TINY)
    assert [r["test_error"] for r in again.records] == [r["test_error"] for r in table.records]
    other = T.transfer_table(progress=False, **data, **{**TINY, "seeds": (7,)})
    mine = {(r["task"], r["size"], r["method"]): r["test_error"] for r in table.records if r["seed"] == 0}
    theirs = {(r["task"], r["size"], r["method"]): r["test_error"] for r in other.records}
    assert mine.keys() == theirs.keys() and mine != theirs


def test_threads_are_set_for_the_run_and_restored(data):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = T.transfer_table(progress=False, **data, threads=1,
                                  **{**TINY, "seeds": (0,), "sizes": (12,), "different_sizes": (16,)})
        assert torch.get_num_threads() == 2 and result.environment["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_demo_writes_png_and_json(data, tmp_path, capsys):
    paths = T.transfer_demo(tmp_path / "out", **data, **{**TINY, "seeds": (0,)})
    assert [p.name for p in paths] == ["transfer.png", "transfer.json"]
    assert paths[0].read_bytes()[:8] == PNG
    saved = json.loads(paths[1].read_text())
    assert set(saved["summary"]["similar"]) == {f"{m}@{s}" for m in T.METHODS for s in ("12", "all")}
    assert saved["settings"]["channels"] == [4, 8] and saved["environment"]["versions"]["torch"]
    assert set(saved["settings"]["data"].values()) == {"given arrays"}
    assert len(saved["cells"]) == 4 and saved["seconds"] > 0
    out = capsys.readouterr().out
    assert "very similar dataset" in out and "use linear classifier on top layer" in out
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


def test_settings_are_checked():
    with pytest.raises(RegularkitError, match=r"seeds must hold at least one seed, got \(\)"):
        T.TransferSettings(seeds=())
    with pytest.raises(RegularkitError, match=r"size must be >= 2, got 1"):
        T.TransferSettings(sizes=(1, None))
    with pytest.raises(RegularkitError, match=r"lr must be > 0, got -1"):
        T.TransferSettings(lr=-1)
    with pytest.raises(RegularkitError, match=r"val_fraction must be in \(0.0, 1.0\), got 1"):
        T.TransferSettings(val_fraction=1)
    with pytest.raises(RegularkitError, match=r"similar must be \(x_train, y_train, x_test, y_test\)"):
        E._task((np.zeros((2, 1, 8, 8)), np.zeros(2)), "similar")


def test_missing_fashion_mnist_raises_the_loaders_error(tmp_path, monkeypatch):
    from regularkit.data import datasets
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp_path / "none")
    monkeypatch.setenv("REGULARKIT_DATA", str(tmp_path / "none"))
    with pytest.raises(RegularkitError, match=r"does not hold Fashion-MNIST: missing train-images-idx3-ubyte.gz"):
        T.transfer_table(progress=False, data_dir=tmp_path, **TINY)


@pytest.mark.slow
def test_quick_demo_on_fashion_mnist_and_digits(tmp_path):
    from regularkit.data import load_dataset
    try:
        load_dataset("fashion-mnist")
    except RegularkitError as exc:
        pytest.skip(f"Fashion-MNIST is not on this machine: {exc}")
    paths = T.transfer_demo(tmp_path, quick=True, progress=False)
    saved = json.loads(paths[1].read_text())
    assert {r["n_test"] for r in saved["records"]} == {T.QUICK["max_test"]}
    digits = [r for r in saved["records"] if r["task"] == "different"]
    assert {r["size"] for r in digits} == {"30", "all"}
    assert all(0 <= r["test_error"] <= 1 for r in saved["records"])
    assert saved["pretrain"]["n_train"] == 720  # max_source 800, 10% carved off for validation
    assert saved["settings"]["data"] == {"source": "Fashion-MNIST 0-4", "similar": "Fashion-MNIST 5-9",
                                         "different": "digits"}
