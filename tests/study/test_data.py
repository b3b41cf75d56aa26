"""The study on the data users have: vector, sequence and image .npz files, image folders, CSV tables,
arrays and torch Datasets from Python; changed data is never mistaken for old data."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from regularkit.cli import main
from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig
from regularkit.study.data import prepare_data
from regularkit.study.pipeline import run_study

FAST = dict(epochs=2, seeds=2, batch_size=16)
REPORT = ("results.csv", "report.html", "learning_curves.png", "gap.png", "reliability.png", "data.json")


def toy(n=90, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, d)).astype(np.float32) + y[:, None]  # separable: a model can learn it
    return x, y


def vectors_npz(path, **extra):
    x, y = toy()
    np.savez(path, x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:], **extra)
    return path


def assert_report(out, recipes):
    for name in REPORT:
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["recipe"] for r in rows] == list(recipes)


DEFAULT = ("baseline", "l2", "dropout", "early-stopping", "gaussian-noise", "label-smoothing")


def test_vector_npz_runs_every_default_recipe(tmp_path):
    """The crash this issue started from: gaussian-noise on N x D data ("x must be a 4-D batch")."""
    result = run_study(StudyConfig(data=str(vectors_npz(tmp_path / "v.npz")), out=str(tmp_path / "o"), **FAST),
                       progress=False)
    assert_report(tmp_path / "o", DEFAULT)
    assert result.plan.data.kind == "vectors" and all(not r.get("diverged") for r in result.records)


def test_sequences_run_and_image_only_recipes_are_refused_before_any_training(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(80, 2, 20)).astype(np.float32)
    y = np.arange(80) % 2
    np.savez(tmp_path / "s.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:],
             layout=np.array("sequences"))
    out = tmp_path / "o"
    code = main(["study", "--data", str(tmp_path / "s.npz"), "--recipes", "baseline,mixup,cutout", "--out", str(out),
                 "--epochs", "1", "--seeds", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and "recipe 'cutout' cannot run here: it augments images (augment.cutout) and " \
                                   "the data are sequences 2 x 20; recipes that apply: baseline, mixup" in err
    assert main(["study", "--data", str(tmp_path / "s.npz"), "--recipes", "baseline,mixup,gaussian-noise",
                 "--out", str(out), "--epochs", "1", "--seeds", "1", "--no-progress"]) == 0
    assert_report(out, ("baseline", "mixup", "gaussian-noise"))


def test_image_folder_with_resizing(tmp_path):
    rng = np.random.default_rng(0)
    for c in range(2):
        (tmp_path / "imgs" / f"class{c}").mkdir(parents=True)
        for i in range(12):
            a = (rng.random((10 + i % 3, 10)) * 100).astype(np.uint8) + 120 * c  # ragged heights
            Image.fromarray(a).save(tmp_path / "imgs" / f"class{c}" / f"{i}.png")
    cfg = StudyConfig(data=str(tmp_path / "imgs"), image_size=(8, 8), recipes=("baseline", "flip-crop"),
                      out=str(tmp_path / "o"), model="cnn", channels=(4,), widths=(8,), **FAST)
    result = run_study(cfg, progress=False)
    assert_report(tmp_path / "o", ("baseline", "flip-crop"))
    assert tuple(result.plan.data.splits.input_shape) == (1, 8, 8)
    split = (tmp_path / "o" / "data.json").read_text()
    assert "train_files" in split and "class1/" in split  # the test split made here is recorded


def test_csv_table_with_a_string_target(tmp_path):
    x, y = toy(n=120)
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{i}" for i in range(x.shape[1])] + ["colour", "label"])
        for row, label in zip(x, y):
            w.writerow([f"{v:.5f}" for v in row] + [["red", "blue"][label % 2], ["ant", "bee", "cat"][label]])
    result = run_study(StudyConfig(data=str(path), target="label", recipes=("baseline", "l2"),
                                   out=str(tmp_path / "o"), **FAST), progress=False)
    assert result.plan.data.splits.classes == ("ant", "bee", "cat")
    assert tuple(result.plan.data.splits.input_shape) == (6 + 2,)  # six numbers, two one-hot colours
    assert_report(tmp_path / "o", ("baseline", "l2"))


@pytest.mark.parametrize("kind", ["arrays", "torch"])
def test_python_arrays_and_torch_datasets(tmp_path, kind):
    x, y = toy()
    if kind == "arrays":
        data = (x[:60], y[:60], x[60:], y[60:])
    else:
        data = (torch.utils.data.TensorDataset(torch.from_numpy(x[:60]), torch.from_numpy(y[:60])),
                torch.utils.data.TensorDataset(torch.from_numpy(x[60:]), torch.from_numpy(y[60:])))
    result = run_study(StudyConfig(recipes=("baseline", "mixup"), out=str(tmp_path / "o"), **FAST), data=data,
                       progress=False)
    assert len(result.records) == 4 and result.plan.data.kind == "vectors"


def test_changing_one_byte_of_the_data_file_retrains(tmp_path):
    path = vectors_npz(tmp_path / "v.npz")
    cfg = StudyConfig(data=str(path), recipes=("baseline",), out=str(tmp_path / "o"), epochs=1, seeds=1)
    first = run_study(cfg, progress=False)
    same = run_study(cfg, progress=False)
    assert same.records == first.records  # unchanged data: read back, not retrained
    x, y = toy()
    x[0, 0] += 1e-3  # one value, same shape, same path
    np.savez(path, x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    changed = run_study(cfg, progress=False)
    assert changed.records[0]["key"] != first.records[0]["key"]
    assert changed.plan.data.digest != first.plan.data.digest


def test_a_train_size_above_the_data_is_refused_and_one_above_the_split_uses_all_and_says_so(tmp_path):
    """Issue 23: ``--train-size 10**12`` was accepted without a word."""
    path = str(vectors_npz(tmp_path / "v.npz"))  # 60 training examples: 48 after the validation split
    with pytest.raises(RegularkitError, match=r"^train_size 1000000000000 is more than the 60 training examples of "
                                              r"v; leave it out to train on all of them$"):
        prepare_data(StudyConfig(data=path, train_size=10**12))
    assert prepare_data(StudyConfig(data=path, train_size=60)).description.endswith(
        "48 train (all of them; train_size 60 asked for more) / 12 val / 30 test")
    exact = prepare_data(StudyConfig(data=path, train_size=48))
    assert "48 train / 12 val" in exact.description and exact.train_size is None
    assert len(prepare_data(StudyConfig(data=path, train_size=20)).splits.y_train) == 20


# --- validation size (issue 24 item 10) ----------------------------------------------------------------

def _labels_npz(tmp_path, n, classes=5):
    rng = np.random.default_rng(0)
    path = tmp_path / "v.npz"
    y = np.arange(n) % classes
    np.savez(path, x_train=rng.normal(size=(n, 4)).astype(np.float32), y_train=y,
             x_test=rng.normal(size=(50, 4)).astype(np.float32), y_test=np.arange(50) % classes)
    return str(path)


def test_validation_stays_in_proportion_to_train_size_with_a_floor_and_says_so(tmp_path):
    path = _labels_npz(tmp_path, 20_000)
    # the fraction alone would keep 4,000; 2,000 training rows at f = 0.2 call for ceil(2000 * 0.25) = 500,
    # raised to the floor of 1,000
    d = prepare_data(StudyConfig(data=path, train_size=2000))
    assert (len(d.splits.y_train), len(d.splits.y_val)) == (2000, 1000)
    assert "1000 val (in proportion to train_size; --val-size sets it)" in d.description
    # 8,000 training rows: 2,000 validation, above the floor
    d = prepare_data(StudyConfig(data=path, train_size=8000))
    assert len(d.splits.y_val) == 2000
    # no train_size: the fraction of the pool, as before, and nothing said
    d = prepare_data(StudyConfig(data=path))
    assert len(d.splits.y_val) == 4000 and "in proportion" not in d.description


def test_the_cap_never_binds_on_the_default_digits_study():
    d = prepare_data(StudyConfig())
    cfg = StudyConfig()
    assert cfg.val_count(len(d.dataset.y_train)) is None
    assert len(d.splits.y_val) == int(np.ceil(0.2 * len(d.dataset.y_train)))


def test_val_size_sets_validation_exactly_and_its_bad_values_are_refused(tmp_path):
    path = _labels_npz(tmp_path, 3000)
    d = prepare_data(StudyConfig(data=path, val_size=321, train_size=500))
    assert (len(d.splits.y_val), len(d.splits.y_train)) == (321, 500)
    assert "in proportion" not in d.description
    with pytest.raises(RegularkitError, match=r"val_size 2999 leaves fewer than 2 of the 3,000"):
        prepare_data(StudyConfig(data=path, val_size=2999))
    for bad in (0, -3, 2.5, "100", True):
        with pytest.raises(RegularkitError, match="val_size"):
            StudyConfig(data=path, val_size=bad)


def test_val_size_flag_reaches_the_study(tmp_path, capsys):
    path = _labels_npz(tmp_path, 600)
    assert main(["study", "--data", path, "--val-size", "0", "--out", str(tmp_path / "o")]) == 2
    assert "val_size must be" in capsys.readouterr().err
