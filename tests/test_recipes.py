"""Every example recipe validates and trains end to end on a shrunken budget:
one seed, one epoch (the README runs them in full)."""

from pathlib import Path

import pytest
import yaml

import losszoo
from losszoo.recipe.load import load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


def test_there_are_example_recipes():
    assert len(RECIPES) >= 4


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_trains_on_a_small_budget(recipe: Path, runs: Path) -> None:
    plugins = load_recipe(recipe).plugins  # validates the full recipe first
    one_seed = "seed=0" if "\nseed:" in recipe.read_text() else "seeds=[0]"
    results = losszoo.train(recipe, [one_seed, "train.epochs=1"], runs_dir=runs)
    assert results, "no runs"
    for result in results:
        assert result["status"] == "completed", (result["label"], result["error"])
        assert result["metrics"]["test"], result["label"]
    declared = yaml.safe_load(recipe.read_text()).get("plugins") or []
    assert len(plugins) == len(declared)  # every plugin the recipe names was loaded, none invented
