"""Runs know their inputs: a user's file, an image folder or a plugin that changed means a new run,
the old one stays on disk, and compare says the experiment holds several versions of that input.
And a user's image folder with its own train/ val/ test/ split trains end to end."""

import textwrap

import numpy as np
import pytest

import losszoo
from losszoo.comparison.load import load
from losszoo.recipe.load import load_recipe
from losszoo.registry import LOSSES
from losszoo.training.store import iter_results

PIL = pytest.importorskip("PIL.Image")


def table(path, rows: int = 40, shift: float = 0.0) -> None:
    rng = np.random.default_rng(0)
    lines = ["a,b,label"] + [f"{rng.normal() + shift:.4f},{rng.normal():.4f},{i % 2}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_an_edited_csv_is_a_new_run_and_compare_says_so(tmp_path):
    table(tmp_path / "data.csv")
    recipe = {"experiment": "csv", "dataset": {"name": "csv", "path": str(tmp_path / "data.csv"), "target": "label"},
              "loss": "cross_entropy", "train": {"epochs": 1}}
    first = losszoo.train(recipe, runs_dir=tmp_path / "runs")
    table(tmp_path / "data.csv", shift=3.0)  # the same columns, other numbers
    second = losszoo.train(recipe, runs_dir=tmp_path / "runs")
    assert first[0]["run_id"] != second[0]["run_id"]
    assert first[0]["config"]["inputs"]["dataset.path"] != second[0]["config"]["inputs"]["dataset.path"]
    results, _ = iter_results(tmp_path / "runs", ["csv"])
    assert len(results) == 2  # the old run stays
    comparison = load(tmp_path / "runs", ["csv"]).comparison
    assert len(comparison.rows) == 2
    assert any("versions of dataset.path" in w for w in comparison.warnings), comparison.warnings


def test_an_edited_plugin_is_a_new_run(tmp_path):
    plugin = tmp_path / "identity_plugin.py"

    def write(scale: float) -> None:
        plugin.write_text(textwrap.dedent(f"""
            import torch.nn.functional as F
            import losszoo

            @losszoo.register_loss("identity_plugin_loss", input="logits")
            def identity_plugin_loss(logits, labels):
                return {scale} * F.cross_entropy(logits, labels)
        """))

    write(1.0)
    recipe = {"dataset": "iris", "loss": "identity_plugin_loss", "plugins": [str(plugin)]}
    try:
        before = load_recipe(recipe).runs[0]
        LOSSES.remove("identity_plugin_loss")
        import losszoo.plugins as plugins

        plugins._loaded.clear()
        write(2.0)
        after = load_recipe(recipe).runs[0]
    finally:
        LOSSES.remove("identity_plugin_loss")
    assert before.config["inputs"]["loss.identity_plugin_loss"] != after.config["inputs"]["loss.identity_plugin_loss"]
    assert before.run_id != after.run_id
    assert load_recipe({"dataset": "iris", "loss": "cross_entropy"}).runs[0].config["inputs"] == {}  # built-ins


def folder(root, per_split=(6, 2, 2)) -> None:
    """Red squares and blue circles, in train/ val/ test/."""
    for split, count in zip(("train", "val", "test"), per_split, strict=True):
        for name, colour in (("square", (220, 30, 30)), ("circle", (30, 30, 220))):
            for i in range(count):
                pixels = np.full((12, 12, 3), 255, np.uint8)
                if name == "square":
                    pixels[3:9, 3:9] = colour
                else:
                    yy, xx = np.mgrid[:12, :12]
                    pixels[(yy - 6) ** 2 + (xx - 6) ** 2 < 10] = colour
                (root / split / name).mkdir(parents=True, exist_ok=True)
                PIL.fromarray(pixels).save(root / split / name / f"{i}.png")


def test_an_image_folder_with_its_own_split_trains_and_a_changed_image_is_a_new_run(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder(tmp_path / "photos")
    recipe = {"experiment": "photos", "dataset": {"name": "image_folder", "path": str(tmp_path / "photos"),
                                                  "size": [12, 12]},
              "model": {"name": "cnn", "channels": [4, 8]}, "loss": "cross_entropy", "seeds": [0, 1],
              "train": {"epochs": 3, "batch_size": 4}}
    results = losszoo.train(recipe, runs_dir=tmp_path / "runs")
    assert [r["status"] for r in results] == ["completed", "completed"]
    assert results[0]["provenance"]["split_sizes"] == {"train": 12, "val": 4, "test": 4}
    assert results[0]["provenance"]["class_names"] == ["circle", "square"]
    PIL.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "photos" / "train" / "circle" / "0.png")
    changed = load_recipe(recipe).runs[0]
    assert changed.run_id != results[0]["run_id"]
