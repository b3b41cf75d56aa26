"""Image folders: ``root/<class>/*.png`` (or ``root/train/<class>`` and ``root/test/<class>``) as a Dataset.

The layout of torchvision's ``ImageFolder`` and Keras'
``image_dataset_from_directory``: one folder per class, named after it,
classes in sorted order of the names, image files anywhere below their class
folder, recognised by suffix (other files are ignored, as there).  Pillow
decodes; every file is read in sorted order of its path, so the same folder
gives the same arrays and the same seeded test split on every machine.

Channels: grey images (Pillow modes 1, L, LA, I;16) give 1 channel when every
image is grey; otherwise all images become RGB (palette and alpha converted
with Pillow's ``convert("RGB")``, which drops alpha; grey ones replicated).
The memory the pixels will take is estimated from the headers and refused in one
line before any image is decoded (:func:`~regularkit._util.memory.check_fits`).
``grayscale=True`` converts colour with Pillow's ITU-R 601-2 luma
(``convert("L")``); ``grayscale=False`` forces RGB.  Pixels are scaled to [0, 1]:
8-bit by 1/255, 16-bit grey by 1/65535.

:func:`stream_image_folder` reads the same folder lazily: the headers are read and
the split is made as here, and each image is decoded when a batch asks for it
(:class:`ImageFiles`, :mod:`~regularkit.data.streaming`), to the same pixels;
:func:`load_image_folder` is that, decoded once (:func:`~regularkit.data.streaming.materialize`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from regularkit._util.checks import check_in_range, check_int
from regularkit.data.sampling import split_off_test
from regularkit.data.schema import Dataset, check_fill, check_flips
from regularkit.data.streaming import Streamed, StreamedDataset, materialize
from regularkit.errors import RegularkitError

__all__ = ["load_image_folder", "stream_image_folder", "decode_image_folder", "ImageFiles", "IMAGE_SUFFIXES",
           "GREY_MODES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
#: Pillow modes read as one grey channel; ``LA``'s alpha is dropped.
GREY_MODES = ("1", "L", "LA", "I;16", "I;16L", "I;16B")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B")
_BILINEAR = getattr(Image, "Resampling", Image).BILINEAR  # Image.Resampling exists from Pillow 9.1
_LAYOUTS = "root/<class>/*.png|jpg|jpeg|bmp|gif|webp, or root/train/<class>/... with root/test/<class>/..."


def _image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        return check_int("image_size height", image_size[0], minimum=1), check_int(
            "image_size width", image_size[1], minimum=1)
    if isinstance(image_size, (tuple, list)):
        raise RegularkitError(f"image_size must be an int or (height, width), got {tuple(image_size)!r}")
    size = check_int("image_size", image_size, minimum=1)
    return size, size


def _class_folders(folder: Path) -> list[Path]:
    """The visible subfolders of ``folder``, sorted by name (hidden ones such as ``.ipynb_checkpoints`` skipped)."""
    try:
        return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.name)
    except OSError as exc:
        raise RegularkitError(f"cannot list image folder {folder}: {exc.strerror or exc}") from None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _collect(folder: Path, classes: list[str] | None) -> tuple[list[Path], list[int], list[str]]:
    """Files and class indices under ``folder``; ``classes`` None means: these folders are the classes."""
    subs = _class_folders(folder)
    if not subs:
        raise RegularkitError(f"{folder}: no class folders; an image folder is {_LAYOUTS}")
    loose = [p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if loose:
        raise RegularkitError(f"{folder / sorted(loose)[0]} lies outside any class folder; "
                              f"an image folder is {_LAYOUTS}")
    names = [p.name for p in subs]
    if classes is None:
        if len(names) == 1:
            raise RegularkitError(f"{folder}: only one class folder ({names[0]!r}); a classifier needs at least 2")
        classes = names
    files, labels = [], []
    for sub in subs:
        if sub.name not in classes:
            raise RegularkitError(f"{sub}: class {sub.name!r} is not among the training classes "
                                  f"({', '.join(classes)})")
        found = _images_in(sub)
        if not found:
            raise RegularkitError(f"{sub}: class folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        files += found
        labels += [classes.index(sub.name)] * len(found)
    return files, labels, classes


_PILLOW_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _unreadable(path: Path, exc: Exception) -> RegularkitError:
    message = " ".join(str(exc).split())  # one line, whatever Pillow said
    return RegularkitError(f"cannot read image {path}: {message or type(exc).__name__}")


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    """Mode and (width, height) of the image at ``path``, from its header alone (cheap)."""
    try:
        with Image.open(path) as image:
            mode, size = image.mode, image.size
    except _PILLOW_ERRORS as exc:
        raise _unreadable(path, exc) from None
    if mode in ("I", "F"):  # 32-bit integer or float pixels: no range to scale to [0, 1]
        raise RegularkitError(f"cannot read image {path}: Pillow mode {mode!r} (32-bit pixels) is not "
                              f"supported; save it as 8-bit or 16-bit")
    return mode, size


def _pixels(path: Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """The image at ``path`` as float32 C×H×W in [0, 1], in ``channels`` and resized (bilinear) to ``size``."""
    try:
        with Image.open(path) as image:
            image.load()  # a truncated file fails here, named
            if image.mode in _SIXTEEN_BIT:
                image, scale = image.convert("F"), 65535.0  # 32-bit float keeps all 16 bits through the resize
            else:
                image, scale = image.convert("L" if channels == 1 else "RGB"), 255.0
    except _PILLOW_ERRORS as exc:
        raise _unreadable(path, exc) from None
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), _BILINEAR)  # Pillow sizes are (width, height)
    # Bilinear weights are >= 0 and sum to 1, so no value leaves [0, 1].
    array = np.asarray(image, dtype=np.float32) / np.float32(scale)
    if array.ndim == 3:
        return array.transpose(2, 0, 1)
    return np.repeat(array[None], channels, axis=0)  # channels is 3 only for 16-bit grey among RGB


class ImageFiles:
    """The images ``files`` as a streaming source: ``read(i)`` decodes file ``i`` (:func:`_pixels`)."""

    def __init__(self, root: Path, files: list[Path], channels: int, size: tuple[int, int] | None,
                 shape: tuple[int, int]) -> None:
        self.root, self.files, self.channels, self.size = root, files, channels, size
        self.sample_shape = (channels, *shape)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> np.ndarray:
        return _pixels(self.files[i], self.channels, self.size)

    def describe(self) -> str:
        return f"image folder {str(self.root)!r}"


def stream_image_folder(root: str | os.PathLike, *, image_size: int | tuple[int, int] | None = None,
                        test_fraction: float = 0.2, seed: int = 0, grayscale: bool | None = None,
                        flips: tuple[str, ...] | None = None, fill: str | None = None,
                        num_workers: int = 0) -> StreamedDataset:
    """The images under ``root`` as a :class:`~regularkit.data.streaming.StreamedDataset`: headers read now,
    pixels decoded per batch by ``num_workers`` loader processes (see :func:`load_image_folder`)."""
    root = Path(root)
    if not root.is_dir():
        raise RegularkitError(f"image folder not found: {root}")
    size = _image_size(image_size)
    seed = check_int("seed", seed, minimum=0)
    check_in_range("test_fraction", test_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    if grayscale is not None and not isinstance(grayscale, bool):
        raise RegularkitError(f"grayscale must be True, False or None, got {grayscale!r}")
    flips, fill = check_flips(flips, "images", str(root)), check_fill(fill, "images", str(root))
    has_train, has_test = (root / "train").is_dir(), (root / "test").is_dir()
    if has_train != has_test:
        there, absent = ("train", "test") if has_train else ("test", "train")
        raise RegularkitError(f"{root} has a {there}/ folder but no {absent}/ folder; give both, "
                              f"or put the class folders directly in {root}")
    files, labels, classes = _collect(root / "train" if has_train else root, None)
    n_train = len(files)
    if has_train:
        test_files, test_labels, _ = _collect(root / "test", classes)
        files, labels = files + test_files, labels + test_labels
    headers = [_header(p) for p in files]  # unreadable files and ragged sizes come out before any decoding
    (w0, h0) = headers[0][1]
    for p, (_, (w, h)) in zip(files, headers):
        if size is None and (w, h) != (w0, h0):
            raise RegularkitError(
                f"{root}: images differ in size: {files[0].relative_to(root)} is {h0}×{w0} (H×W) but "
                f"{p.relative_to(root)} is {h}×{w}; pass image_size=(H, W) to resize them")
    y = np.asarray(labels, np.int64)
    if has_train:
        train_idx, test_idx = np.arange(n_train), np.arange(n_train, len(files))
    else:
        train_idx, test_idx = split_off_test(y, test_fraction, seed=seed, classes=classes)
    if grayscale is None:
        channels = 1 if all(mode in GREY_MODES for mode, _ in headers) else 3
    else:
        channels = 1 if grayscale else 3
    all_files = Streamed(ImageFiles(root, files, channels, size, size or (h0, w0)), num_workers=num_workers)
    rel = [p.relative_to(root).as_posix() for p in files]
    sources = {"loader": "image_folder", "root": str(root), "split": "folders" if has_train else "seeded",
               "test_fraction": None if has_train else test_fraction, "seed": None if has_train else seed,
               "image_size": list(size) if size else None, "channels": channels,
               "train_files": [rel[i] for i in train_idx], "test_files": [rel[i] for i in test_idx]}
    return StreamedDataset(root.name, all_files[train_idx], y[train_idx], all_files[test_idx], y[test_idx],
                           num_classes=len(classes), classes=tuple(classes), layout="images", flips=flips, fill=fill,
                           sources=sources)


def load_image_folder(root: str | os.PathLike, *, image_size: int | tuple[int, int] | None = None,
                      test_fraction: float = 0.2, seed: int = 0, grayscale: bool | None = None,
                      flips: tuple[str, ...] | None = None, fill: str | None = None) -> Dataset:
    """A Dataset of the images under ``root``: float32 N×C×H×W in [0, 1], classes from folder names.

    With ``root/train`` and ``root/test`` both present, that split is used and
    the classes are the train folder names; otherwise a seeded, stratified
    ``test_fraction`` is held out (:func:`~regularkit.data.sampling.split_off_test`).
    ``sources`` records which files (relative to ``root``) went where.  Images
    of differing sizes need ``image_size`` (an int or ``(H, W)``), which
    resizes every image with Pillow's bilinear filter.
    """
    return decode_image_folder(stream_image_folder(root, image_size=image_size, test_fraction=test_fraction,
                                                   seed=seed, grayscale=grayscale, flips=flips, fill=fill))


def decode_image_folder(streamed: StreamedDataset) -> Dataset:
    """A streamed image folder (:func:`stream_image_folder`) decoded once into arrays; refused when it cannot fit."""
    n, (c, h, w) = len(streamed.y_train) + len(streamed.y_test), streamed.input_shape
    # decoded images, then stacked: two float32 copies at the peak
    return materialize(streamed, f"image folder {streamed.sources['root']!r} ({n:,} images of {c}×{h}×{w} float32, "
                                 "twice while loading)", "pass a smaller image_size (--image-size H,W)")
