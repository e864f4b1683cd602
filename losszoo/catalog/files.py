"""Datasets read from a user's own files. Implementations: losszoo/data/sources.py.

A file dataset is read when its recipe is validated, so a missing file, column
or bad cell is a recipe error at ``file:line dataset.key``.
"""

from losszoo.catalog import Param, dataset
from losszoo.catalog.datasets import CLASSIFICATION, REGRESSION

_IMPL = "losszoo.data.sources"

ENTRIES = [
    dataset("csv", f"{_IMPL}:csv", family="file", task="from file",
            params=(
                Param("path", "", "the csv file, relative to the recipe", type="str"),
                Param("target", "", "name of the target column", type="str"),
                Param("task", "classification", "what the target is", type="str",
                      choices=("classification", "regression")),
            ) + CLASSIFICATION + REGRESSION[2:],
            summary="your own table: numeric feature columns and one target column"),
    dataset("npz", f"{_IMPL}:npz", family="file", task="from file",
            params=(
                Param("path", "", "the .npz file with arrays x and y, relative to the recipe", type="str"),
                Param("task", "classification", "what y is", type="str",
                      choices=("classification", "regression", "segmentation")),
            ) + CLASSIFICATION + REGRESSION[2:],
            summary="your own arrays: x (N, ...) features or images, y (N,) labels, values or (N, H, W) masks"),
]
