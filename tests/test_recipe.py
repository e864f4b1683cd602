"""Recipes: every bad input becomes a RecipeError that names the file, the
line, the dotted key and the fix; good recipes expand into resolved runs."""

import textwrap
from pathlib import Path

import pytest

from losszoo import RecipeError
from losszoo.recipe.load import load_recipe


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems_of(path: Path, overrides=()) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(path, overrides)
    problems = info.value.problems
    assert problems, "a RecipeError must carry at least one problem"
    assert str(info.value) == "\n".join(problems)
    return problems


def one_problem(path: Path, overrides=()) -> str:
    problems = problems_of(path, overrides)
    assert len(problems) == 1, problems
    return problems[0]


# --- reading -------------------------------------------------------------------------------------


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses: [cross_entropy, focal
        train: {epochs: 3}
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:3")
    assert "malformed YAML" in problem


def test_duplicate_key_is_malformed(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        loss: cross_entropy
        dataset: wine
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:3")
    assert "duplicate key 'dataset'" in problem


def test_missing_recipe_file_is_named_with_a_close_match(tmp_path):
    write(tmp_path, "dataset: iris\nloss: cross_entropy\n", name="digits.yaml")
    problem = one_problem(tmp_path / "digit.yaml")
    assert str(tmp_path / "digit.yaml") in problem
    assert "no such recipe file" in problem
    assert "did you mean" in problem and "digits.yaml" in problem


def test_empty_recipe(tmp_path):
    problem = one_problem(write(tmp_path, "# nothing yet\n"))
    assert "empty" in problem and "dataset:" in problem


def test_recipe_that_is_not_a_mapping(tmp_path):
    problem = one_problem(write(tmp_path, "- iris\n- cross_entropy\n"))
    assert problem.startswith(f"{tmp_path / 'recipe.yaml'}:1")
    assert "mapping" in problem


# --- unknown names and keys ----------------------------------------------------------------------


def test_unknown_names_each_get_a_line_and_a_suggestion(tmp_path):
    path = write(tmp_path, """
        dataset: irs
        model: mlpp
        losses:
          - cross_entropy
          - arcfce
        train:
          optimizer: {name: adamm}
    """)
    problems = problems_of(path)
    assert len(problems) == 4, problems
    by_key = {p.split(" ", 2)[1].rstrip(":"): p for p in problems}
    assert by_key["dataset"].startswith(f"{path}:1 dataset:")
    assert "unknown dataset 'irs'" in by_key["dataset"] and "did you mean 'iris'" in by_key["dataset"]
    assert by_key["model"].startswith(f"{path}:2 model:")
    assert "did you mean 'mlp'" in by_key["model"]
    assert by_key["losses[1]"].startswith(f"{path}:5 losses[1]:")
    assert "unknown loss 'arcfce'" in by_key["losses[1]"] and "'arcface'" in by_key["losses[1]"]
    assert by_key["train.optimizer.name"].startswith(f"{path}:7 train.optimizer.name:")
    assert "did you mean 'adam'" in by_key["train.optimizer.name"]


def test_unknown_loss_name_inside_a_mapping_points_at_its_name(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses:
          - {name: focl, gamma: 1.0}
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:3 losses[0].name:")
    assert "did you mean 'focal'" in problem


def test_misspelt_top_level_keys(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        loss: cross_entropy
        sedes: [0, 1]
        tran:
          epochs: 3
    """)
    problems = problems_of(path)
    assert f"{path}:3 sedes: unknown key; did you mean 'seeds'?" in problems[0]
    assert f"{path}:4 tran: unknown key; did you mean 'train'?" in problems[1]
    assert len(problems) == 2


def test_misspelt_train_key(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        loss: cross_entropy
        train:
          epochs: 3
          batchsize: 16
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:5 train.batchsize: unknown key")
    assert "did you mean 'batch_size'" in problem


def test_misspelt_nested_train_key(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        loss: cross_entropy
        train:
          optimizer: {name: sgd, momentun: 0.5}
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:4 train.optimizer.momentun: unknown key")
    assert "did you mean 'momentum'" in problem


def test_misspelt_loss_hyperparameter(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses:
          - cross_entropy
          - name: focal
            gama: 2.0
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:5 losses[1].gama:")
    assert "unknown hyperparameter" in problem and "did you mean 'gamma'" in problem


def test_mapping_without_name(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses:
          - {gamma: 2.0}
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:3 losses[0]:")
    assert "name:" in problem


def test_missing_dataset_and_loss(tmp_path):
    problems = problems_of(write(tmp_path, "seeds: [0]\n"))
    text = "\n".join(problems)
    assert "needs `dataset:`" in text and "needs `loss:` or `losses:`" in text


# --- types and bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ("batch_size: many", "train.batch_size", "must be an integer, got 'many'"),
        ("epochs: '3'", "train.epochs", "must be an integer, got '3'"),
        ("epochs: 3.0", "train.epochs", "must be an integer"),
        ("epochs: true", "train.epochs", "must be an integer, got true"),
        ("epochs: 0", "train.epochs", "must be >= 1, got 0"),
        ("optimizer: {name: adam, lr: '1e-3'}", "train.optimizer.lr", "must be a number, got '1e-3'"),
        ("optimizer: {name: adam, lr: -1.0}", "train.optimizer.lr", "must be > 0"),
        ("scheduler: cosin", "train.scheduler.name", "did you mean 'cosine'"),
        ("device: gpu", "train.device", "must be auto, cpu, cuda"),
    ],
)
def test_wrong_train_values(tmp_path, line, key, words):
    path = write(tmp_path, f"dataset: iris\nloss: cross_entropy\ntrain:\n  {line}\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:4 {key}:"), problem
    assert words in problem


def test_string_for_a_float_hyperparameter(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses:
          - name: focal
            gamma: high
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:4 losses[0].gamma:")
    assert "must be a number, got 'high'" in problem


def test_out_of_range_hyperparameter_names_index_and_line(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses:
          - cross_entropy
          - {name: focal, gamma: 2.0}
          - name: arcface
            scale: 30.0
            margin: -0.5
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:7 losses[2].margin: must be ")
    assert "-0.5" in problem


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses:
          - {name: focal, gamma: -1.0}
          - {name: arcface, margin: 9.0}
        seeds: [0, -1]
        train: {epochs: 0, batch_size: many}
    """)
    problems = problems_of(path)
    keys = [p.split(" ", 2)[1].rstrip(":") for p in problems]
    assert {"losses[0].gamma", "losses[1].margin", "seeds[1]", "train.epochs", "train.batch_size"} <= set(keys)


def test_seeds_listed_twice(tmp_path):
    problem = one_problem(write(tmp_path, "dataset: iris\nloss: cross_entropy\nseeds: [0, 1, 0]\n"))
    assert "seeds" in problem and "twice" in problem


# --- cross-field rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(("dataset", "loss", "task"), [("digits", "mse", "classification"),
                                                      ("diabetes", "cross_entropy", "regression")])
def test_loss_that_cannot_serve_the_task_names_both(tmp_path, dataset, loss, task):
    path = write(tmp_path, f"dataset: {dataset}\nlosses:\n  - {loss}\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:3 losses[0]:")
    assert repr(loss) in problem and repr(dataset) in problem
    assert task in problem


def test_label_noise_on_regression_is_an_error(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{i},{i * 0.5}\n" for i in range(20)))
    path = write(tmp_path, "dataset: {name: csv, path: d.csv, target: y, task: regression, label_noise: 0.2}\n"
                           "loss: mse\n")
    problem = one_problem(path)
    assert "label_noise" in problem and "classification" in problem


@pytest.mark.parametrize(("one", "many"), [("loss: focal", "losses: [focal]"), ("seed: 0", "seeds: [0, 1]"),
                                           ("dataset: iris", "datasets: [iris]")])
def test_singular_and_plural_together_is_an_error(tmp_path, one, many):
    base = {"loss": "loss: cross_entropy", "seed": "seed: 0", "dataset": "dataset: iris"}
    key = one.split(":")[0]
    lines = [v for k, v in base.items() if k != key] + [one, many]
    path = write(tmp_path, "\n".join(lines) + "\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:4 {many.split(':')[0]}:")
    assert f"either `{key}:` or `{many.split(':')[0]}:`" in problem


def test_singular_and_plural_forms_are_equivalent(tmp_path):
    a = load_recipe(write(tmp_path, "dataset: iris\nloss: focal\nseed: 3\n", "a.yaml"))
    b = load_recipe(write(tmp_path, "datasets: [iris]\nlosses: [focal]\nseeds: [3]\n", "b.yaml"))
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]
    assert a.runs[0].seed == 3


# --- --set ---------------------------------------------------------------------------------------


def test_set_on_a_misspelt_key_suggests_the_right_one(tmp_path):
    path = write(tmp_path, "dataset: iris\nlosses: [cross_entropy]\n")
    problem = one_problem(path, ["train.epoch=3"])
    assert problem.startswith("--set train.epoch:")
    assert "unknown key" in problem and "did you mean 'epochs'" in problem


def test_set_on_a_misspelt_top_level_key(tmp_path):
    path = write(tmp_path, "dataset: iris\nlosses: [cross_entropy]\n")
    problem = one_problem(path, ["trian.epochs=3"])
    assert "--set trian.epochs=3" in problem and "did you mean 'train'" in problem


def test_set_on_a_list_item_that_does_not_exist(tmp_path):
    path = write(tmp_path, "dataset: iris\nlosses: [cross_entropy]\n")
    problem = one_problem(path, ["losses[3].gamma=1"])
    assert "losses[3]" in problem and "does not exist" in problem


def test_set_without_equals(tmp_path):
    path = write(tmp_path, "dataset: iris\nlosses: [cross_entropy]\n")
    assert "key=value" in one_problem(path, ["train.epochs"])


def test_set_with_a_wrong_type_is_reported_at_set(tmp_path):
    path = write(tmp_path, "dataset: iris\nloss: cross_entropy\ntrain: {epochs: 3}\n")
    problem = one_problem(path, ["train.epochs=many"])
    assert problem.startswith("--set train.epochs: must be an integer, got 'many'")


def test_set_overrides_train_keys(tmp_path):
    path = write(tmp_path, "dataset: iris\nloss: cross_entropy\ntrain: {epochs: 30}\n")
    recipe = load_recipe(path, ["train.epochs=5", "train.optimizer.lr=0.01"])
    train = recipe.runs[0].config["train"]
    assert train["epochs"] == 5
    assert train["optimizer"]["lr"] == 0.01
    assert recipe.runs[0].run_id != load_recipe(path).runs[0].run_id


def test_set_on_a_bare_list_item_turns_it_into_a_mapping(tmp_path):
    path = write(tmp_path, "dataset: iris\nlosses:\n  - cross_entropy\n  - focal\n")
    recipe = load_recipe(path, ["losses[1].gamma=1.5"])
    focal = [r for r in recipe.runs if r.config["loss"]["name"] == "focal"]
    assert len(focal) == 1
    assert focal[0].config["loss"]["gamma"] == 1.5
    assert focal[0].label == "focal(g=1.5)"
    plain = [r for r in recipe.runs if r.config["loss"]["name"] == "cross_entropy"]
    assert plain[0].label == "cross_entropy"


def test_set_a_list_and_a_key_of_a_bare_dataset(tmp_path):
    path = write(tmp_path, "dataset: iris\nloss: focal\n")
    recipe = load_recipe(path, ["seeds=[0, 1, 2]", "dataset.label_noise=0.2", "loss.gamma=1"])
    assert [r.seed for r in recipe.runs] == [0, 1, 2]
    assert all(r.config["dataset"]["label_noise"] == 0.2 for r in recipe.runs)
    assert recipe.runs[0].label == "focal(g=1)"


def test_set_out_of_range_value_is_reported_at_set(tmp_path):
    path = write(tmp_path, "dataset: iris\nlosses:\n  - cross_entropy\n  - focal\n")
    problem = one_problem(path, ["losses[1].gamma=-2"])
    assert problem.startswith("--set losses[1].gamma: must be >= 0")


def test_set_does_not_change_the_file(tmp_path):
    path = write(tmp_path, "dataset: iris\nloss: cross_entropy\ntrain: {epochs: 30}\n")
    before = path.read_text()
    load_recipe(path, ["train.epochs=5"])
    assert path.read_text() == before


# --- expansion and resolution --------------------------------------------------------------------


def test_datasets_times_losses_times_seeds(tmp_path):
    path = write(tmp_path, """
        datasets: [iris, wine]
        losses: [cross_entropy, focal, {name: arcface, margin: 0.3}]
        seeds: [0, 1]
    """)
    recipe = load_recipe(path)
    assert len(recipe.runs) == 2 * 3 * 2
    assert len({r.run_id for r in recipe.runs}) == 12
    combos = {(r.config["dataset"]["name"], r.label, r.seed) for r in recipe.runs}
    assert ("wine", "arcface(m=0.3)", 1) in combos and ("iris", "cross_entropy", 0) in combos
    assert recipe.experiment == "recipe"  # the file's stem


def test_experiment_name_from_the_recipe(tmp_path):
    recipe = load_recipe(write(tmp_path, "experiment: my-exp.1\ndataset: iris\nloss: focal\n"))
    assert recipe.experiment == "my-exp.1"
    assert recipe.runs[0].experiment == "my-exp.1"


def test_bad_experiment_name(tmp_path):
    problem = one_problem(write(tmp_path, "experiment: ../etc\ndataset: iris\nloss: focal\n"))
    assert problem.startswith(f"{tmp_path / 'recipe.yaml'}:1 experiment:")


def _hash(tmp_path, loss: str, name: str) -> str:
    return load_recipe(write(tmp_path, f"dataset: iris\nlosses:\n  - {loss}\n", name)).runs[0].run_id


def test_defaults_are_filled_so_equal_configs_share_a_hash(tmp_path):
    bare = _hash(tmp_path, "arcface", "a.yaml")
    explicit = _hash(tmp_path, "{name: arcface, margin: 0.5}", "b.yaml")
    other = _hash(tmp_path, "{name: arcface, margin: 0.3}", "c.yaml")
    assert bare == explicit
    assert other != bare


def test_integer_written_for_a_float_default_shares_the_hash(tmp_path):
    # arcface's scale defaults to 64.0; `scale: 64` is the same run and must not retrain.
    assert _hash(tmp_path, "{name: arcface, scale: 64}", "a.yaml") == _hash(tmp_path, "arcface", "b.yaml")


def test_the_experiment_name_and_device_do_not_change_the_hash(tmp_path):
    a = load_recipe(write(tmp_path, "experiment: one\ndataset: iris\nloss: focal\n", "a.yaml"))
    b = load_recipe(write(tmp_path, "experiment: two\ndataset: iris\nloss: focal\ntrain: {device: cpu}\n",
                          "b.yaml"))
    assert a.runs[0].run_id == b.runs[0].run_id


def test_resolved_config_holds_every_default(tmp_path):
    run = load_recipe(write(tmp_path, "dataset: iris\nloss: arcface\n")).runs[0]
    config = run.config
    assert config["loss"] == {"name": "arcface", "margin": 0.5, "scale": 64.0, "easy_margin": False}
    assert config["dataset"]["test_fraction"] == 0.2
    assert config["model"]["name"] == "mlp"
    assert config["train"]["epochs"] == 30 and config["train"]["optimizer"]["name"] == "adamw"
    assert config["seed"] == 0
    assert "accuracy" in config["metrics"] and "map_at_r" in config["metrics"]
    assert config["select_by"] == "val.accuracy"


@pytest.mark.parametrize(
    ("loss", "label"),
    [
        ("arcface", "arcface"),
        ("{name: arcface, margin: 0.3, scale: 16}", "arcface(m=0.3,s=16)"),
        ("{name: arcface, margin: 0.3, scale: 16.0}", "arcface(m=0.3,s=16)"),
        ("{name: focal, gamma: 0.5}", "focal(g=0.5)"),
    ],
)
def test_labels(tmp_path, loss, label):
    run = load_recipe(write(tmp_path, f"dataset: iris\nlosses:\n  - {loss}\n")).runs[0]
    assert run.label == label
    assert run.config["label"] == label


@pytest.mark.parametrize("text", ["1e-3", "1.0e-3", "0.001", "1E-3"])
def test_lr_in_e_notation_is_a_number(tmp_path, text):
    path = write(tmp_path, f"dataset: iris\nloss: focal\ntrain:\n  optimizer: {{name: adam, lr: {text}}}\n")
    lr = load_recipe(path).runs[0].config["train"]["optimizer"]["lr"]
    assert isinstance(lr, float)
    assert lr == pytest.approx(1e-3)


def test_set_reads_e_notation_as_a_number(tmp_path):
    path = write(tmp_path, "dataset: iris\nloss: focal\n")
    assert load_recipe(path, ["train.optimizer.lr=3e-4"]).runs[0].config["train"]["optimizer"]["lr"] == 3e-4


def test_csv_path_is_relative_to_the_recipe(tmp_path, monkeypatch):
    (tmp_path / "project" / "data").mkdir(parents=True)
    table = tmp_path / "project" / "data" / "table.csv"
    table.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    recipe_path = write(tmp_path / "project", """
        dataset: {name: csv, path: data/table.csv, target: y}
        loss: cross_entropy
    """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_recipe(recipe_path).runs[0].config
    assert Path(config["dataset"]["path"]) == table.resolve()


def test_recipe_as_a_dict():
    recipe = load_recipe({"dataset": "iris", "losses": ["focal"], "train": {"epochs": 2}})
    assert recipe.runs[0].config["train"]["epochs"] == 2


def test_unknown_metric_and_bad_select_by(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        loss: cross_entropy
        metrics: [accuracy, acuracy]
    """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:3 metrics[1]:")
    assert "did you mean 'accuracy'" in problem
    path = write(tmp_path, "dataset: iris\nloss: cross_entropy\nmetrics: [accuracy]\nselect_by: val.mae\n")
    problem = one_problem(path)
    assert "select_by" in problem


def test_a_user_file_is_checked_when_the_recipe_is_read(tmp_path):
    (tmp_path / "table.csv").write_text("a,b,y\n1,2,0\n3,x,1\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("datasets:\n  - iris\n  - {name: csv, path: table.csv, target: yy}\nloss: cross_entropy\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{recipe}:3 datasets[1].target:") and "did you mean 'y'" in problem
    recipe.write_text("dataset: {name: csv, path: table.csv, target: y}\nloss: cross_entropy\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    assert "dataset.path:" in str(caught.value) and "table.csv:3: column 'b' holds 'x'" in str(caught.value)
