"""Where the samples come from. Each source returns a :class:`Source` of numpy
arrays; splitting, modifiers and scaling happen in ``losszoo.data.splits``.

A dataset plugin returns a :class:`Source` too (public as ``losszoo.Dataset``);
:func:`check_source` holds it to the contract in ``docs/your-data.md``.
Tables (csv, parquet): ``losszoo.data.tables``; image folders:
``losszoo.data.images``. Metadata and hyperparameters:
``losszoo/catalog/datasets.py`` and ``losszoo/catalog/files.py``.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from losszoo.errors import DataError


@dataclass
class Source:
    """A dataset's samples, before the split. Public as ``losszoo.Dataset``.

    ``x`` holds float features (N, F), or images (N, C, H, W): float as they are, or
    uint8 pixels 0..255 that the trainer scales. ``y`` holds int labels 0..K-1 (N,),
    float values (N,), or int masks (N, H, W) of class indices.
    """

    x: np.ndarray  # (N, F) features, or (N, C, H, W) images (float32, or uint8 pixels)
    y: np.ndarray  # (N,) int labels, (N,) float values, or (N, H, W) int masks
    task: str  # classification | regression | segmentation
    image_shape: tuple[int, ...] | None = None  # (C, H, W) when the rows of x are images
    class_names: list[str] | None = None  # the name of each label (or mask value), in label order
    split: np.ndarray | None = None  # (N,) 0 train, 1 val, 2 test: the data's own split, which replaces the random one
    warnings: list[str] = field(default_factory=list)  # for the user: files skipped and why

    def __post_init__(self) -> None:
        if self.image_shape is None and getattr(self.x, "ndim", 0) == 4:  # (N, C, H, W) says its own shape
            self.image_shape = tuple(self.x.shape[1:])


def _labels(x: np.ndarray, y: np.ndarray, **kw: Any) -> Source:
    return Source(np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64), "classification", **kw)


def _values(x: np.ndarray, y: np.ndarray) -> Source:
    return Source(np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32), "regression")


def digits(**_: Any) -> Source:
    from sklearn.datasets import load_digits

    data = load_digits()
    # Pixel values are 0..16; as images (1, 8, 8) for the cnn, flattened for the mlp.
    return _labels(data.data / 16.0, data.target, image_shape=(1, 8, 8), class_names=[str(c) for c in range(10)])


def iris(**_: Any) -> Source:
    from sklearn.datasets import load_iris

    data = load_iris()
    return _labels(data.data, data.target, class_names=list(data.target_names))


def wine(**_: Any) -> Source:
    from sklearn.datasets import load_wine

    data = load_wine()
    return _labels(data.data, data.target, class_names=list(data.target_names))


def breast_cancer(**_: Any) -> Source:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return _labels(data.data, data.target, class_names=list(data.target_names))


def diabetes(**_: Any) -> Source:
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    return _values(data.data, data.target)


def moons(n_samples: int, noise: float, random_state: int, **_: Any) -> Source:
    from sklearn.datasets import make_moons

    return _labels(*make_moons(n_samples=n_samples, noise=noise, random_state=random_state))


def circles(n_samples: int, noise: float, random_state: int, **_: Any) -> Source:
    from sklearn.datasets import make_circles

    return _labels(*make_circles(n_samples=n_samples, noise=noise, factor=0.5, random_state=random_state))


def blobs(n_samples: int, noise: float, random_state: int, classes: int, features: int, **_: Any) -> Source:
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=n_samples, centers=classes, n_features=features, random_state=random_state)
    rng = np.random.default_rng(random_state)
    return _labels(x + noise * rng.standard_normal(x.shape), y)


def classification(n_samples: int, noise: float, random_state: int, classes: int, features: int, **_: Any) -> Source:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n_samples, n_features=features, n_informative=max(2, features // 2), n_classes=classes,
        n_clusters_per_class=1, flip_y=0.0, random_state=random_state,
    )
    rng = np.random.default_rng(random_state)
    return _labels(x + noise * rng.standard_normal(x.shape), y)


def spirals(n_samples: int, noise: float, random_state: int, classes: int, **_: Any) -> Source:
    rng = np.random.default_rng(random_state)
    y = np.arange(n_samples) % classes
    t = rng.uniform(0.25, 1.0, n_samples) * 2.5 * math.pi
    angle = t + 2 * math.pi * y / classes
    radius = t / (2.5 * math.pi)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return _labels(x + noise * 0.1 * rng.standard_normal(x.shape), y)


def regression(n_samples: int, noise: float, random_state: int, **_: Any) -> Source:
    from sklearn.datasets import make_friedman1

    return _values(*make_friedman1(n_samples=n_samples, noise=noise, random_state=random_state))


# --- a user's files ------------------------------------------------------------------------------


def _user_file(path: str, base_dir: Path | None, suffix: str) -> Path:
    if not path:
        raise DataError(f"the {suffix} dataset needs `path:`, the file to read")
    file = Path(path) if Path(path).is_absolute() or base_dir is None else base_dir / path
    if not file.is_file():
        what = "is a folder, not a file" if file.is_dir() else "no such file"
        raise DataError(f"{file}: {what} (paths are relative to the recipe)")
    return file


def csv(path: str, target: str, task: str, features: list[str] = (), drop: list[str] = (),
        categorical: list[str] = (), base_dir: Path | None = None, **_: Any) -> Source:
    """A table: feature columns (numbers, or text one-hot encoded with ``categorical``) and a target column."""
    from losszoo.data.tables import read_csv, to_source

    return to_source(read_csv(_user_file(path, base_dir, "csv")), target, task, features, drop, categorical)


def parquet(path: str, target: str, task: str, features: list[str] = (), drop: list[str] = (),
            categorical: list[str] = (), base_dir: Path | None = None, **_: Any) -> Source:
    """The csv dataset for a parquet file (needs pyarrow: ``pip install 'losszoo[parquet]'``)."""
    from losszoo.data.tables import read_parquet, to_source

    return to_source(read_parquet(_user_file(path, base_dir, "parquet")), target, task, features, drop, categorical)


def image_folder(path: str, size: list[int] = (64, 64), channels: int = 3, task: str = "classification",
                 base_dir: Path | None = None, **_: Any) -> Source:
    """A folder of images, one sub-folder per class (see ``losszoo.data.images``)."""
    from losszoo.data.images import image_folder as read

    return read(path, list(size), channels, task, base_dir)


def npz(path: str, task: str, base_dir: Path | None = None, **_: Any) -> Source:
    """Arrays ``x`` and ``y`` from a numpy ``.npz`` file; class labels of any kind are mapped to 0..K-1."""
    file = _user_file(path, base_dir, "npz")
    try:
        with open(file, "rb") as handle:
            magic = handle.read(6)
        if magic.startswith(b"\x93NUMPY"):
            raise DataError(f"{file}: one .npy array, not an .npz archive of x and y; save with np.savez(p, x=x, y=y)")
        if not magic.startswith(b"PK"):  # np.load would take anything else for a pickle
            raise DataError(f"{file}: not an .npz archive (numpy.savez writes one, with arrays named x and y)")
        with np.load(file) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise DataError(f"{file}: needs arrays named x and y, found {', '.join(arrays.files) or 'none'}")
            x, y = arrays["x"], arrays["y"]
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(f"{file}: holds Python objects (a pickled array); save numbers or strings, e.g. "
                            "np.savez(p, x=x.astype(np.float32), y=y)") from None
        raise DataError(f"{file}: not a readable .npz file ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{file}: not a readable .npz file ({error})") from None
    found = array_problem(x, y, task)
    if found:
        raise DataError(f"{file}: {found[0]}", found[1])
    image_shape = tuple(x.shape[1:]) if x.ndim == 4 else None
    if x.ndim == 4 and x.dtype.kind in "iu" and x.dtype != np.uint8:  # integer pixels: as 8-bit ones
        if x.dtype == np.uint16:
            x = np.round(x / 257).astype(np.uint8)
        elif x.min() >= 0 and x.max() <= 255:
            x = x.astype(np.uint8)
        else:
            raise DataError(f"{file}: integer images hold {x.min()}..{x.max()}; pixels are 0..255 (uint8) or "
                            "0..65535 (uint16): rescale them, or save floats to use them as they are")
    # uint8 images stay pixels for the trainer to scale; everything else becomes float32.
    x = x if x.dtype == np.uint8 and x.ndim == 4 else x.astype(np.float32)
    if task == "regression":
        return Source(x, y.astype(np.float32), "regression")
    if task == "segmentation":  # mask values (0/255 too) become classes 0..K-1 named by value, as an image folder's
        values, masks = np.unique(y, return_inverse=True)
        return Source(x, masks.reshape(y.shape).astype(np.int64), "segmentation", image_shape=image_shape,
                      class_names=[f"{v:g}" for v in values])
    from losszoo.data.tables import class_name

    classes, y = np.unique(y, return_inverse=True)
    names = [class_name(c) if isinstance(c, float | np.floating) else str(c) for c in classes]
    return Source(x, y.ravel().astype(np.int64), "classification", image_shape=image_shape, class_names=names)


# --- the contract ----------------------------------------------------------------------------------


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(n) for n in a.shape) + ("," if a.ndim == 1 else "") + ")"


def array_problem(x: Any, y: Any, task: str) -> tuple[str, str] | None:
    """What is wrong with ``x`` and ``y`` for ``task`` as ``(message, recipe key)``, or None.
    Class labels may still be of any kind (strings, 3 / 7 / 9); :func:`check_source` asks more."""
    for name, a in (("x", x), ("y", y)):
        if not isinstance(a, np.ndarray):
            hint = "; call .numpy() on a tensor" if type(a).__module__.startswith("torch") else ""
            return f"{name} is a {type(a).__name__}, not a numpy array{hint}", "path"
        if a.ndim == 0:
            return f"{name} is a single value (a 0-d array), not one entry per sample", "path"
    if x.dtype.kind not in "biuf":
        return f"x holds {x.dtype} values, not numbers; encode text as numbers first", "path"
    if x.ndim == 1:
        return f"x has shape {_shape(x)}, one value per sample; features are (N, F): use x[:, None]", "path"
    if x.ndim == 3:
        return f"x has shape {_shape(x)}; images need a channel axis, (N, C, H, W): use x[:, None]", "path"
    if x.ndim > 4:
        return f"x has shape {_shape(x)}; features are (N, F), images (N, C, H, W)", "path"
    if 0 in x.shape[1:]:
        return f"x has shape {_shape(x)}: no features (or pixels) per sample", "path"
    if len(x) != len(y) or len(x) == 0:
        return f"x has {len(x)} rows and y {len(y)}; they must match and be non-empty", "path"
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        return "x holds inf or nan values; clean them first", "path"
    numeric = y.dtype.kind in "biuf"
    if numeric and y.dtype.kind == "f" and not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))[0])
        return f"y holds inf or nan values (the first in row {row}); clean them first", "path"
    if task == "segmentation":
        if x.ndim != 4 or y.shape != (x.shape[0], *x.shape[2:]):
            return f"segmentation needs x (N, C, H, W) and y (N, H, W), got {_shape(x)} and {_shape(y)}", "path"
        if not numeric or not np.all(y == np.round(y)) or y.min() < 0:
            return "masks y must hold class indices 0, 1, 2, ...", "path"
        return None
    if task in ("multilabel", "boxes"):
        width = "(N, 4) as x1, y1, x2, y2" if task == "boxes" else "(N, L), one column per label"
        if y.ndim != 2 or (task == "boxes" and y.shape[1] != 4):
            return f"y has shape {_shape(y)}; {task} needs {width}", "path"
        if not numeric:
            return f"y holds {y.dtype} values, not numbers", "path"
        if task == "multilabel" and not np.isin(y, (0, 1)).all():
            return "multilabel targets y must be 0 or 1", "path"
        if task == "boxes" and ((y < 0).any() or (y > 1).any() or (y[:, 2:] < y[:, :2]).any()):
            return "boxes y must be normalised to [0, 1] with x1 <= x2 and y1 <= y2", "path"
        return None
    if y.ndim != 1:
        one_hot = y.ndim == 2 and numeric and task == "classification" and bool(np.all(y.sum(axis=1) == 1))
        hint = ": it looks one-hot, save y.argmax(1)" if one_hot else "; save one column"
        return f"y has shape {_shape(y)}; {task} needs one {'label' if task == 'classification' else 'value'} " \
               f"per sample, (N,){hint}", "path"
    if task == "regression":
        if not numeric:
            return f"y holds {y.dtype} values, not numbers; for class labels use task: classification", "task"
        return None
    if y.dtype.kind not in "biufUS":
        return f"y holds {y.dtype} values; class labels are integers or strings", "path"
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        example = y[y != np.round(y)][0]
        return f"y holds {example:g}, not a class label; for numbers to predict use task: regression", "task"
    if len(np.unique(y)) < 2:
        return f"y holds a single class ({y[0]}); classification needs at least two", "path"
    return None


def check_source(obj: Any, name: str) -> Source:
    """What dataset ``name`` returned, checked against the contract (``docs/your-data.md``).

    Raises DataError with key ``name``: the plugin's code must change, not a hyperparameter.

    >>> check_source((np.zeros((4, 2)), np.arange(4)), "mine")
    Traceback (most recent call last):
    ...
    losszoo.errors.DataError: dataset 'mine' returned a tuple, not a losszoo.Dataset; return losszoo.Dataset(x, y, task="classification")
    """  # noqa: E501
    from losszoo.inputs import TARGETS_OF_TASK  # the tasks a dataset can fix, each with its target

    who = f"dataset {name!r}"
    if not isinstance(obj, Source):
        hint = '; return losszoo.Dataset(x, y, task="classification")' if isinstance(obj, (tuple, list)) else ""
        raise DataError(f"{who} returned a {type(obj).__name__}, not a losszoo.Dataset{hint}", "name")
    if obj.task not in TARGETS_OF_TASK:
        raise DataError(f"{who} returned task={obj.task!r}; it must be one of {', '.join(TARGETS_OF_TASK)}",
                        "name")
    found = array_problem(obj.x, obj.y, obj.task)
    if found:
        raise DataError(f"{who}: {found[0]}", "name")
    problem = _contract_problem(obj)
    if problem:
        raise DataError(f"{who}: {problem}", "name")
    return obj


def _contract_problem(source: Source) -> str | None:
    """What a source must hold beyond sound arrays: integer labels from 0, names, shapes, split."""
    x, y = source.x, source.y
    if source.task in ("classification", "segmentation"):
        if y.dtype.kind not in "iu":
            return f"y is {y.dtype}; class labels must be integers 0..K-1: return y.astype(np.int64)"
        if y.min() < 0:
            return f"y holds the label {y.min()}; class labels must be 0..K-1 (np.unique(y, return_inverse=True))"
    if source.image_shape is not None:
        shape = tuple(source.image_shape)
        if len(shape) != 3 or int(np.prod(shape)) != int(np.prod(x.shape[1:])):
            return f"image_shape {shape} is not (C, H, W) for rows of shape {x.shape[1:]}"
        if x.ndim == 4 and shape != x.shape[1:]:
            return f"image_shape {shape} differs from x's (C, H, W) {x.shape[1:]}"
    names = source.class_names
    if names is not None and source.task in ("classification", "segmentation") and len(names) < int(y.max()) + 1:
        return f"class_names names {len(names)} classes; the labels go up to {int(y.max())}"
    if names is not None and source.task == "multilabel" and len(names) != y.shape[1]:
        return f"class_names names {len(names)} labels; y has {y.shape[1]} columns"
    split = source.split
    if split is not None:
        if not isinstance(split, np.ndarray) or split.shape != (len(y),) or split.dtype.kind not in "iu":
            return f"split must be an int array (N,) = ({len(y)},) of 0 train, 1 val, 2 test"
        if not np.isin(split, (0, 1, 2)).all() or not (split == 0).any():
            return "split must hold 0 (train), 1 (val) or 2 (test), and some 0s"
    if not isinstance(source.warnings, list) or not all(isinstance(w, str) for w in source.warnings):
        return "warnings must be a list of strings"
    return None
