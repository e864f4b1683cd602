"""Issue 11, "everything checkable is checked before the first run": each recipe
below used to pass validation and fail (or silently misbehave) at train time.
Now `losszoo train RECIPE --dry-run` is exit 2 with `recipe.yaml:LINE key:` and
the reason, and a real `train` stops before any run folder exists.

The rules live with their registry entries (``Rule`` in losszoo/registry.py,
declared in losszoo/catalog/*.py) and are evaluated by recipe/check.py with
the dataset's ``Facts``; the last tests check that the recipe and the
constructor evaluate the same rule.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from losszoo.cli.main import app
from losszoo.registry import LOSSES

cli = CliRunner()


def write(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def dry_run(path: Path, *args: str):
    return cli.invoke(app, ["train", str(path), "--dry-run", *args])


def assert_recipe_error(outcome, where: str, *words: str) -> None:
    """Exit 2, one `error:` naming ``where`` (``recipe.yaml:3 losses[0].weight:``) and ``words``, no traceback."""
    text = " ".join(outcome.output.split())
    assert outcome.exit_code == 2, outcome.output
    assert where in text, outcome.output
    for word in words:
        assert word in text, f"{word!r} not in {outcome.output}"
    assert "Traceback" not in outcome.output
    assert "(set LOSSZOO_DEBUG=1" not in outcome.output  # never the catch-all


# (case, recipe, "file:line key:", words of the reason)
CASES = [
    ("magface l_a above u_a", """
        dataset: iris
        losses:
          - {name: magface, l_a: 200}
        """, "recipe.yaml:3 losses[0].l_a:", ["below u_a"]),
    ("adacos on two classes", """
        dataset: moons
        losses: [adacos]
        """, "recipe.yaml:2 losses[0]:", ["at least 3 classes", "C = 2"]),
    ("class weights for 2 of iris's 3 classes", """
        dataset: iris
        losses:
          - {name: cross_entropy, weight: [1, 2]}
        """, "recipe.yaml:3 losses[0].weight:", ["2 entries for 3 classes"]),
    ("focal alpha for 4 of iris's 3 classes", """
        dataset: iris
        losses:
          - {name: focal, alpha: [1, 2, 3, 4]}
        """, "recipe.yaml:3 losses[0].alpha:", ["4 entries for 3 classes"]),
    ("bce pos_weight for 2 of 5 labels", """
        dataset: {name: multilabel, n_samples: 200}
        losses:
          - {name: bce, pos_weight: [1, 2]}
        """, "recipe.yaml:3 losses[0].pos_weight:", ["2 entries for 5 labels"]),
    ("tversky alpha = beta = 0", """
        dataset: shapes
        model: unet
        losses:
          - {name: tversky, alpha: 0, beta: 0}
        """, "recipe.yaml:4 losses[0].alpha:", ["cannot both be 0"]),
    ("bi_tempered t1 = 1, t2 = 0", """
        dataset: iris
        losses:
          - {name: bi_tempered, t1: 1, t2: 0}
        """, "recipe.yaml:3 losses[0].t1:", ["t1 < 1"]),
    ("seed 2**32", """
        dataset: iris
        losses: [cross_entropy]
        seed: 4294967296
        """, "recipe.yaml:3 seed:", ["[0, 2**32 - 1]"]),
    ("one of the seeds 2**40", """
        dataset: iris
        losses: [cross_entropy]
        seeds: [0, 1099511627776]
        """, "recipe.yaml:3 seeds[1]:", ["[0, 2**32 - 1]"]),
    ("a negative seed", """
        dataset: iris
        losses: [cross_entropy]
        seed: -1
        """, "recipe.yaml:3 seed:", ["[0, 2**32 - 1]"]),
    ("a boolean seed", """
        dataset: iris
        losses: [cross_entropy]
        seed: true
        """, "recipe.yaml:3 seed:", ["integer"]),
    ("lr .inf", """
        dataset: iris
        losses: [cross_entropy]
        train:
          optimizer: {lr: .inf}
        """, "recipe.yaml:4 train.optimizer.lr:", ["finite"]),
    ("lr .nan", """
        dataset: iris
        losses: [cross_entropy]
        train:
          optimizer: {lr: .nan}
        """, "recipe.yaml:4 train.optimizer.lr:", ["finite"]),
    ("lr 1e400 overflows to inf", """
        dataset: iris
        losses: [cross_entropy]
        train:
          optimizer: {lr: 1e400}
        """, "recipe.yaml:4 train.optimizer.lr:", ["finite"]),
    ("weight_decay .inf", """
        dataset: iris
        losses: [cross_entropy]
        train:
          optimizer: {weight_decay: .inf}
        """, "recipe.yaml:4 train.optimizer.weight_decay:", ["finite"]),
    ("grad_clip .inf", """
        dataset: iris
        losses: [cross_entropy]
        train: {grad_clip: .inf}
        """, "recipe.yaml:3 train.grad_clip:", ["finite"]),
    ("arcface margin .inf", """
        dataset: iris
        losses:
          - {name: arcface, margin: .inf}
        """, "recipe.yaml:3 losses[0].margin:", ["finite"]),
    ("focal gamma .inf", """
        dataset: iris
        losses:
          - {name: focal, gamma: .inf}
        """, "recipe.yaml:3 losses[0].gamma:", ["finite"]),
    ("focal gamma -.inf", """
        dataset: iris
        losses:
          - {name: focal, gamma: -.inf}
        """, "recipe.yaml:3 losses[0].gamma:", ["finite"]),
    ("open_set on 3 classes", """
        dataset: {name: iris, open_set: true}
        losses: [cross_entropy]
        """, "recipe.yaml:1 dataset.open_set:", ["at least 4 classes", "has 3"]),
    ("test_fraction 0.001", """
        dataset: {name: iris, test_fraction: 0.001}
        losses: [cross_entropy]
        """, "recipe.yaml:1 dataset.test_fraction:", ["leaves 1 of 150", "[0.02, 0.98]"]),
    ("test_fraction 0.999", """
        dataset: {name: iris, test_fraction: 0.999}
        losses: [cross_entropy]
        """, "recipe.yaml:1 dataset.test_fraction:", ["150 of 150", "0 for the rest"]),
    ("val_fraction leaves no train part", """
        dataset: {name: iris, val_fraction: 0.995}
        losses: [cross_entropy]
        """, "recipe.yaml:1 dataset.val_fraction:", ["for val"]),
    ("a 300-character experiment name", f"""
        experiment: {"a" * 300}
        dataset: iris
        losses: [cross_entropy]
        """, "recipe.yaml:1 experiment:", ["at most 100"]),
    ("an experiment name that is a path", """
        experiment: ../../etc
        dataset: iris
        losses: [cross_entropy]
        """, "recipe.yaml:1 experiment:", ["letters, digits"]),
    ("train.threads 100000", """
        dataset: iris
        losses: [cross_entropy]
        train: {threads: 100000}
        """, "recipe.yaml:3 train.threads:", ["<= 256"]),
    ("train.threads 0", """
        dataset: iris
        losses: [cross_entropy]
        train: {threads: 0}
        """, "recipe.yaml:3 train.threads:", [">= 1"]),
    ("epochs 10**9", """
        dataset: iris
        losses: [cross_entropy]
        train: {epochs: 1000000000}
        """, "recipe.yaml:3 train.epochs:", ["<= 100000"]),
    ("a generated dataset of 10**12 values", """
        dataset: {name: classification, n_samples: 10000000, features: 100000}
        losses: [cross_entropy]
        """, "recipe.yaml:1 dataset.n_samples:", ["1,000,000,000,000 values", "4 GB"]),
    ("generated images of 10**12 pixels", """
        dataset: {name: shapes, n_samples: 1000000, size: 1024}
        model: unet
        losses: [dice]
        """, "recipe.yaml:1 dataset.n_samples:", ["values"]),
    ("an mlp of 10**10 weights", """
        dataset: iris
        model: {name: mlp, hidden: [100000, 100000]}
        losses: [cross_entropy]
        """, "recipe.yaml:2 model.hidden:", ["weights", "narrower"]),
    ("a linear head of 4 * 10**9 weights", """
        dataset: iris
        model: {name: linear, embedding_dim: 1000000000}
        losses: [triplet]
        """, "recipe.yaml:2 model.embedding_dim:", ["weights"]),
    ("a resnet of 5 * 10**9 weights", """
        dataset: digits
        model: {name: resnet, channels: [1000, 10000], blocks: 3}
        losses: [cross_entropy]
        """, "recipe.yaml:2 model.channels:", ["weights"]),
    ("batch norm and batches of one", """
        dataset: iris
        model: {name: mlp, batch_norm: true}
        losses: [cross_entropy]
        train: {batch_size: 1}
        """, "recipe.yaml:2 model.batch_norm:", ["a batch of one sample"]),
    ("a sweep of batch sizes that reaches one", """
        dataset: iris
        model: {name: mlp, batch_norm: true}
        losses: [cross_entropy]
        sweep:
          train.batch_size: [32, 1]
        """, "recipe.yaml:2 model.batch_norm:", ["a batch of one sample"]),
    ("an unknown device", """
        dataset: iris
        losses: [cross_entropy]
        train: {device: tpu}
        """, "recipe.yaml:3 train.device:", ["auto, cpu, cuda"]),
]


@pytest.mark.parametrize(("recipe", "where", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_checked_before_the_first_run(tmp_path, recipe, where, words):
    assert_recipe_error(dry_run(write(tmp_path, recipe)), where, *words)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:7"])
def test_a_cuda_device_on_a_torch_without_one(tmp_path, device):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch sees a GPU")
    path = write(tmp_path, f"""
        dataset: iris
        losses: [cross_entropy]
        train: {{device: "{device}"}}
        """)
    assert_recipe_error(dry_run(path), "recipe.yaml:3 train.device:", f"{device} is not available", "use auto or cpu")


def test_a_problem_set_with_set_is_placed_at_set(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses: [cross_entropy]
        """)
    assert_recipe_error(dry_run(path, "--set", "dataset.test_fraction=0.999"), "--set dataset.test_fraction:",
                        "150 of 150")
    assert_recipe_error(dry_run(path, "--set", "losses[0].weight=[1, 2]"), "--set losses[0].weight:",
                        "2 entries for 3 classes")
    assert_recipe_error(dry_run(path, "--set", "seed=4294967296"), "--set seed:", "2**32")


