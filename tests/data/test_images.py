"""Image folders: real PNG / JPEG files written with Pillow, pixels checked against Pillow's own decoding."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from regularkit._util import memory
from regularkit.data import images
from regularkit.data.datasets import load_dataset
from regularkit.data.images import load_image_folder
from regularkit.errors import RegularkitError

BILINEAR = getattr(Image, "Resampling", Image).BILINEAR


def grey(seed: int, shape=(5, 6)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def rgb(seed: int, shape=(5, 6)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(path)
    return path


def decode(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert(mode))


def by_file(ds) -> dict[str, np.ndarray]:
    """Relative path -> sample, from the split recorded in ``sources``."""
    files = ds.sources["train_files"] + ds.sources["test_files"]
    return dict(zip(files, np.concatenate([ds.x_train, ds.x_test])))


def folder(root: Path, per_class: dict[str, int], shape=(5, 6)) -> dict[str, np.ndarray]:
    """Grey PNGs ``root/<class>/<i>.png``; returns relative path -> pixels."""
    out = {}
    for c, (name, n) in enumerate(per_class.items()):
        for i in range(n):
            array = grey(100 * c + i, shape)
            save(root / name / f"{i:02d}.png", array)
            out[f"{name}/{i:02d}.png"] = array
    return out


def test_grey_folder_pixels_classes_and_recorded_split(tmp_path):
    pixels = folder(tmp_path / "pets", {"dog": 3, "cat": 3})
    ds = load_image_folder(tmp_path / "pets", test_fraction=1 / 3)
    assert ds.name == "pets" and ds.classes == ("cat", "dog") and ds.num_classes == 2
    assert ds.layout == "images" and ds.kind == "images" and ds.input_shape == (1, 5, 6)
    assert ds.x_train.dtype == np.float32 and not ds.x_train.flags.writeable
    assert ds.flips is None and ds.fill is None
    src = ds.sources
    assert src["split"] == "seeded" and src["channels"] == 1 and src["seed"] == 0
    assert len(src["train_files"]) == 4 and len(src["test_files"]) == 2
    assert sorted(src["train_files"] + src["test_files"]) == sorted(pixels)
    for part in ("train", "test"):
        x, y = getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}")
        for i, rel in enumerate(src[f"{part}_files"]):
            assert np.array_equal(x[i, 0], pixels[rel] / np.float32(255))
            assert ds.classes[y[i]] == rel.split("/")[0]
    assert sorted(ds.y_test.tolist()) == [0, 1]  # stratified: one of each class
    assert src["train_files"] == sorted(src["train_files"])  # files in sorted order


def test_split_is_seeded_and_stratified(tmp_path):
    folder(tmp_path, {"a": 10, "b": 5}, shape=(2, 2))
    one, again = load_image_folder(tmp_path, seed=3), load_image_folder(tmp_path, seed=3)
    assert one.sources["test_files"] == again.sources["test_files"]
    others = [load_image_folder(tmp_path, seed=s).sources["test_files"] for s in range(4, 8)]
    assert any(o != one.sources["test_files"] for o in others)
    assert np.bincount(one.y_test).tolist() == [2, 1]  # 20 % of 10 and of 5


def test_rgb_wins_unless_grayscale_is_forced(tmp_path):
    g, c = grey(1), rgb(2)
    save(tmp_path / "a" / "grey.png", g)
    save(tmp_path / "a" / "grey2.png", grey(3))
    save(tmp_path / "b" / "colour.png", c)
    rgba = np.dstack([rgb(4), np.full((5, 6), 7, np.uint8)])
    save(tmp_path / "b" / "alpha.png", rgba)
    save(tmp_path / "b" / "palette.gif", rgb(5), mode="P")
    ds = load_image_folder(tmp_path, test_fraction=0.4)
    x = by_file(ds)
    assert ds.input_shape == (3, 5, 6) and ds.sources["channels"] == 3
    assert np.array_equal(x["a/grey.png"], np.stack([g, g, g]) / np.float32(255))  # grey replicated
    assert np.array_equal(x["b/colour.png"], c.transpose(2, 0, 1) / np.float32(255))
    assert np.array_equal(x["b/alpha.png"], rgba[..., :3].transpose(2, 0, 1) / np.float32(255))  # alpha dropped
    palette = decode(tmp_path / "b" / "palette.gif", "RGB")
    assert np.array_equal(x["b/palette.gif"], palette.transpose(2, 0, 1) / np.float32(255))

    forced = load_image_folder(tmp_path, test_fraction=0.4, grayscale=True)
    assert forced.input_shape == (1, 5, 6)
    luma = np.asarray(Image.fromarray(c).convert("L"))  # ITU-R 601-2, as Pillow computes it
    assert np.array_equal(by_file(forced)["b/colour.png"][0], luma / np.float32(255))
    assert np.array_equal(by_file(forced)["a/grey.png"][0], g / np.float32(255))


def test_all_grey_forced_to_rgb_and_sixteen_bit_grey(tmp_path):
    folder(tmp_path / "g", {"a": 2, "b": 2}, shape=(3, 3))
    assert load_image_folder(tmp_path / "g", test_fraction=0.5, grayscale=False).input_shape == (3, 3, 3)
    deep = (np.arange(9).reshape(3, 3) * 8000).astype(np.uint16)
    for name in ("a", "b"):
        save(tmp_path / "d" / name / "x.png", deep)
        save(tmp_path / "d" / name / "y.png", deep)
    ds = load_image_folder(tmp_path / "d", test_fraction=0.5)
    assert ds.input_shape == (1, 3, 3)
    assert np.allclose(ds.x_train[0, 0], deep / 65535.0, atol=1e-7)


def test_jpeg_and_case_insensitive_suffixes_other_files_ignored(tmp_path):
    c = rgb(9, (8, 8))
    save(tmp_path / "a" / "one.JPG", c)
    save(tmp_path / "a" / "two.Jpeg", rgb(10, (8, 8)))
    save(tmp_path / "b" / "three.PNG", rgb(11, (8, 8)))
    save(tmp_path / "b" / "four.bmp", rgb(12, (8, 8)))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    ds = load_image_folder(tmp_path, test_fraction=0.5)
    files = sorted(ds.sources["train_files"] + ds.sources["test_files"])
    assert files == ["a/one.JPG", "a/two.Jpeg", "b/four.bmp", "b/three.PNG"]
    decoded = decode(tmp_path / "a" / "one.JPG", "RGB")  # lossy: compare decodings
    assert np.array_equal(by_file(ds)["a/one.JPG"], decoded.transpose(2, 0, 1) / np.float32(255))


@pytest.mark.parametrize("image_size, shape", [(4, (4, 4)), ((3, 7), (3, 7)), ([6, 2], (6, 2))])
def test_image_size_resizes_bilinear_like_pillow(tmp_path, image_size, shape):
    a, b = grey(1, (5, 6)), grey(2, (9, 4))
    save(tmp_path / "a" / "0.png", a)
    save(tmp_path / "a" / "1.png", a)
    save(tmp_path / "b" / "0.png", b)
    save(tmp_path / "b" / "1.png", b)
    ds = load_image_folder(tmp_path, image_size=image_size, test_fraction=0.5)
    assert ds.input_shape == (1, *shape) and ds.sources["image_size"] == list(shape)
    ref = np.asarray(Image.fromarray(b).resize((shape[1], shape[0]), BILINEAR)) / np.float32(255)
    assert np.array_equal(by_file(ds)["b/0.png"][0], ref)


def test_ragged_sizes_name_two_files_and_ask_for_image_size(tmp_path):
    save(tmp_path / "a" / "0.png", grey(1, (5, 6)))
    save(tmp_path / "b" / "0.png", grey(2, (9, 4)))
    with pytest.raises(RegularkitError, match=rf"^{tmp_path}: images differ in size: a/0\.png is 5×6 \(H×W\) "
                                              r"but b/0\.png is 9×4; pass image_size=\(H, W\) to resize them$"):
        load_image_folder(tmp_path)


def test_train_test_folders_are_used_as_given(tmp_path):
    folder(tmp_path / "train", {"x": 2, "y": 3}, shape=(2, 2))
    folder(tmp_path / "test", {"y": 1}, shape=(2, 2))
    ds = load_image_folder(tmp_path)
    assert ds.classes == ("x", "y") and ds.sources["split"] == "folders"
    assert ds.sources["train_files"][0] == "train/x/00.png" and ds.sources["test_files"] == ["test/y/00.png"]
    assert ds.y_test.tolist() == [1] and len(ds.y_train) == 5 and ds.sources["seed"] is None
    folder(tmp_path / "test", {"z": 1}, shape=(2, 2))
    with pytest.raises(RegularkitError, match=r"test/z: class 'z' is not among the training classes \(x, y\)$"):
        load_image_folder(tmp_path)


@pytest.mark.parametrize("make, message", [
    (lambda r: None, r"no class folders; an image folder is root/<class>/\*\.png"),
    (lambda r: save(r / "loose.png", grey(0)), r"no class folders"),
    (lambda r: folder(r, {"only": 2}), r"only one class folder \('only'\); a classifier needs at least 2"),
    (lambda r: (folder(r, {"a": 2}), (r / "b").mkdir(), (r / "b" / "x.txt").write_text("")),
     r"/b: class folder holds no images \(\.png, \.jpg"),
    (lambda r: (folder(r, {"a": 2, "b": 2}), save(r / "stray.png", grey(0))), r"stray\.png lies outside any class"),
    (lambda r: folder(r / "train", {"a": 2, "b": 2}), r"has a train/ folder but no test/ folder"),
    (lambda r: folder(r, {"a": 1, "b": 3}), r"cannot stratify: class 'a' has only 1 sample"),
])
def test_folder_errors(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(RegularkitError, match=message) as info:
        load_image_folder(tmp_path)
    assert "\n" not in str(info.value)


def test_corrupt_and_truncated_images_name_the_file(tmp_path):
    folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "b" / "bad.png").write_bytes(b"definitely not a png")
    with pytest.raises(RegularkitError, match=rf"^cannot read image {tmp_path}/b/bad\.png: cannot identify"):
        load_image_folder(tmp_path)
    whole = (tmp_path / "a" / "00.png").read_bytes()
    (tmp_path / "b" / "bad.png").write_bytes(whole[: len(whole) - 30])  # header fine, pixels cut
    with pytest.raises(RegularkitError, match=rf"^cannot read image {tmp_path}/b/bad\.png: ") as info:
        load_image_folder(tmp_path, test_fraction=0.5)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(image_size=0), r"image_size must be >= 1, got 0"),
    (dict(image_size="8"), r"image_size must be an integer, got '8'"),
    (dict(image_size=(8,)), r"image_size must be an int or \(height, width\), got \(8,\)"),
    (dict(image_size=(8, True)), r"image_size width must be an integer, got True"),
    (dict(grayscale="yes"), r"grayscale must be True, False or None, got 'yes'"),
    (dict(test_fraction=1.0), r"test_fraction must be in \(0\.0, 1\.0\), got 1\.0"),
    (dict(flips="horizontal"), r"flips must be a tuple of 'horizontal' / 'vertical', got 'horizontal'"),
    (dict(fill="zeros"), r"fill must be one of 'constant', 'reflect', 'nearest', 'wrap'; got 'zeros'"),
])
def test_argument_errors(tmp_path, kwargs, message):
    folder(tmp_path, {"a": 2, "b": 2}, shape=(2, 2))
    with pytest.raises(RegularkitError, match=message):
        load_image_folder(tmp_path, **{"test_fraction": 0.5, **kwargs})


def test_load_dataset_dispatches_folders_with_options_and_limit_train(tmp_path):
    folder(tmp_path, {"a": 6, "b": 6}, shape=(3, 3))
    ds = load_dataset(tmp_path, image_size=2, flips=["vertical", "horizontal"], fill="reflect",
                      test_fraction=0.25, split_seed=1, limit_train=4, seed=2)
    assert ds.input_shape == (1, 2, 2) and ds.flips == ("horizontal", "vertical") and ds.fill == "reflect"
    assert ds.sources["seed"] == 1 and ds.sources["limit_train"] == {"size": 4, "seed": 2}
    assert len(ds.y_train) == 4 and len(ds.sources["train_files"]) == 4 and len(ds.y_test) == 3
    assert [ds.classes[y] for y in ds.y_train] == [f.split("/")[0] for f in ds.sources["train_files"]]
    with pytest.raises(RegularkitError, match=r"image folder not found: .*/nope$"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(RegularkitError, match=r": target does not apply to an image folder; it takes image_size"):
        load_dataset(tmp_path, target="y")


def test_an_image_size_that_cannot_fit_is_refused_before_any_image_is_decoded(tmp_path, monkeypatch):
    """Issue 23: ``--image-size 100000`` grew to 4.1 GB in 60 s; the estimate comes from the headers alone."""
    folder(tmp_path, {"a": 3, "b": 3})
    decoded = []
    monkeypatch.setattr(images, "_pixels", lambda *a: decoded.append(a) or np.zeros((1, 2, 2), np.float32))
    monkeypatch.setattr(memory, "available_memory", lambda: 2**30)  # 1 GiB free: 0.5 GiB may be used
    need = 2 * 4 * 6 * 1 * 100000 * 100000
    with pytest.raises(RegularkitError, match=rf"^image folder '{tmp_path}' \(6 images of 1×100000×100000 float32, "
                                              rf"twice while loading\) needs {need / 2**30:.1f} GiB, more than 50% "
                                              r"of the 1\.0 GiB available; pass a smaller image_size "
                                              r"\(--image-size H,W\)$"):
        load_image_folder(tmp_path, image_size=100000)
    assert decoded == []
    # 6 grey 5x6 images need 2 x 4 x 180 = 1440 bytes: loaded; the bound is exactly MEMORY_SHARE of what is free
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * 1440)
    load_image_folder(tmp_path, test_fraction=0.5)
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * 1440 - 1)
    with pytest.raises(RegularkitError, match=r"needs 1\.3e-06 GiB"):
        load_image_folder(tmp_path, test_fraction=0.5)
