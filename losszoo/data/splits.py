"""Turn a source into train / val / test tensors: the seeded stratified split,
the train-only modifiers (imbalance, label noise, outliers), and scaling.

The split and the modifiers are fixed by the run's seed, so every loss trained
with seed 0 sees the same samples with the same corrupted labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from losszoo.data.sources import Source
from losszoo.errors import DataError
from losszoo.registry import DATASETS


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Data:
    train: Split
    val: Split
    test: Split
    task: str
    num_classes: int | None
    in_features: int
    image_shape: tuple[int, ...] | None
    class_counts: list[int] | None
    target_mean: float = 0.0  # regression targets are standardised; predictions map back with these
    target_std: float = 1.0
    open_set: bool = False  # test holds classes never seen in training: retrieval metrics only
    class_names: list[str] | None = None

    def describe(self) -> str:
        sizes = f"{len(self.train)}/{len(self.val)}/{len(self.test)}"
        classes = f", {self.num_classes} classes" if self.num_classes else ""
        return f"{self.task}, train/val/test {sizes}{classes}"


def _split_indices(y: np.ndarray, fraction: float, seed: int, stratify: bool, key: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    try:
        return train_test_split(index, test_size=fraction, random_state=seed, stratify=y if stratify else None)
    except ValueError as error:  # too few samples of a class to stratify
        raise DataError(f"cannot split {len(y)} samples with {key} {fraction:g} (seed {seed}): {error}", key) \
            from None


def split_problem(y: np.ndarray, given: np.ndarray | None, params: dict[str, Any], seeds: list[int],
                  stratify: bool) -> DataError | None:
    """Why the split of a user's data would fail for one of ``seeds`` (the first), or None: the splits
    themselves, tried before any run trains (a stratified split of few samples fails for some seeds only)."""
    if stratify and params.get("open_set"):
        y = y[seen_by_open_set(y)]
    for seed in seeds:
        try:
            _split(y, given, params, seed, stratify)
        except DataError as error:
            return error
    return None


def seen_by_open_set(y: np.ndarray) -> np.ndarray:
    """Which samples ``open_set`` trains on: those of the first half of the classes (the rest are the test)."""
    classes = np.unique(y)
    return np.isin(y, classes[: len(classes) // 2])


def long_tail(y: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Indices that keep an exponential profile of class sizes, largest / smallest = 1 / ratio."""
    classes = np.unique(y)
    largest = max(int((y == c).sum()) for c in classes)
    keep = []
    for rank, c in enumerate(classes):
        members = np.flatnonzero(y == c)
        n = max(1, int(round(largest * ratio ** (rank / max(1, len(classes) - 1)))))
        keep.append(rng.permutation(members)[: min(n, len(members))])
    return np.sort(np.concatenate(keep))


