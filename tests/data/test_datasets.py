"""Datasets: the Dataset record, digits against scikit-learn, Fashion-MNIST lookup, .npz validation, dispatch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regularkit.data.datasets import (
    DATASETS,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    Dataset,
    load_dataset,
    load_npz,
)
from regularkit.errors import RegularkitError

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_registry_is_one_literal_dict():
    assert list(DATASETS) == ["digits", "fashion-mnist"]


ACCEPTED = (r"choose one of digits, fashion-mnist, or a path to a \.npz file, an image folder "
            r"\(root/<class>/\*\.png or root/train/ and root/test/\), or a table \(\.csv, \.parquet, \.pq\) "
            r"with target=$")


def test_unknown_name_lists_the_choices():
    with pytest.raises(RegularkitError, match=r"^unknown dataset 'foo'; " + ACCEPTED):
        load_dataset("foo")


def test_unknown_paths_name_the_path_and_list_what_is_accepted(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(RegularkitError, match=rf"^unknown dataset '{tmp_path}/x\.npy' \(\.npy is not a format we "
                                              r"read; save x_train, y_train, x_test, y_test into one \.npz with "
                                              r"numpy\.savez\); " + ACCEPTED):
        load_dataset(tmp_path / "x.npy")
    with pytest.raises(RegularkitError, match=rf"^unknown dataset '{tmp_path}/gone\.bin' \(no such file or "
                                              r"folder\); " + ACCEPTED):
        load_dataset(tmp_path / "gone.bin")
    with pytest.raises(RegularkitError, match=rf"^{tmp_path}: no class folders; an image folder is root/<class>/"):
        load_dataset(tmp_path)  # a folder without class folders
    with pytest.raises(RegularkitError, match=r"^a dataset is a name or a path, got 3$"):
        load_dataset(3)
    with pytest.raises(RegularkitError, match=r"^digits: layout does not apply to a registered dataset; it takes "
                                              r"no options besides data_dir$"):
        load_dataset("digits", layout="images")


# ---------------------------------------------------------------- the Dataset record

def vec(n=4, d=3):
    return np.zeros((n, d), np.float32), np.arange(n) % 2


def test_kind_is_inferred_from_the_shape_or_declared():
    for shape, kind in [((4, 3), "vectors"), ((4, 2, 5), "sequences"), ((4, 1, 2, 2), "images")]:
        x = np.zeros(shape, np.float32)
        ds = Dataset("t", x, np.arange(4) % 2, x, np.arange(4) % 2, num_classes=2)
        assert ds.layout is None and ds.kind == kind
        assert Dataset("t", x, np.arange(4) % 2, x, np.arange(4) % 2, num_classes=2, layout=kind).kind == kind


@pytest.mark.parametrize("kwargs, message", [
    (dict(layout="images"), r"^t: layout 'images' needs x of shape N×C×H×W, got shape \(4, 3\)$"),
    (dict(layout="image"), r"^t: layout must be one of 'vectors', 'sequences', 'images'; got 'image'$"),
    (dict(flips=("horizontal",)), r"^t: flips \('horizontal',\) describe images or sequences, not vectors$"),
    (dict(fill="reflect"), r"^t: fill 'reflect' describes images or sequences, not vectors$"),
    (dict(sources={"when": object()}), r"^t: sources must be JSON-ready: Object of type object is not JSON"),
    (dict(sources=[1]), r"^t: sources must be a dict or None, got list$"),
])
def test_dataset_layout_and_semantics_are_validated(kwargs, message):
    x, y = vec()
    with pytest.raises(RegularkitError, match=message):
        Dataset("t", x, y, x, y, num_classes=2, **kwargs)


@pytest.mark.parametrize("flips, fill, message", [
    ("horizontal", None, r"^t: flips must be a tuple of 'horizontal' / 'vertical', got 'horizontal'$"),
    (("diagonal",), None, r"^t: flips may hold 'horizontal' and 'vertical', got 'diagonal'$"),
    (("vertical", "vertical"), None, r"^t: flips names a flip twice: \('vertical', 'vertical'\)$"),
    (None, "zero", r"^t: fill must be one of 'constant', 'reflect', 'nearest', 'wrap'; got 'zero'$"),
    (None, 0, r"^t: fill must be one of .*; got 0$"),
])
def test_flips_and_fill_values(flips, fill, message):
    x = np.zeros((4, 1, 2, 2), np.float32)
    y = np.arange(4) % 2
    with pytest.raises(RegularkitError, match=message):
        Dataset("t", x, y, x, y, num_classes=2, flips=flips, fill=fill)
    ds = Dataset("t", x, y, x, y, num_classes=2, flips=["vertical", "horizontal"], fill="wrap")
    assert ds.flips == ("horizontal", "vertical") and ds.fill == "wrap"  # canonical order, a tuple
    seq = np.zeros((4, 2, 5), np.float32)
    with pytest.raises(RegularkitError, match=r"^t: a sequence has no vertical axis to flip"):
        Dataset("t", seq, y, seq, y, num_classes=2, flips=("vertical",))


def test_sources_are_copied_json_ready():
    x, y = vec()
    record = {"train_files": ("a.png",), "n": 1}
    ds = Dataset("t", x, y, x, y, num_classes=2, sources=record)
    record["n"] = 2
    assert ds.sources == {"train_files": ["a.png"], "n": 1}  # a copy, tuples as JSON lists


# ---------------------------------------------------------------- digits

def test_digits_matches_scikit_learn():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1257, 1, 8, 8) and ds.x_test.shape == (540, 1, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.num_classes == 10 and ds.input_shape == (1, 8, 8)
    x = np.concatenate([ds.x_train, ds.x_test])
    assert x.min() == 0.0 and x.max() == 1.0
    # Same images as scikit-learn's, scaled by 1/16: compare as sorted multisets of rows.
    ours = np.sort((x.reshape(len(x), -1) * 16).round().astype(int), axis=0)
    theirs = np.sort(ref.data.astype(int), axis=0)
    assert np.array_equal(ours, theirs)
    assert np.array_equal(np.bincount(np.concatenate([ds.y_train, ds.y_test])), np.bincount(ref.target))
    # Stratified 30 % test split: each class within one sample of its ideal share.
    ideal = 540 * np.bincount(ref.target) / 1797
    assert np.all(np.abs(np.bincount(ds.y_test) - ideal) <= 1)
    # A mirrored digit is not the digit; the background is black.
    assert ds.layout == "images" and ds.flips == () and ds.fill == "constant" and ds.sources is None


def test_digits_split_is_fixed_and_limit_train_is_seeded():
    a, b = load_dataset("digits"), load_dataset("digits", seed=5)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    s0, s0b = load_dataset("digits", limit_train=200, seed=0), load_dataset("digits", limit_train=200, seed=0)
    s1 = load_dataset("digits", limit_train=200, seed=1)
    assert len(s0.y_train) == 200 and np.array_equal(s0.x_train, s0b.x_train)
    assert not np.array_equal(s0.x_train, s1.x_train)
    assert np.array_equal(s0.x_test, a.x_test)  # the test set is never subsampled
    ideal = 200 * np.bincount(a.y_train) / len(a.y_train)
    assert np.all(np.abs(np.bincount(s0.y_train, minlength=10) - ideal) <= 1)


def test_limit_train_edges():
    full = load_dataset("digits")
    assert load_dataset("digits", limit_train=10**6).y_train.shape == full.y_train.shape
    with pytest.raises(RegularkitError, match=r"seed must be >= 0, got -4"):
        load_dataset("digits", seed=-4)
    with pytest.raises(RegularkitError, match=r"limit_train must be >= 1, got 0"):
        load_dataset("digits", limit_train=0)
    with pytest.raises(RegularkitError, match=r"the subset would hold 5 samples, fewer than the 10 classes; "
                                              r"choose a size from 10 to 1247"):
        load_dataset("digits", limit_train=5)


def test_dataset_arrays_are_read_only_and_validated():
    ds = load_dataset("digits")
    with pytest.raises(ValueError, match="read-only"):
        ds.x_train[0, 0, 0, 0] = 5.0
    x, y = np.zeros((4, 3), np.float32), np.array([0, 1, 2, 3])
    with pytest.raises(RegularkitError, match=r"x_train must be N×D, N×C×L or N×C×H×W, got shape \(4, 1, 1, 1, 3\)"):
        Dataset("t", x.reshape(4, 1, 1, 1, 3), y, x.reshape(4, 1, 1, 1, 3), y, num_classes=4)
    with pytest.raises(RegularkitError, match=r"x_train must be float32 and y_train int64, got float32 and int"):
        Dataset("t", x, y.astype(np.int32), x, y, num_classes=4)
    with pytest.raises(RegularkitError, match=r"y_test holds label 3, outside \[0, 3\)"):
        Dataset("t", x, y % 3, x, y, num_classes=3)
    with pytest.raises(RegularkitError, match=r"x_train has 4 samples but y_train has shape \(3,\)"):
        Dataset("t", x, y[:3], x, y, num_classes=4)
    with pytest.raises(RegularkitError, match=r"2 class names for 4 classes"):
        Dataset("t", x, y, x, y, num_classes=4, classes=("a", "b"))


# ---------------------------------------------------------------- Fashion-MNIST lookup

def test_fashion_from_data_dir(tmp_path, fake_fashion, no_fashion_anywhere):
    arrays = fake_fashion(tmp_path / "d")
    ds = load_dataset("fashion-mnist", data_dir=tmp_path / "d")
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)
    assert np.array_equal(ds.x_train[:, 0] * 255, arrays[FASHION_MNIST_FILES[0]].astype(np.float32))
    assert np.array_equal(ds.y_test, arrays[FASHION_MNIST_FILES[3]])
    assert ds.classes == FASHION_MNIST_CLASSES and ds.classes[9] == "Ankle boot"
    assert ds.kind == "images" and ds.flips == ("horizontal",) and ds.fill == "constant"


@pytest.mark.parametrize("sub", ["", "fashion-mnist"])
def test_fashion_from_env_folder_or_subfolder(tmp_path, fake_fashion, no_fashion_anywhere, monkeypatch, sub):
    (tmp_path / "env" / sub).mkdir(parents=True)
    fake_fashion(tmp_path / "env" / sub, gzip=False)  # raw, un-gzipped names accepted too
    monkeypatch.setenv("REGULARKIT_DATA", str(tmp_path / "env"))
    assert len(load_dataset("fashion-mnist").y_train) == 30


def test_fashion_lookup_order(tmp_path, fake_fashion, no_fashion_anywhere, monkeypatch):
    fake_fashion(tmp_path / "explicit", n_train=20)
    fake_fashion(tmp_path / "env", n_train=40)
    fake_fashion(tmp_path / "system" / "fashion-mnist", n_train=50)
    fake_fashion(tmp_path / "cache" / "regularkit" / "fashion-mnist", n_train=60)
    assert len(load_dataset("fashion-mnist").y_train) == 60  # download cache before the system folder
    monkeypatch.setenv("REGULARKIT_DATA", str(tmp_path / "env"))
    assert len(load_dataset("fashion-mnist").y_train) == 40
    assert len(load_dataset("fashion-mnist", data_dir=tmp_path / "explicit").y_train) == 20


def test_fashion_missing_says_where_it_looked_and_how_to_get_it(tmp_path, fake_fashion, no_fashion_anywhere):
    with pytest.raises(RegularkitError) as info:
        load_dataset("fashion-mnist")
    msg = str(info.value)
    assert "\n" not in msg and f"{tmp_path}/system/fashion-mnist" in msg
    assert "`regularkit data download fashion-mnist`" in msg and "`apt-get install dataset-fashion-mnist`" in msg


def test_a_data_dir_without_the_files_is_an_error_never_a_fallback(tmp_path, fake_fashion, no_fashion_anywhere):
    fake_fashion(tmp_path / "system" / "fashion-mnist")  # another copy exists, and must not be used
    (tmp_path / "half").mkdir()
    fake_fashion(tmp_path / "half")
    for name in FASHION_MNIST_FILES[2:]:
        (tmp_path / "half" / name).unlink()
    with pytest.raises(RegularkitError) as info:
        load_dataset("fashion-mnist", data_dir=tmp_path / "half")
    msg = str(info.value)
    assert "\n" not in msg and f"--data-dir '{tmp_path}/half' does not hold Fashion-MNIST: missing " in msg
    assert "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz" in msg and "no other folder is tried" in msg


def test_fashion_shape_checks_name_the_file(tmp_path, fake_fashion):
    fake_fashion(tmp_path, image_shape=(27, 28))
    with pytest.raises(RegularkitError, match=r"train-images-idx3-ubyte\.gz: expected uint8 images N×28×28, "
                                              r"got uint8 \(30, 27, 28\)"):
        load_dataset("fashion-mnist", data_dir=tmp_path)
    from regularkit.data.idx import write_idx

    fake_fashion(tmp_path)
    write_idx(tmp_path / FASHION_MNIST_FILES[3], np.zeros(9, np.uint8))
    with pytest.raises(RegularkitError, match=r"t10k-labels-idx1-ubyte\.gz: expected 10 labels, got shape \(9,\)"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


def test_real_fashion_mnist():
    if not all((REAL_FASHION / f).is_file() for f in FASHION_MNIST_FILES):
        pytest.skip(f"real Fashion-MNIST not installed in {REAL_FASHION} (apt-get install dataset-fashion-mnist)")
    ds = load_dataset("fashion-mnist", data_dir=REAL_FASHION)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert set(np.unique(ds.y_train)) == set(range(10)) and set(np.unique(ds.y_test)) == set(range(10))
    # Published facts: exactly balanced, 6000 / 1000 images per class.
    assert np.all(np.bincount(ds.y_train) == 6000) and np.all(np.bincount(ds.y_test) == 1000)


# ---------------------------------------------------------------- .npz

def save(tmp_path, name="d.npz", **arrays) -> Path:
    base = dict(x_train=np.random.default_rng(0).random((6, 4)), y_train=np.array([0, 1, 2, 0, 1, 2]),
                x_test=np.zeros((3, 4)), y_test=np.array([2, 1, 0]))
    base.update(arrays)
    path = tmp_path / name
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


def test_npz_vectors(tmp_path):
    path = save(tmp_path)
    ds = load_dataset(path)
    assert ds.name == "d" and ds.input_shape == (4,) and ds.num_classes == 3 and ds.classes is None
    assert ds.x_train.dtype == np.float32 and np.allclose(ds.x_train, np.load(path)["x_train"])
    assert load_dataset(str(path)).num_classes == 3  # str path too


def test_npz_uint8_grey_images_scaled_and_given_a_channel(tmp_path):
    x = np.arange(6 * 5 * 5).reshape(6, 5, 5).astype(np.uint8)
    ds = load_npz(save(tmp_path, x_train=x, x_test=x[:3]))
    assert ds.input_shape == (1, 5, 5)
    assert np.allclose(ds.x_train[:, 0], x / 255.0) and ds.x_train.max() <= 1.0


def test_npz_channels_last_is_transposed_and_channels_first_kept(tmp_path):
    nhwc = np.random.default_rng(1).random((6, 8, 7, 3))
    ds = load_npz(save(tmp_path, x_train=nhwc, x_test=nhwc[:3]))
    assert ds.input_shape == (3, 8, 7)
    assert np.allclose(ds.x_train[2, 1, 5, 4], nhwc[2, 5, 4, 1])
    nchw = np.random.default_rng(2).random((6, 3, 8, 8))
    assert load_npz(save(tmp_path, x_train=nchw, x_test=nchw[:3])).input_shape == (3, 8, 8)


def test_npz_num_classes_and_class_names(tmp_path):
    ds = load_npz(save(tmp_path, num_classes=np.array(5), classes=np.array(list("abcde"))))
    assert ds.num_classes == 5 and ds.classes == ("a", "b", "c", "d", "e")
    with pytest.raises(RegularkitError, match=r"label 2 is out of range for num_classes=2"):
        load_npz(save(tmp_path, num_classes=np.array(2)))


@pytest.mark.parametrize("arrays, message", [
    (dict(y_test=None, x_test=None), r"missing arrays x_test, y_test \(has x_train, y_train\)"),
    (dict(y_train=np.array([0, 1, 2])), r"y_train must have shape \(6,\) to match x, got \(3,\)"),
    (dict(y_train=np.zeros(6)), r"y_train must hold integer labels, got dtype float64 \(whole numbers"),
    (dict(y_test=np.array([0, -3, 1])), r"y_test holds label -3; labels must be >= 0"),
    (dict(x_train=np.array([[np.nan, 1.0, np.inf, 0.0]] * 6)), r"x_train holds 12 non-finite values"),
    (dict(x_test=np.array([["a"] * 4] * 3)), r"x_test must be real numbers, got dtype <U1"),
    (dict(x_test=np.ones((3, 4), bool)), r"x_test must be real numbers, got dtype bool"),
    (dict(x_train=np.arange(6.0)), r"x_train must be non-empty N×D.*got shape \(6,\)"),
    (dict(x_test=np.zeros((3, 5))), r"x_train samples have shape \(4,\) but x_test samples \(5,\)"),
    (dict(num_classes=np.array(1.5)), r"num_classes must be a positive integer, got array\(1\.5\)"),
    (dict(layout=np.array(["images"])), r"layout must be a string, got array\(\['images'\]"),
    (dict(layout=np.array("pictures")), r"layout must be one of 'vectors', 'sequences', 'images'; got 'pictures'$"),
    (dict(layout=np.array("images")), r"layout 'images' needs x_train of shape N×H×W or N×C×H×W \(or N×H×W×C\), "
                                      r"got shape \(6, 4\)$"),
    (dict(flips=np.array([[1.0]])), r"flips must be a 1-D array of strings, got array\(\[\[1\.\]\]\)$"),
    (dict(fill=np.array(["constant"])), r"fill must be a string, got array"),
])
def test_npz_errors_name_file_array_and_value(tmp_path, arrays, message):
    path = save(tmp_path, **arrays)
    with pytest.raises(RegularkitError, match=rf"^{tmp_path}/d\.npz: {message}"):
        load_npz(path)


def test_npz_unreadable(tmp_path):
    with pytest.raises(RegularkitError, match=rf"npz file not found: {tmp_path}/none\.npz"):
        load_dataset(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(RegularkitError, match=rf"cannot read {tmp_path}/junk\.npz as a \.npz archive"):
        load_dataset(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", x_train=np.array([None, 1], dtype=object))
    with pytest.raises(RegularkitError, match=r"obj\.npz as a \.npz archive"):
        load_npz(tmp_path / "obj.npz")


def test_npz_layout_flips_and_fill_keys(tmp_path):
    img = np.random.default_rng(3).integers(0, 256, (6, 5, 7), dtype=np.uint8)
    grey = load_npz(save(tmp_path, x_train=img, x_test=img[:3]))
    assert grey.kind == "images" and grey.input_shape == (1, 5, 7) and grey.flips is None and grey.fill is None
    seq = load_npz(save(tmp_path, x_train=img, x_test=img[:3], layout=np.array("sequences")))
    assert seq.kind == "sequences" and seq.input_shape == (5, 7) and np.array_equal(seq.x_train, img / np.float32(255))
    path = save(tmp_path, "img.npz", x_train=img, x_test=img[:3], flips=np.array(["horizontal"]),
                fill=np.array("reflect"))
    ds = load_npz(path)
    assert ds.flips == ("horizontal",) and ds.fill == "reflect" and ds.layout == "images"
    over = load_dataset(path, layout="sequences", flips=(), fill="wrap")  # arguments win over the file
    assert over.kind == "sequences" and over.flips == () and over.fill == "wrap"
    assert load_npz(save(tmp_path, x_train=img, x_test=img[:3], flips=[])).flips == ()  # np.savez stores float64
    assert load_npz(save(tmp_path)).kind == "vectors"
    with pytest.raises(RegularkitError, match=rf"^{tmp_path}/img\.npz: layout 'vectors' needs x_train of shape N×D, "
                                              r"got shape \(6, 5, 7\)$"):
        load_npz(path, layout="vectors")
    with pytest.raises(RegularkitError, match=rf"^{tmp_path}/d\.npz: fill 'reflect' describes images or "
                                              r"sequences, not vectors$"):
        load_npz(save(tmp_path, fill=np.array("reflect")))
    with pytest.raises(RegularkitError, match=r"image_size does not apply to an \.npz file; it takes layout, "
                                              r"flips, fill$"):
        load_dataset(path, image_size=3)


def test_npz_labels_with_a_gap_are_refused_unless_the_file_gives_num_classes(tmp_path):
    y = np.r_[np.arange(36) % 9, [50000] * 4]
    x = np.linspace(0, 1, 40 * 3, dtype=np.float32).reshape(40, 3)
    path = save(tmp_path, "gap.npz", x_train=x, y_train=y, x_test=x[:9], y_test=np.arange(9))
    with pytest.raises(RegularkitError, match=rf"^{path}: labels must be 0\.\.k-1, got 10 distinct labels from 0 to "
                                              r"50000 \(label 9 has no sample\); remap them to 0\.\.9"):
        load_npz(path)
    kept = save(tmp_path, "kept.npz", x_train=x, y_train=y % 50000, x_test=x[:9], y_test=np.arange(9),
                num_classes=np.array(12))
    assert load_npz(kept).num_classes == 12  # a class without a sample, declared on purpose


@pytest.mark.parametrize("source, called", [("npz", "an .npz file"), ("digits", "a dataset bundled with regularkit"),
                                            ("folder", "an image folder")])
def test_data_dir_is_refused_where_it_does_not_apply(tmp_path, source, called):
    """--data-dir with an .npz used to be ignored without a word (issue 23): it only locates Fashion-MNIST."""
    if source == "npz":
        x = np.zeros((4, 3), np.float32)
        source = str(save(tmp_path, x_train=x, y_train=np.arange(4) % 2, x_test=x, y_test=np.arange(4) % 2))
    elif source == "folder":
        (tmp_path / "imgs" / "a").mkdir(parents=True)
        source = str(tmp_path / "imgs")
    with pytest.raises(RegularkitError, match=rf"^{source}: data_dir does not apply to {called} \(it is where the "
                                              rf"fashion-mnist files are\), got '{tmp_path}'$"):
        load_dataset(source, data_dir=tmp_path)
