"""Datasets read from a user's own files. Implementations: losszoo/data/sources.py,
losszoo/data/tables.py (csv, parquet) and losszoo/data/images.py (image folders).

A file dataset is read when its recipe is validated, so a missing file, column
or bad cell is a recipe error at ``file:line dataset.key``.
"""

from losszoo.catalog import Param, dataset
from losszoo.catalog.datasets import CLASSIFICATION, CLASSIFICATION_RULES, REGRESSION

_IMPL = "losszoo.data.sources"

_TABLE = (
    Param("path", "", "the file, relative to the recipe", type="str", example="table.csv"),
    Param("target", "", "name of the target column", type="str", example="label"),
    Param("task", "classification", "what the target is: class labels (numbers or text) or values", type="str",
          choices=("classification", "regression")),
    Param("features", [], "the columns to use as features (default: every column but the target)", type="strs"),
    Param("drop", [], "columns to leave out (ids, free text, leaks of the target)", type="strs"),
    Param("categorical", [], "text columns to one-hot encode, one 0/1 feature per distinct value", type="strs",
          short="cat"),
)

ENTRIES = [
    dataset("csv", f"{_IMPL}:csv", family="file", task=None, rules=CLASSIFICATION_RULES,
            params=_TABLE + CLASSIFICATION + REGRESSION[2:],
            summary="your own table: feature columns (numbers, or text with categorical:) and a target column"),
    dataset("parquet", f"{_IMPL}:parquet", family="file", task=None, rules=CLASSIFICATION_RULES,
            params=_TABLE + CLASSIFICATION + REGRESSION[2:],
            summary="your own parquet table, read like csv (needs pip install 'losszoo[parquet]')"),
    dataset("npz", f"{_IMPL}:npz", family="file", task=None, rules=CLASSIFICATION_RULES,
            params=(
                Param("path", "", "the .npz file with arrays x and y, relative to the recipe", type="str",
                      example="arrays.npz"),
                Param("task", "classification", "what y is", type="str",
                      choices=("classification", "regression", "segmentation")),
            ) + CLASSIFICATION + REGRESSION[2:],
            summary="your own arrays: x (N, ...) features or images, y (N,) labels, values or (N, H, W) masks"),
    dataset("image_folder", f"{_IMPL}:image_folder", family="file", task=None, images=True,
            # The split-size rules would judge fractions that a folder with train/ val/ test/ ignores.
            rules=CLASSIFICATION_RULES[2:],
            params=(
                Param("path", "", "the folder: one sub-folder of images per class (or train/ val/ test/ "
                      "holding those), relative to the recipe", type="str", example="photos"),
                Param("size", [64, 64], "height and width every image is resized to, in pixels", type="ints",
                      ge=1, le=4096),
                Param("channels", 3, "1: grey; 3: RGB", type="int", choices=(1, 3)),
                Param("task", "classification", "classification: a class per sub-folder; segmentation: "
                      "images/ and masks/ sub-folders, a mask of class indices per image", type="str",
                      choices=("classification", "segmentation")),
            ) + CLASSIFICATION,
            summary="your own images: a folder per class, read with Pillow, resized, cached beside the data"),
]
