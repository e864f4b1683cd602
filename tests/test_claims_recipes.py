"""The recipes behind docs/eight-claims.md: each one validates, and the doc names
each one (tests/test_recipes.py trains only recipes/*.yaml, not this folder)."""

from pathlib import Path

import pytest

from losszoo.recipe.load import load_recipe

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = sorted((ROOT / "recipes" / "claims").glob("*.yaml"))


def test_there_is_a_recipe_per_claim_folder():
    assert len(CLAIMS) >= 6


@pytest.mark.parametrize("recipe", CLAIMS, ids=lambda p: p.stem)
def test_claim_recipe_validates(recipe: Path) -> None:
    load_recipe(recipe)


@pytest.mark.parametrize("recipe", CLAIMS, ids=lambda p: p.stem)
def test_claim_recipe_is_in_the_doc(recipe: Path) -> None:
    doc = (ROOT / "docs" / "eight-claims.md").read_text()
    assert f"recipes/claims/{recipe.name}" in doc
