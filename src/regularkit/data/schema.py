"""What every loader returns: the frozen :class:`Dataset`, its layouts and data semantics, and the shared checks.

Layouts follow PyTorch's channels-first convention, one per kind of first
layer: ``"vectors"`` N×D (``nn.Linear``), ``"sequences"`` N×C×L
(``nn.Conv1d``), ``"images"`` N×C×H×W (``nn.Conv2d``).  Semantics say what an
augmentation may do without changing the class: ``flips`` the flips that
preserve it, ``fill`` what a crop or shift brings in at the borders; the fill
names are Keras' ``fill_mode`` values (``ImageDataGenerator``,
``RandomTranslation``): "constant" (0), "reflect", "nearest", "wrap".

:func:`as_features` and :func:`as_labels` are the one set of array checks the
``.npz`` loader and ``from_arrays`` / ``from_torch`` go through, so a file and
an in-memory array are refused for the same reasons, in the same words.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from regularkit._util.checks import check_int, check_str
from regularkit.errors import RegularkitError

__all__ = ["Dataset", "DatasetFacts", "DataWarning", "LAYOUTS", "FLIPS", "FILLS", "as_features", "as_labels", "inferred_num_classes",
           "resolve_layout", "check_flips", "check_fill"]

LAYOUTS = ("vectors", "sequences", "images")
FLIPS = ("horizontal", "vertical")
FILLS = ("constant", "reflect", "nearest", "wrap")
_SHAPE = {"vectors": "N×D", "sequences": "N×C×L", "images": "N×C×H×W"}
_NDIM = {"vectors": 2, "sequences": 3, "images": 4}


class DataWarning(UserWarning):
    """Data accepted, but maybe not as meant (a numeric column read as categories): one line naming the value.

    The CLI prints it as ``regularkit: warning: ...``; from Python it is an ordinary warning, so
    ``warnings.simplefilter("error", DataWarning)`` turns it into a refusal."""


def resolve_layout(layout, shape: tuple[int, ...], what: str, source: str) -> str:
    """The layout of a loader's raw array ``what`` of ``shape``: ``layout`` checked, or inferred when ``None``.

    Inference: 2-D vectors, 3-D N×H×W grey images (Keras' ``mnist.load_data()``
    format; pass ``"sequences"`` to keep N×C×L), 4-D images.  A declared
    layout the array cannot have is an error naming both.
    """
    ndim = len(shape)
    if layout is None:
        return "vectors" if ndim == 2 else "images"
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise RegularkitError(f"{source}: layout must be one of {', '.join(map(repr, LAYOUTS))}; got {layout!r}")
    allowed = (3, 4) if layout == "images" else (_NDIM[layout],)
    if ndim not in allowed:
        shapes = "N×H×W or N×C×H×W (or N×H×W×C)" if layout == "images" else _SHAPE[layout]
        raise RegularkitError(f"{source}: layout {layout!r} needs {what} of shape {shapes}, got shape {tuple(shape)}")
    return layout


def check_flips(flips, layout: str, source: str) -> tuple[str, ...] | None:
    """``flips`` as a tuple in ``FLIPS`` order; ``None`` (unknown) stays ``None``.

    Vectors have no axes to flip; a sequence has one ("horizontal" reverses L).
    """
    if flips is None:
        return None
    if not isinstance(flips, (tuple, list)):
        raise RegularkitError(f"{source}: flips must be a tuple of 'horizontal' / 'vertical', got {flips!r}")
    for f in flips:
        if not isinstance(f, str) or f not in FLIPS:
            raise RegularkitError(f"{source}: flips may hold 'horizontal' and 'vertical', got {f!r}")
    if len(set(flips)) != len(flips):
        raise RegularkitError(f"{source}: flips names a flip twice: {tuple(flips)!r}")
    if layout == "vectors" and flips:
        raise RegularkitError(f"{source}: flips {tuple(flips)!r} describe images or sequences, not vectors")
    if layout == "sequences" and "vertical" in flips:
        raise RegularkitError(f"{source}: a sequence has no vertical axis to flip, got flips {tuple(flips)!r}")
    return tuple(f for f in FLIPS if f in flips)


def check_fill(fill, layout: str, source: str) -> str | None:
    """``fill`` checked: one of ``FILLS`` or ``None`` (unknown); vectors have no borders."""
    if fill is None:
        return None
    if not isinstance(fill, str) or fill not in FILLS:
        raise RegularkitError(f"{source}: fill must be one of {', '.join(map(repr, FILLS))}; got {fill!r}")
    if layout == "vectors":
        raise RegularkitError(f"{source}: fill {fill!r} describes images or sequences, not vectors")
    return fill


def as_features(what: str, x: np.ndarray, *, source: str, layout=None) -> tuple[np.ndarray, str]:
    """``x`` as contiguous float32 in its final layout, and that layout.

    uint8 is scaled by 1/255 (8-bit pixels to [0, 1]); other real types are only
    cast.  Images: N×H×W gains a channel axis (N×1×H×W); a 4-D array whose last
    axis is 1 or 3 and whose middle axes are both > 4 is channels-last (Keras,
    PIL) and is transposed to channels-first.  NaN and inf are refused, counted.
    """
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise RegularkitError(f"{source}: {what} must be real numbers, got dtype {x.dtype}")
    if x.ndim < 2 or x.ndim > 4 or len(x) == 0:
        raise RegularkitError(
            f"{source}: {what} must be non-empty N×D, N×C×L, N×H×W, N×C×H×W or N×H×W×C, got shape {x.shape}")
    layout = resolve_layout(layout, x.shape, what, source)
    if np.issubdtype(x.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise RegularkitError(f"{source}: {what} holds {bad} non-finite values (NaN or inf)")
    out = x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x.astype(np.float32)
    if layout == "images" and out.ndim == 3:  # N×H×W grey images
        out = out[:, None]
    elif layout == "images" and out.shape[3] in (1, 3) and out.shape[1] > 4 and out.shape[2] > 4:
        out = out.transpose(0, 3, 1, 2)  # channels-last to PyTorch's channels-first
    return np.ascontiguousarray(out), layout


def as_labels(what: str, y: np.ndarray, n: int, *, source: str) -> np.ndarray:
    """``y`` as int64 class indices, one per sample, all ``>= 0``.

    Strict: float labels are refused even when every value is a whole number
    (a float label array usually means regression targets or a lost cast).
    """
    if not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        hint = ""
        if y.dtype.kind == "f" and y.size and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            hint = " (whole numbers, but labels need an integer dtype: cast with .astype(np.int64))"
        elif y.dtype.kind in "US":
            hint = " (map names to indices 0..k-1 and pass the names as classes)"
        raise RegularkitError(f"{source}: {what} must hold integer labels, got dtype {y.dtype}{hint}")
    if y.shape != (n,):
        raise RegularkitError(f"{source}: {what} must have shape ({n},) to match x, got {y.shape}")
    if y.min() < 0:
        raise RegularkitError(f"{source}: {what} holds label {y.min()}; labels must be >= 0")
    return y.astype(np.int64)


def inferred_num_classes(source: str, *labels: np.ndarray) -> int:
    """The number of classes when none is given: the largest label + 1, provided the labels are 0..k-1.

    Labels with a gap ({0..8, 50000}) would make a model with one output per index, a 50,001-class
    model for 10 classes, and no warning: refused, naming the first index without a sample.  Remap
    them (``np.unique(y, return_inverse=True)``), or give ``num_classes`` to keep a class that has
    no sample on purpose.
    """
    seen = np.unique(np.concatenate([np.asarray(y).ravel() for y in labels]))
    top = int(seen[-1])
    if len(seen) != top + 1:
        gap = int(np.argmax(seen != np.arange(len(seen))))  # the first index without a sample
        raise RegularkitError(f"{source}: labels must be 0..k-1, got {len(seen)} distinct labels from {seen[0]} to "
                              f"{top} (label {gap} has no sample); remap them to 0..{len(seen) - 1} "
                              "(np.unique(y, return_inverse=True)) or give num_classes")
    return top + 1


def _json_ready(name: str, sources) -> dict | None:
    if sources is None:
        return None
    if not isinstance(sources, dict):
        raise RegularkitError(f"{name}: sources must be a dict or None, got {type(sources).__name__}")
    try:  # a round trip both checks that a study can save it and copies it
        return json.loads(json.dumps(sources, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise RegularkitError(f"{name}: sources must be JSON-ready: {exc}") from None


class DatasetFacts:
    """What a dataset's fields say about it, for :class:`Dataset` (arrays) and
    :class:`~regularkit.data.streaming.StreamedDataset` (samples read per batch) alike."""

    @property
    def kind(self) -> str:
        """The resolved layout: ``layout``, else 2-D vectors, 3-D sequences, 4-D images.

        A 3-D array is a sequence here: loaders turn N×H×W grey images into N×1×H×W.
        """
        if self.layout is not None:
            return self.layout
        return {2: "vectors", 3: "sequences", 4: "images"}[self.x_train.ndim]

    @property
    def task(self) -> str:
        """``"classification"``; a :class:`~regularkit.data.regression.RegressionDataset` says ``"regression"``."""
        return "classification"

    @property
    def num_outputs(self) -> int:
        """The width of the model's last layer: K classes, or k regression outputs (both in ``num_classes``)."""
        return self.num_classes


