"""sweep: grids over any recipe value, expanded and checked like plain recipes."""

import textwrap

import pytest

from losszoo.errors import RecipeError
from losszoo.recipe.load import load_recipe


def write(tmp_path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def problems(path) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    return caught.value.problems


def test_the_grid_is_datasets_times_losses_times_points_times_seeds(tmp_path):
    recipe = load_recipe(write(tmp_path, """
        datasets: [iris, wine]
        losses: [cross_entropy, {name: focal, gamma: [0.5, 2.0]}]
        seeds: [0, 1]
        sweep:
          train.optimizer.lr: [1.0e-3, 3.0e-3]
          model.hidden: [[32], [64, 64]]
    """))
    # 2 datasets x (1 + 2 focal variants) x 4 points x 2 seeds
    assert len(recipe.runs) == 2 * 3 * 4 * 2
    assert len({r.run_id for r in recipe.runs}) == len(recipe.runs)
    lrs = {r.config["train"]["optimizer"]["lr"] for r in recipe.runs}
    hidden = {tuple(r.config["model"]["hidden"]) for r in recipe.runs}
    assert lrs == {1e-3, 3e-3} and hidden == {(32,), (64, 64)}
    gammas = {r.config["loss"]["gamma"] for r in recipe.runs if r.config["loss"]["name"] == "focal"}
    assert gammas == {0.5, 2.0}
    assert {r.label for r in recipe.runs} == {"cross_entropy", "focal(g=0.5)", "focal(g=2)"}
    # datasets x losses x points x seeds: the first dataset's runs come first, seeds last
    assert [r.config["dataset"]["name"] for r in recipe.runs[:24]] == ["iris"] * 24
    assert [r.seed for r in recipe.runs[:2]] == [0, 1]


def test_the_model_itself_can_be_swept(tmp_path):
    recipe = load_recipe(write(tmp_path, """
        dataset: digits
        loss: cross_entropy
        sweep:
          model: [mlp, {name: resnet, skip: false, channels: [4, 8], blocks: 1}]
    """))
    models = [r.config["model"] for r in recipe.runs]
    assert [m["name"] for m in models] == ["mlp", "resnet"]
    assert models[1]["skip"] is False and models[0]["hidden"] == [256, 256]


def test_loss_key_sweeps_every_loss(tmp_path):
    recipe = load_recipe(write(tmp_path, """
        dataset: digits
        model: {name: mlp, hidden: [16], embedding_dim: 8}
        losses: [arcface, cosface]
        sweep: {loss.margin: [0.2, 0.4]}
    """))
    assert sorted((r.config["loss"]["name"], r.config["loss"]["margin"]) for r in recipe.runs) == [
        ("arcface", 0.2), ("arcface", 0.4), ("cosface", 0.2), ("cosface", 0.4)]


def test_each_bad_value_is_reported_at_its_own_sweep_line(tmp_path):
    found = problems(write(tmp_path, """
        dataset: iris
        loss: cross_entropy
        sweep:
          train.optimizer.lr: [1.0e-3, -1.0, "fast"]
          train.batch_size: [32, 0]
    """))
    text = "\n".join(found)
    assert "recipe.yaml:4 sweep.train.optimizer.lr[1]: must be > 0" in text
    assert "recipe.yaml:4 sweep.train.optimizer.lr[2]: must be a number" in text
    assert "recipe.yaml:5 sweep.train.batch_size[1]: must be >= 1" in text


@pytest.mark.parametrize(("sweep", "words"), [
    ("{train.epoch: [1, 2]}", "no such train key; did you mean 'train.epochs'?"),
    ("{optimizer.lr: [0.1]}", "sweeps train.<key>, model, model.<key>, dataset.<key> or loss.<key>"),
    ("{train.epochs: []}", "must be a non-empty list of values to try"),
    ("{train.epochs: 5}", "must be a non-empty list of values to try"),
    ("[train.epochs]", "must be a mapping of dotted keys to lists of values"),
])
def test_a_bad_sweep_key_or_list_is_an_error_at_its_line(tmp_path, sweep, words):
    found = problems(write(tmp_path, f"dataset: iris\nloss: cross_entropy\nsweep: {sweep}\n"))
    assert any(p.startswith(f"{tmp_path / 'recipe.yaml'}:3 sweep") and words in p for p in found), found


def test_a_loss_key_a_loss_lacks_names_that_loss(tmp_path):
    found = problems(write(tmp_path, """
        dataset: iris
        losses: [focal, cross_entropy]
        sweep: {loss.gamma: [1.0, 2.0]}
    """))
    assert any("sweep.loss.gamma[0]" in p and "loss 'cross_entropy'" in p for p in found), found


def test_an_empty_per_loss_list_is_an_error(tmp_path):
    found = problems(write(tmp_path, "dataset: iris\nloss: {name: focal, gamma: []}\n"))
    assert any("loss.gamma: an empty list sweeps nothing" in p for p in found), found


def test_a_per_loss_value_out_of_bounds_points_at_its_index(tmp_path):
    found = problems(write(tmp_path, "dataset: iris\nloss: {name: focal, gamma: [1.0, -2.0]}\n"))
    assert found == [f"{tmp_path / 'recipe.yaml'}:2 loss.gamma[1]: must be >= 0, got -2.0"]


def test_a_list_valued_hyperparameter_is_a_value_not_a_sweep(tmp_path):
    recipe = load_recipe(write(tmp_path, "dataset: iris\nloss: {name: cross_entropy, weight: [1.0, 2.0, 1.0]}\n"))
    assert len(recipe.runs) == 1 and recipe.runs[0].config["loss"]["weight"] == [1.0, 2.0, 1.0]
    swept = load_recipe(write(tmp_path, "dataset: iris\nloss: {name: cross_entropy, weight: [[1, 2, 1], [1, 1, 1]]}\n"))
    assert [r.config["loss"]["weight"] for r in swept.runs] == [[1.0, 2.0, 1.0], [1.0, 1.0, 1.0]]


def test_a_huge_grid_is_refused(tmp_path):
    values = "[" + ", ".join(str(i) for i in range(1, 120)) + "]"
    found = problems(write(tmp_path, f"dataset: iris\nloss: cross_entropy\nsweep:\n  train.epochs: {values}\n"
                                     f"  train.batch_size: {values}\n"))
    assert any("is a grid of 14,161 points; at most 10,000" in p for p in found), found


def test_dry_run_shows_each_sweep_point_and_each_study_s_point(tmp_path):
    from typer.testing import CliRunner

    from losszoo.cli.main import app

    swept = write(tmp_path, "dataset: iris\nlosses: [focal]\nseeds: [0]\nsweep: {train.optimizer.lr: [0.001, 0.003]}\n")
    outcome = CliRunner().invoke(app, ["train", str(swept), "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert outcome.exit_code == 0, outcome.output
    assert "optimizer.lr=0.001" in outcome.stdout and "optimizer.lr=0.003" in outcome.stdout
    tuned = write(tmp_path, "dataset: iris\nlosses: [focal]\nsweep: {train.epochs: [1, 2]}\ntune: {trials: 3}\n")
    outcome = CliRunner().invoke(app, ["train", str(tuned), "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert outcome.exit_code == 0, outcome.output
    assert "epochs=1" in outcome.stdout and "epochs=2" in outcome.stdout  # two studies told apart


def test_two_sweep_points_or_two_losses_that_are_one_run_are_named_where_they_are(tmp_path):
    swept = write(tmp_path, """
        dataset: iris
        losses: [focal]
        sweep: {model: [mlp, mlp]}
        """)
    (problem,) = problems(swept)
    assert ":3 sweep: points 1 and 2 of the sweep give the same run (focal)" in problem
    listed = write(tmp_path, """
        dataset: iris
        losses: [arcface, {name: arcface, scale: 64}]
        """)
    (problem,) = problems(listed)
    assert ":2 losses: " in problem and "are the same run once defaults are filled in" in problem
