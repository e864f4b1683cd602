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

    def describe(self) -> str:
        sizes = f"{len(self.train)}/{len(self.val)}/{len(self.test)}"
        classes = f", {self.num_classes} classes" if self.num_classes else ""
        return f"{self.task}, train/val/test {sizes}{classes}"


def _split_indices(y: np.ndarray, fraction: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    try:
        return train_test_split(index, test_size=fraction, random_state=seed, stratify=y if stratify else None)
    except ValueError as error:  # too few samples of a class to stratify
        raise DataError(f"cannot split {len(y)} samples with fraction {fraction:g}: {error}") from None


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

    Regression targets are divided by their train standard deviation and, with
    ``center_targets``, centred on their train mean.
    """
    entry = DATASETS.get(name)
    source: Source = entry.load()(**params, base_dir=base_dir)
    rng = np.random.default_rng(seed)
    x, y = source.x, source.y
    classify = source.task == "classification"

    unseen = None
    if classify and params.get("open_set"):
        classes = np.unique(y)
        seen_classes = classes[: len(classes) // 2]
        if len(seen_classes) < 2:
            raise DataError(f"open_set needs at least 4 classes, {name} has {len(classes)}")
        seen = np.isin(y, seen_classes)
        unseen = np.flatnonzero(~seen)
        x, y = x[seen], y[seen]

    rest, test = _split_indices(y, params["test_fraction"], seed, classify)
    train, val = _split_indices(y[rest], params["val_fraction"], seed, classify)
    train, val = rest[train], rest[val]
    if unseen is not None:  # the open-set test split is every sample of the unseen classes
        test_x, test_y = source.x[unseen], np.unique(source.y[unseen], return_inverse=True)[1]
    else:
        test_x, test_y = x[test], y[test]
    x_train, y_train = x[train], y[train]

    num_classes = int(y.max()) + 1 if classify else None
    if source.task == "segmentation":  # named classes count even when absent from these masks
        num_classes = len(source.class_names) if source.class_names else int(source.y.max()) + 1
    if classify:
        if params.get("imbalance", 1.0) < 1.0:
            keep = long_tail(y_train, params["imbalance"], rng)
            x_train, y_train = x_train[keep], y_train[keep]
        if params.get("label_noise", 0.0) > 0:
            y_train = corrupt_labels(y_train, params["label_noise"], params["noise_kind"], num_classes, rng)

    target_mean, target_std = 0.0, 1.0
    if source.task == "regression":
        if params.get("outliers", 0.0) > 0:
            y_train = y_train.copy()
            hit = rng.permutation(len(y_train))[: int(round(params["outliers"] * len(y_train)))]
            y_train[hit] += params["outlier_scale"] * y_train.std() * rng.standard_cauchy(len(hit))
        clean = y[train]  # scale by the clean targets so outliers do not squash the rest
        target_mean, target_std = float(clean.mean()) if center_targets else 0.0, float(clean.std() or 1.0)

    if source.image_shape is None:  # standardise tabular features on train statistics
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        std[std == 0] = 1.0
        x_train, x_val, test_x = (x_train - mean) / std, (x[val] - mean) / std, (test_x - mean) / std
    else:
        x_val = x[val]

    def split(features: np.ndarray, target: np.ndarray) -> Split:
        target = (target - target_mean) / target_std if source.task == "regression" else target
        return Split(torch.as_tensor(features, dtype=torch.float32),
                     torch.as_tensor(target, dtype=torch.float32 if source.task == "regression" else torch.int64))

    return Data(
        train=split(x_train, y_train),
        val=split(x_val, y[val]),
        test=split(test_x, test_y),
        task=source.task,
        num_classes=num_classes,
        in_features=int(np.prod(x.shape[1:])),
        image_shape=source.image_shape,
        class_counts=np.bincount(y_train.ravel(), minlength=num_classes).tolist() if num_classes else None,
        target_mean=target_mean,
        target_std=target_std,
        open_set=unseen is not None,
    )
