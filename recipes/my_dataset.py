"""A user's own dataset for losszoo: copy this file and generate or read your data.

recipes/custom-data.yaml names this file under `plugins:` (a path relative to
the recipe); the decorator below then makes `bars` usable like any built-in
dataset. The contract, in full, is in docs/your-data.md:

- the function is called as ``fn(**params, base_dir=Path)``: its declared
  hyperparameters, resolved with their defaults, and the recipe's folder (for
  paths relative to it); ``**_`` takes whatever else losszoo passes;
- it returns a ``losszoo.Dataset``: ``x`` (N, F) features or (N, C, H, W)
  images (float32, or uint8 pixels that the trainer scales), ``y`` (N,) int
  labels 0..K-1 (or float values, or (N, H, W) masks), the ``task``, and
  optionally ``class_names``, ``image_shape``, ``split`` and ``warnings``;
- it runs when the recipe is checked, so whatever it raises, and anything it
  returns that breaks the contract (a tuple, mismatched lengths, float
  labels), is a recipe error at `dataset.name` before any run starts. Raise
  ``losszoo.DataError(message, key)`` for a bad hyperparameter: the error
  then points at that key's line.
"""

import numpy as np

import losszoo
from losszoo import Param

# The split fractions and the train-only modifiers (label_noise, imbalance,
# open_set) that every built-in classification set takes, and the rules that
# check them against the data's size. Declared once in losszoo's catalogue.
from losszoo.catalog.datasets import CLASSIFICATION, CLASSIFICATION_RULES

KINDS = ("horizontal", "vertical", "diagonal", "anti_diagonal")


@losszoo.register_dataset(
    "bars",
    task="classification",  # what y is: fixes which losses and metrics fit
    images=True,  # x holds images: cnn, resnet and image models may read it
    family="custom",
    summary="grey 16x16 images of one bar each: horizontal, vertical or either diagonal",
    params=[
        Param("n_samples", 800, "number of images generated", type="int", ge=20, le=100_000),
        Param("noise", 40.0, "standard deviation of the pixel noise, in grey levels (0..255)", ge=0.0),
        Param("random_state", 0, "seed of the generator (the run seed fixes the split, not the data)", type="int",
              ge=0),
        *CLASSIFICATION,
    ],
    rules=CLASSIFICATION_RULES,
)
def bars(n_samples: int, noise: float, random_state: int, **_) -> losszoo.Dataset:
    rng = np.random.default_rng(random_state)
    size = 16
    y = np.arange(n_samples) % len(KINDS)
    offset = rng.integers(-4, 5, n_samples)  # where the bar crosses the image
    rows, cols = np.mgrid[:size, :size]
    distance = np.stack([
        np.abs(rows[None] - (size // 2 + offset[:, None, None])),  # horizontal
        np.abs(cols[None] - (size // 2 + offset[:, None, None])),  # vertical
        np.abs(rows[None] - cols[None] - offset[:, None, None]) / np.sqrt(2),  # diagonal
        np.abs(rows[None] + cols[None] - size + 1 - offset[:, None, None]) / np.sqrt(2),  # anti-diagonal
    ])[y, np.arange(n_samples)]
    pixels = 220.0 * (distance < 1.2) + 20.0 + noise * rng.standard_normal((n_samples, size, size))
    images = pixels.clip(0, 255).astype(np.uint8)[:, None]  # (N, 1, 16, 16): one grey channel
    return losszoo.Dataset(x=images, y=y.astype(np.int64), task="classification", class_names=list(KINDS))