@dataclass(frozen=True, eq=False)
class Dataset(DatasetFacts):
    """A classification dataset: fixed train and test arrays, class names, layout and data semantics.

    Construction checks dtypes (x float32, y int64), lengths, label range,
    finite x (one ``np.isfinite`` pass per array), at least two classes in
    ``y_train``, layout against shape, flips and fill, then marks the four arrays
    read-only (the caller's arrays included; a refused dataset leaves them as
    they were): edit copies, never the dataset.
    ``layout=None`` is inferred by :attr:`kind`; ``flips`` / ``fill`` ``None``
    mean unknown.  ``sources`` is a JSON-ready record of where the samples came
    from (files, rows, indices of a seeded test split, fitted preprocessing),
    for a study to save with its results; it is copied on construction.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    classes: tuple[str, ...] | None = None
    layout: str | None = None
    flips: tuple[str, ...] | None = None
    fill: str | None = None
    sources: dict | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_str("name", self.name)
        check_int("num_classes", self.num_classes, minimum=2)
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            for what, a in ((f"x_{part}", x), (f"y_{part}", y)):
                if not isinstance(a, np.ndarray):
                    raise RegularkitError(f"{self.name}: {what} must be a NumPy array, got {type(a).__name__}")
            if x.dtype != np.float32 or y.dtype != np.int64:
                raise RegularkitError(
                    f"{self.name}: x_{part} must be float32 and y_{part} int64, got {x.dtype} and {y.dtype}")
            if x.ndim < 2 or x.ndim > 4:
                raise RegularkitError(
                    f"{self.name}: x_{part} must be N×D, N×C×L or N×C×H×W, got shape {x.shape}")
            if y.ndim != 1 or len(x) != len(y):
                raise RegularkitError(
                    f"{self.name}: x_{part} has {len(x)} samples but y_{part} has shape {y.shape}")
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                bad = y.min() if y.min() < 0 else y.max()
                raise RegularkitError(
                    f"{self.name}: y_{part} holds label {bad}, outside [0, {self.num_classes})")
            bad = int(np.count_nonzero(~np.isfinite(x)))  # one pass over each array, once per Dataset
            if bad:
                raise RegularkitError(f"{self.name}: x_{part} holds {bad} non-finite values (NaN or inf)")
        if len(self.y_train) == 0:
            raise RegularkitError(f"{self.name}: x_train is empty (0 samples)")
        seen = np.unique(self.y_train)
        if len(seen) < 2:
            raise RegularkitError(
                f"{self.name}: y_train holds a single class ({seen[0]}); a classifier needs at least 2")
        unseen = np.setdiff1d(self.y_test, seen)
        if unseen.size:
            # the model can never predict a class it never saw: refused now, not reported later as error
            raise RegularkitError(f"{self.name}: y_test holds label {unseen[0]}, which y_train never has "
                                  f"({unseen.size} such label(s)); every test class must be in the training set")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise RegularkitError(f"{self.name}: train samples have shape {self.x_train.shape[1:]} "
                                  f"but test samples {self.x_test.shape[1:]}")
        if self.classes is not None:
            if not isinstance(self.classes, (tuple, list)) or not all(isinstance(c, str) for c in self.classes):
                raise RegularkitError(f"{self.name}: classes must be a tuple of class names (strings) or None, "
                                      f"got {self.classes!r}")
            object.__setattr__(self, "classes", tuple(self.classes))
        if self.classes is not None and len(self.classes) != self.num_classes:
            raise RegularkitError(
                f"{self.name}: {len(self.classes)} class names for {self.num_classes} classes")
        if self.layout is not None:
            if not isinstance(self.layout, str) or self.layout not in LAYOUTS:
                raise RegularkitError(
                    f"{self.name}: layout must be one of {', '.join(map(repr, LAYOUTS))}; got {self.layout!r}")
            if self.x_train.ndim != _NDIM[self.layout]:
                raise RegularkitError(f"{self.name}: layout {self.layout!r} needs x of shape "
                                      f"{_SHAPE[self.layout]}, got shape {self.x_train.shape}")
        object.__setattr__(self, "flips", check_flips(self.flips, self.kind, self.name))
        object.__setattr__(self, "fill", check_fill(self.fill, self.kind, self.name))
        object.__setattr__(self, "sources", _json_ready(self.name, self.sources))
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):  # only once every check passed
            a.setflags(write=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(C, H, W)`` for images, ``(C, L)`` for sequences, ``(D,)`` for vectors."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")