def test_every_problem_is_listed_at_once(tmp_path):
    path = write(tmp_path, """
        experiment: ok
        dataset: iris
        losses:
          - {name: cross_entropy, weight: [1, 2]}
          - {name: magface, l_a: 200}
        seed: 4294967296
        train: {threads: 100000}
        """)
    outcome = dry_run(path)
    assert outcome.exit_code == 2
    assert "4 problems" in outcome.output
    for where in ("recipe.yaml:4 losses[0].weight", "recipe.yaml:5 losses[1].l_a", "recipe.yaml:6 seed",
                  "recipe.yaml:7 train.threads"):
        assert where in outcome.output


def test_a_sweep_point_that_breaks_a_rule_is_named(tmp_path):
    path = write(tmp_path, """
        dataset: iris
        losses:
          - {name: focal, alpha: [[1, 1, 1], [1, 2]]}
        """)
    assert_recipe_error(dry_run(path), "losses[0].alpha[1]:", "2 entries for 3 classes")


@pytest.mark.parametrize(("loss", "key", "value"), [
    ("cross_entropy", "weight", [1, 2, 3]), ("focal", "alpha", [0.2, 0.3, 0.5]), ("focal", "alpha", 0.25),
])
def test_a_value_per_class_that_fits_is_accepted(tmp_path, loss, key, value):
    path = write(tmp_path, f"""
        dataset: iris
        losses:
          - {{name: {loss}, {key}: {value}}}
        """)
    outcome = dry_run(path)
    assert outcome.exit_code == 0, outcome.output