def corrupt_labels(y: np.ndarray, fraction: float, kind: str, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Flip a ``fraction`` of labels: to a random other class, or to the next class."""
    y = y.copy()
    flip = rng.permutation(len(y))[: int(round(fraction * len(y)))]
    if kind == "pairwise":
        y[flip] = (y[flip] + 1) % num_classes
    else:
        y[flip] = (y[flip] + rng.integers(1, num_classes, len(flip))) % num_classes
    return y


def load_data(name: str, params: dict[str, Any], seed: int, base_dir: Path | None = None,
              center_targets: bool = True) -> Data:
    """Load dataset ``name`` with resolved ``params`` and split it with ``seed``.

    Regression targets are divided by the standard deviation of the training
    targets as the run sees them (after the ``outliers`` modifier: the clean
    ones are an oracle no user has) and, with ``center_targets``, centred on
    their mean. uint8 images are scaled to [0, 1] and then standardised per
    channel with train statistics; tabular features are standardised per
    column. Multi-label targets (0/1) and boxes (normalised corners) are left
    as they are.
    """
    from losszoo.data.sources import check_source

    source: Source = check_source(DATASETS.get(name).load()(**params, base_dir=base_dir), name)
    rng = np.random.default_rng(seed)
    x, y, task = source.x, source.y, source.task
    classify = task == "classification"

    unseen = None
    if classify and params.get("open_set"):
        classes = np.unique(y)
        if len(classes) // 2 < 2:
            raise DataError(f"open_set needs at least 4 classes, {name} has {len(classes)}")
        if source.split is not None:
            raise DataError(f"open_set chooses its own test split; {name} brings one (train/ val/ test/)", "open_set")
        seen = seen_by_open_set(y)
        unseen = np.flatnonzero(~seen)
        x, y = x[seen], y[seen]

    train, val, test = _split(y, source.split, params, seed, classify)
    if unseen is not None:  # the open-set test split is every sample of the unseen classes
        test_x, test_y = source.x[unseen], np.unique(source.y[unseen], return_inverse=True)[1]
    else:
        test_x, test_y = x[test], y[test]
    x_train, y_train = x[train], y[train]

    num_classes = int(y.max()) + 1 if classify else None
    if task == "segmentation":  # named classes count even when absent from these masks
        num_classes = len(source.class_names) if source.class_names else int(source.y.max()) + 1
    if task == "multilabel":
        num_classes = int(y.shape[1])
    if classify:
        if params.get("imbalance", 1.0) < 1.0:
            keep = long_tail(y_train, params["imbalance"], rng)
            x_train, y_train = x_train[keep], y_train[keep]
        if params.get("label_noise", 0.0) > 0:
            y_train = corrupt_labels(y_train, params["label_noise"], params["noise_kind"], num_classes, rng)

    target_mean, target_std = 0.0, 1.0
    if task == "regression":
        if params.get("outliers", 0.0) > 0:
            y_train = y_train.copy()
            hit = rng.permutation(len(y_train))[: int(round(params["outliers"] * len(y_train)))]
            y_train[hit] += params["outlier_scale"] * y_train.std() * rng.standard_cauchy(len(hit))
        target_mean = float(y_train.mean()) if center_targets else 0.0
        target_std = float(y_train.std() or 1.0)

    x_train, x_val, test_x = _scale_inputs(x_train, x[val], test_x, source.image_shape is not None)

    def split(features: np.ndarray, target: np.ndarray) -> Split:
        if task == "regression":
            target = (target - target_mean) / target_std
        dtype = torch.int64 if task in ("classification", "segmentation") else torch.float32
        return Split(torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(target, dtype=dtype))

    if classify:
        counts = np.bincount(y_train.ravel(), minlength=num_classes).tolist()
    elif task == "segmentation":
        counts = np.bincount(y_train.ravel(), minlength=num_classes).tolist()  # pixels per class
    elif task == "multilabel":
        counts = np.asarray(y_train).sum(axis=0).astype(int).tolist()  # positives per label
    else:
        counts = None
    return Data(
        train=split(x_train, y_train),
        val=split(x_val, y[val]),
        test=split(test_x, test_y),
        task=task,
        num_classes=num_classes,
        in_features=int(np.prod(x.shape[1:])),
        image_shape=source.image_shape,
        class_counts=counts,
        target_mean=target_mean,
        target_std=target_std,
        open_set=unseen is not None,
        class_names=source.class_names,
    )


def _split(y: np.ndarray, given: np.ndarray | None, params: dict[str, Any], seed: int, stratify: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, val and test indices: the data's own split where it brings one (test and val carved from
    train, stratified and seeded, where it lacks them), else a seeded stratified random split."""
    if given is None:
        rest, test = _split_indices(y, params["test_fraction"], seed, stratify, "test_fraction")
        train, val = _split_indices(y[rest], params["val_fraction"], seed, stratify, "val_fraction")
        return rest[train], rest[val], test
    train, val, test = (np.flatnonzero(given == part) for part in (0, 1, 2))
    if not len(test):
        keep, held = _split_indices(y[train], params["test_fraction"], seed, stratify, "test_fraction")
        train, test = train[keep], train[held]
    if not len(val):
        keep, held = _split_indices(y[train], params["val_fraction"], seed, stratify, "val_fraction")
        train, val = train[keep], train[held]
    return train, val, test


def _scale_inputs(train: np.ndarray, val: np.ndarray, test: np.ndarray, images: bool
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardise with train statistics: tables per column; uint8 images per channel after / 255 (float
    images are used as given)."""
    if images and train.dtype != np.uint8:
        return train, val, test
    if images:
        train, val, test = (a.astype(np.float32) / 255.0 for a in (train, val, test))
        axes = (0, *range(2, train.ndim))
        mean = train.mean(axis=axes, keepdims=True)
        std = train.std(axis=axes, keepdims=True)
    else:
        mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return (train - mean) / std, (val - mean) / std, (test - mean) / std
