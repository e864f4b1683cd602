"""Where the samples come from. Each source returns a :class:`Source` of numpy
arrays; splitting, modifiers and scaling happen in ``losszoo.data.splits``.

Metadata and hyperparameters: ``losszoo/catalog/datasets.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from losszoo.errors import DataError


@dataclass
class Source:
    x: np.ndarray  # (N, F) features, or (N, C, H, W) images
    y: np.ndarray  # (N,) int labels, (N,) float values, or (N, H, W) int masks
    task: str  # classification | regression | segmentation
    image_shape: tuple[int, ...] | None = None  # (C, H, W) when the rows of x are images
    class_names: list[str] | None = None


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


def _user_file(path: str, base_dir: Path | None, suffix: str) -> Path:
    if not path:
        raise DataError(f"the {suffix} dataset needs `path:`, the file to read")
    file = Path(path) if Path(path).is_absolute() or base_dir is None else base_dir / path
    if not file.is_file():
        raise DataError(f"{file}: no such file (paths are relative to the recipe)")
    return file


def csv(path: str, target: str, task: str, base_dir: Path | None = None, **_: Any) -> Source:
    """A table with numeric feature columns and one target column."""
    import csv as csv_module

    file = _user_file(path, base_dir, "csv")
    with file.open(newline="") as handle:
        rows = list(csv_module.reader(handle))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DataError(f"{file}: the file is empty; it needs a header line and rows of numbers")
    header = [name.strip() for name in rows[0]]
    if not target:
        raise DataError(f"{file}: say which column to predict with `target:` (columns: {', '.join(header)})",
                        "target")
    if target not in header:
        import difflib

        close = difflib.get_close_matches(target, header, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{file}: no column {target!r}{hint} (columns: {', '.join(header)})", "target")
    body = rows[1:]
    if not body:
        raise DataError(f"{file}: the file has a header but no rows")
    values = np.empty((len(body), len(header)), dtype=np.float64)
    for line_no, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{file}:{line_no}: {len(row)} values for {len(header)} columns")
        for column, cell in enumerate(row):
            text = cell.strip()
            if text == "":
                raise DataError(f"{file}:{line_no}: column {header[column]!r} is missing a value; fill or drop the row")
            try:
                values[line_no - 2, column] = float(text)
            except ValueError:
                raise DataError(
                    f"{file}:{line_no}: column {header[column]!r} holds {text!r}, not a number; "
                    "encode categories as numbers first"
                ) from None
    if not np.isfinite(values).all():
        raise DataError(f"{file}: holds inf or nan values; clean them first")
    index = header.index(target)
    x = np.delete(values, index, axis=1)
    if x.shape[1] == 0:
        raise DataError(f"{file}: has no feature columns besides the target {target!r}")
    y = values[:, index]
    if task == "classification":
        if not np.all(y == np.round(y)):
            raise DataError(f"{file}: target {target!r} holds non-integer values; use task: regression", "task")
        classes, y = np.unique(y, return_inverse=True)
        return _labels(x, y, class_names=[f"{c:g}" for c in classes])
    return _values(x, y)


def npz(path: str, task: str, base_dir: Path | None = None, **_: Any) -> Source:
    """Arrays ``x`` and ``y`` from a numpy ``.npz`` file."""
    file = _user_file(path, base_dir, "npz")
    try:
        with np.load(file) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise DataError(f"{file}: needs arrays named x and y, found {', '.join(arrays.files) or 'none'}")
            x, y = arrays["x"], arrays["y"]
    except (OSError, ValueError) as error:
        raise DataError(f"{file}: not a readable .npz file ({error})") from None
    if len(x) != len(y) or len(x) == 0:
        raise DataError(f"{file}: x has {len(x)} rows and y {len(y)}; they must match and be non-empty")
    if not np.isfinite(x).all():
        raise DataError(f"{file}: x holds inf or nan values")
    image_shape = tuple(x.shape[1:]) if x.ndim == 4 else None
    if task == "regression":
        return _values(x, y)
    if task == "segmentation":
        if x.ndim != 4 or y.shape != (x.shape[0], *x.shape[2:]):
            raise DataError(f"{file}: segmentation needs x (N, C, H, W) and y (N, H, W), got {x.shape} and {y.shape}")
        return Source(x.astype(np.float32), y.astype(np.int64), "segmentation", image_shape=image_shape)
    classes, y = np.unique(y, return_inverse=True)
    return _labels(x, y, image_shape=image_shape, class_names=[str(c) for c in classes])