@pytest.mark.parametrize(("name", "text"), [
    ("few.csv", "a,y\n1,0\n2,1\n3,0\n"),
    ("one-per-class.csv", "a,y\n" + "".join(f"{i},{i}\n" for i in range(20))),
])
def test_a_csv_with_too_few_rows_to_split(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    path = write(tmp_path, f"""
        dataset: {{name: csv, path: {name}, target: y}}
        losses: [cross_entropy]
        """)
    assert_recipe_error(dry_run(path), "recipe.yaml:1 dataset.test_fraction:", "a stratified split needs 2")


def test_a_regression_csv_with_too_few_rows_to_split(tmp_path):
    (tmp_path / "tiny.csv").write_text("a,y\n1,0.5\n2,1.5\n")
    path = write(tmp_path, """
        dataset: {name: csv, path: tiny.csv, target: y, task: regression}
        losses: [mse]
        """)
    assert_recipe_error(dry_run(path), "recipe.yaml:1 dataset.val_fraction:", "too few to split into val")


def test_an_npz_with_too_few_rows_to_split(tmp_path):
    np.savez(tmp_path / "few.npz", x=np.zeros((3, 2)), y=np.array([0, 1, 0]))
    path = write(tmp_path, """
        dataset: {name: npz, path: few.npz}
        losses: [cross_entropy]
        """)
    assert_recipe_error(dry_run(path), "recipe.yaml:1 dataset.test_fraction:", "a stratified split needs 2")


def test_a_broken_recipe_trains_nothing_and_writes_nothing(tmp_path):
    """Without --dry-run too: the problem stops the command before the runs folder is made."""
    path = write(tmp_path, """
        dataset: iris
        losses:
          - cross_entropy
          - {name: cross_entropy, weight: [1, 2]}
        """)
    runs = tmp_path / "runs"
    outcome = cli.invoke(app, ["train", str(path), "--runs-dir", str(runs)])
    assert_recipe_error(outcome, "recipe.yaml:4 losses[1].weight:")
    assert not runs.exists()


# --- one rule: the recipe and the constructor agree ----------------------------------------------


def _per_class_params():
    for entry in LOSSES.entries():
        for param in entry.params:
            context = (*entry.context, *getattr(entry, "optional_context", ()))
            if param.type in ("floats", "float_or_floats") and "num_classes" in context:
                yield pytest.param(entry.name, param.name, id=f"{entry.name}.{param.name}")


@pytest.mark.parametrize(("loss", "key"), list(_per_class_params()))
def test_every_per_class_list_is_checked_against_the_classes(loss, key):
    """Tests follow the registry: any loss with a per-class list has the rule, so a recipe catches a
    wrong length before training, and the constructor refuses it too."""
    from losszoo.errors import InvalidParameterError
    from losszoo.factory import create_loss

    entry = LOSSES.get(loss)
    assert entry.rule_problems({**entry.defaults(), key: [1.0, 1.0]}, {"num_classes": 3}), \
        f"{loss}.{key}: a list of 2 for 3 classes passes the recipe check"
    assert not entry.rule_problems({**entry.defaults(), key: [1.0, 1.0, 1.0]}, {"num_classes": 3})
    with pytest.raises((InvalidParameterError, ValueError)):
        create_loss(loss, **{key: [1.0, 1.0]}, num_classes=3)


def test_the_recipe_and_the_constructor_give_the_same_reason_for_magface():
    from losszoo.errors import InvalidParameterError
    from losszoo.factory import create_loss

    entry = LOSSES.get("magface")
    (key, message), = entry.rule_problems({**entry.defaults(), "l_a": 200.0}, {"num_classes": 3})
    with pytest.raises(InvalidParameterError, match="below u_a"):
        create_loss("magface", l_a=200.0, num_classes=3, embedding_dim=8)
    assert key == "l_a" and "below u_a" in message


@pytest.mark.parametrize("model", ["{name: mlp, hidden: [50000]}", "{name: resnet, channels: [64, 128], blocks: 2}",
                                   "{name: mlp, batch_norm: true}"])
def test_large_but_sane_models_pass(tmp_path, model):
    dataset = "digits"
    path = write(tmp_path, f"dataset: {dataset}\nmodel: {model}\nlosses: [cross_entropy]\n")
    outcome = dry_run(path)
    assert outcome.exit_code == 0, outcome.output
