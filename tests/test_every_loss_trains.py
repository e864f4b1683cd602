"""Every registered loss trains end to end through a recipe: two epochs on a
dataset of its task. A loss added to the catalogue is trained here the day it
lands."""

import pytest

import losszoo
from losszoo.inputs import INPUT_KINDS

DATASET_OF_TASK = {
    "classification": "iris",
    "regression": "diabetes",
    "segmentation": {"name": "shapes", "n_samples": 40, "size": 16},
    "multilabel": {"name": "multilabel", "n_samples": 120},
    "boxes": {"name": "shapes_boxes", "n_samples": 60, "size": 16},
}
MODEL_OF_TASK = {"classification": {"name": "mlp", "hidden": [16], "embedding_dim": 8},
                 "regression": {"name": "mlp", "hidden": [16]},
                 "segmentation": {"name": "unet", "channels": [4, 8]},
                 "multilabel": {"name": "mlp", "hidden": [16]},
                 "boxes": {"name": "cnn", "channels": [4, 8]}}


@pytest.mark.slow
@pytest.mark.parametrize("name", losszoo.list_losses())
def test_loss_trains_in_a_recipe(name, runs):
    task = INPUT_KINDS[losszoo.loss_spec(name).input].tasks[0]
    results = losszoo.train({
        "experiment": "every-loss", "dataset": DATASET_OF_TASK[task], "model": MODEL_OF_TASK[task],
        "loss": name, "train": {"epochs": 2, "batch_size": 16},
    }, runs_dir=runs)
    (result,) = results
    assert result["status"] == "completed", result["error"]
    assert result["metrics"]["test"], result
