"""Stacked training (losszoo/training/stacked.py): each member of a stack gives the numbers its single run gives.

Tolerance: weights after a few epochs within ``rtol=1e-4, atol=1e-5``, val metrics and train losses within
``rel=1e-4``. A stack is not bit for bit a single run: the batched matmul and the per-member gradient norm sum in
another order, and where members of one chunk differ in learning rate the update multiplies by a column where
torch fuses a scalar (one rounding more). Those are float32 round-offs (about 1e-7 here); a wrong learning rate,
decay, schedule, shuffle or initialisation is off by far more than the tolerance after one epoch.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys

import pytest
import torch

import losszoo
from losszoo.inputs import INPUT_KINDS
from losszoo.recipe.load import load_recipe
from losszoo.registry import LOSSES, METRICS
from losszoo.training import stacked
from losszoo.training.stacked import stack_key, stack_problem, stack_size_limit, train_stack
from losszoo.training.trainer import train_run

RTOL, ATOL, REL = 1e-4, 1e-5, 1e-4

DATASET_OF_TASK = {
    "classification": "iris",
    "regression": "diabetes",
    "multilabel": {"name": "multilabel", "n_samples": 120},
    "boxes": {"name": "shapes_boxes", "n_samples": 60, "size": 16},
}


def configs_of(recipe: dict, tweak=None) -> list[dict]:
    configs = [run.config for run in load_recipe(recipe).runs]
    return [tweak(i, copy.deepcopy(c)) if tweak else c for i, c in enumerate(configs)]


def digits(**train) -> dict:
    return {"experiment": "stack", "dataset": "digits", "model": {"name": "mlp", "hidden": [32, 32]},
            "loss": "cross_entropy", "metrics": ["accuracy"], "seeds": [0, 1, 2],
            "train": {"epochs": 3, "batch_size": 64, "device": "cpu", **train}}


@pytest.fixture
def stacks(monkeypatch) -> list[list[int]]:
    """The members (config indices) of every stack trained together, so a test knows nothing trained alone."""
    seen: list[list[int]] = []
    together = stacked._train_together

    def recording(members, *args):
        seen.append([m.index for m in members])
        return together(members, *args)

    monkeypatch.setattr(stacked, "_train_together", recording)
    return seen


def train_both(configs: list[dict], tmp_path, **hooks) -> tuple[list, list]:
    singles, prune = [], hooks.get("prune")
    for i, config in enumerate(configs):
        single_prune = (lambda epoch, val, i=i: prune(i, epoch, val)) if prune else None
        singles.append(train_run(config, tmp_path / "single" / str(i), prune=single_prune))
    return singles, train_stack(configs, [tmp_path / "stack" / str(i) for i in range(len(configs))], **hooks)


def close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=REL, abs_tol=ATOL)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def assert_same_run(tmp_path, i: int, single: dict, member: dict) -> None:
    """The stacked member's outcome and folder are the single run's, within the tolerance."""
    assert not isinstance(member, Exception), member
    assert member.keys() == single.keys()
    for key in single.keys() - {"train_seconds", "samples_per_second"}:
        assert close(single[key], member[key]), (key, single[key], member[key])
    a, b = tmp_path / "single" / str(i), tmp_path / "stack" / str(i)
    assert sorted(p.relative_to(a) for p in a.rglob("*")) == sorted(p.relative_to(b) for p in b.rglob("*"))
    lines = [[json.loads(line) for line in (f / "metrics.jsonl").read_text().splitlines()] for f in (a, b)]
    assert close(*lines), lines
    for checkpoint in [p.relative_to(a) for p in a.rglob("*.pt")]:
        one, two = torch.load(a / checkpoint), torch.load(b / checkpoint)
        assert one["epoch"] == two["epoch"] and one["config"] == two["config"]
        for part in ("model", "loss"):
            assert one[part].keys() == two[part].keys()
            for name in one[part]:
                torch.testing.assert_close(two[part][name], one[part][name], rtol=RTOL, atol=ATOL,
                                           msg=f"{checkpoint} {part}.{name}")


# --- what stacks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "words"), [
    ({}, None),
    ({"model": {"name": "cnn"}}, "not stacked: model 'cnn'"),
    ({"model": {"name": "mlp", "batch_norm": True}}, "not stacked: batch norm"),
    ({"model": {"name": "mlp", "dropout": 0.1}}, "not stacked: dropout"),
    ({"train": {"precision": "bf16"}}, "not stacked: precision bf16"),
    ({"model": {"name": "unet"}, "dataset": {"name": "shapes", "n_samples": 40, "size": 16}, "loss": "dice"},
     "not stacked: model 'unet'"),
])
def test_stack_problem_says_why(change, words):
    recipe = {"experiment": "x", "dataset": "digits", "model": {"name": "mlp"}, "loss": "cross_entropy", **change}
    problem = stack_problem(load_recipe(recipe).runs[0].config)
    assert problem == words if words is None else problem.startswith(words), problem


def test_segmentation_losses_are_not_marked_stackable():
    """They take per-pixel logits, which only conv models give; nothing has tested them in a stack."""
    config = configs_of(digits())[0]
    assert stack_problem({**config, "loss": {"name": "dice"}}) == "not stacked: loss 'dice' is not marked stackable"


def test_a_plugin_loss_stacks_only_when_it_says_so():
    for name, stackable in (("plain_plugin", False), ("stackable_plugin", True)):
        losszoo.register_loss(name, input="logits", stackable=stackable)(lambda logits, labels: logits.mean())
    try:
        config = configs_of({**digits(), "loss": "plain_plugin"})[0]
        assert stack_problem(config) == "not stacked: plugin loss 'plain_plugin' does not declare stackable=True"
        assert stack_problem({**config, "loss": {"name": "stackable_plugin"}}) is None
    finally:
        LOSSES.remove("plain_plugin")
        LOSSES.remove("stackable_plugin")


def test_stack_key_ignores_what_members_keep_for_themselves():
    base = configs_of(digits())[0]
    same = copy.deepcopy(base)
    same["seed"], same["label"] = 7, "other"
    same["train"]["optimizer"].update(lr=0.1, weight_decay=0.0, momentum=0.5)
    same["train"]["patience"], same["select_by"] = 3, "last"
    same["loss"] = {"name": "focal", "gamma": 1.0, "alpha": None}  # another loss on the same logits
    assert stack_key(same) == stack_key(base)
    for path, value in ((("model", "hidden"), [64, 64]), (("train", "batch_size"), 32),
                        (("train", "epochs"), 4), (("dataset", "val_fraction"), 0.3)):
        other = copy.deepcopy(base)
        other[path[0]][path[1]] = value
        assert stack_key(other) != stack_key(base), path
    embedding = {**base, "loss": {"name": "arcface"}}
    assert stack_key(embedding) != stack_key(base)


def test_stack_problem_and_key_import_no_torch():
    code = "import sys, losszoo.training.stacked; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_stack_size_limit_follows_the_budget():
    configs = configs_of(digits())[:1] * 64  # the limit reads the first config and counts them
    small, large = (stack_size_limit(configs, "cpu", budget) for budget in (30 << 20, 300 << 20))
    assert 1 <= small < large <= 64
    assert stack_size_limit(configs, "cpu", 1) == 1
    assert stack_size_limit(configs[:3], "cpu", 1 << 40) == 3


# --- exactness -----------------------------------------------------------------------------------


def _lr_per_member(i: int, config: dict) -> dict:
    config["train"]["optimizer"]["lr"] *= (1.0, 2.0)[i]  # a column of learning rates, not one number
    return config


@pytest.mark.parametrize("name", [e.name for e in LOSSES.entries() if e.stackable and e.origin == "built-in"])
def test_every_stackable_loss_trains_as_its_single_runs(name, tmp_path, stacks):
    """Two seeds stacked, with different learning rates, against the same two runs trained alone."""
    task = INPUT_KINDS[LOSSES.get(name).input].tasks[0]
    configs = configs_of({"experiment": "stack", "dataset": DATASET_OF_TASK[task], "loss": name, "seeds": [0, 1],
                          "model": {"name": "mlp", "hidden": [16], "embedding_dim": 8},
                          "train": {"epochs": 2, "batch_size": 16, "device": "cpu"}}, _lr_per_member)
    assert stack_problem(configs[0]) is None
    singles, outcomes = train_both(configs, tmp_path)
    assert stacks == [[0, 1]]
    for i in range(2):
        assert_same_run(tmp_path, i, singles[i], outcomes[i])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_members_keep_their_lr_decay_momentum_schedule_and_clip(optimizer, tmp_path, stacks):
    def tweak(i, config):
        config["train"]["optimizer"].update(lr=(1e-3, 3e-3, 3e-2)[i], weight_decay=(0.0, 1e-4, 1e-2)[i],
                                            momentum=(0.0, 0.5, 0.9)[i])
        config["train"]["scheduler"] = ({"name": "none", "step_size": 10, "gamma": 0.1},
                                        {"name": "step", "step_size": 1, "gamma": 0.5},
                                        {"name": "cosine", "step_size": 10, "gamma": 0.1})[i]
        return config

    configs = configs_of(digits(optimizer={"name": optimizer}, grad_clip=0.1), tweak)
    singles, outcomes = train_both(configs, tmp_path)
    assert stacks == [[0, 1, 2]]
    for i in range(3):
        assert_same_run(tmp_path, i, singles[i], outcomes[i])


def test_early_stopping_divergence_and_selection_stay_per_member(tmp_path, stacks):
    def tweak(i, config):
        if i == 0:  # stops early: patience 1 on val rmse
            config["train"]["patience"], config["train"]["epochs"] = 1, 6
        if i == 1:  # diverges: plain SGD far too fast on a regression
            config["train"]["optimizer"] = {"name": "sgd", "lr": 1e6, "weight_decay": 0.0, "momentum": 0.0}
        if i == 2:  # reports its last epoch and keeps checkpoints
            config["select_by"], config["train"]["save_every"] = "last", 2
        config["train"]["epochs"] = 6
        return config

    recipe = {**digits(optimizer={"name": "sgd", "lr": 0.05}), "dataset": "diabetes", "loss": "mse",
              "metrics": ["rmse"]}
    configs = configs_of(recipe, tweak)
    singles, outcomes = train_both(configs, tmp_path)
    assert stacks == [[0, 1, 2]]
    assert [s["status"] for s in singles] == ["completed", "diverged", "completed"]
    assert singles[0]["epochs_run"] < 6 and singles[1]["epochs_run"] < 6
    for i in range(3):
        assert_same_run(tmp_path, i, singles[i], outcomes[i])
    assert (tmp_path / "stack" / "2" / "checkpoints" / "epoch-0006.pt").exists()


def test_a_pruned_trial_leaves_the_stack(tmp_path, stacks):
    heard = []

    def prune(i, epoch, val):
        return i == 1 and epoch == 2

    def on_epoch(i, epoch, epochs, train_loss, metric, value):
        heard.append((i, epoch))

    configs = configs_of(digits())
    for config in configs:
        config["trial"] = {"study": "s", "number": 0}
    singles, outcomes = train_both(configs, tmp_path, prune=prune)
    assert stacks == [[0, 1, 2]]
    assert [r["status"] for r in outcomes] == ["completed", "pruned", "completed"]
    for i in range(3):
        assert_same_run(tmp_path, i, singles[i], outcomes[i])
    train_stack(configs, [tmp_path / "again" / str(i) for i in range(3)], on_epoch=on_epoch, prune=prune)
    assert sorted(heard) == sorted([(0, e) for e in (1, 2, 3)] + [(1, 1), (1, 2)] + [(2, e) for e in (1, 2, 3)])


def test_what_cannot_stack_trains_alone_and_a_failure_fails_one_member(tmp_path, stacks):
    @losszoo.register_loss("always_fails", input="logits", stackable=True)
    def always_fails(logits, labels):
        raise ValueError("broken on purpose")

    try:
        configs = configs_of(digits())
        configs[0]["model"]["dropout"] = 0.2  # not stacked: trains alone, seeded as its single run, first or not
        configs[0]["label"] = "dropout"
        broken = copy.deepcopy(configs[1])
        broken["loss"] = {"name": "always_fails"}
        singles = [train_run(c, tmp_path / "single" / str(i)) for i, c in enumerate(configs)]
        outcomes = train_stack([configs[0], broken, configs[2]], [tmp_path / "stack" / str(i) for i in range(3)])
        assert stacks == [[1, 2]]
        assert isinstance(outcomes[1], ValueError) and "broken on purpose" in str(outcomes[1])
        for i in (0, 2):
            assert_same_run(tmp_path, i, singles[i], outcomes[i])
    finally:
        LOSSES.remove("always_fails")


@pytest.mark.parametrize("where", ["loss", "metric"])
def test_a_plugin_that_calls_sys_exit_in_a_stack_fails_its_member_only(where, tmp_path, stacks):
    """As a single run's plugin does (runner._train_one): the member is failed with the SystemExit, the others
    finish as their single runs."""
    def quits(*args, **kwargs):
        sys.exit(3)

    losszoo.register_loss("quits_loss", input="logits", stackable=True)(quits)
    losszoo.register_metric("quits_metric", input="logits", task="classification", higher_is_better=True)(quits)
    try:
        configs = configs_of(digits())
        broken = copy.deepcopy(configs[1])
        if where == "loss":
            broken["loss"] = {"name": "quits_loss"}
        else:
            broken["metrics"] = ["accuracy", "quits_metric"]
        singles = [train_run(c, tmp_path / "single" / str(i)) for i, c in enumerate(configs)]
        outcomes = train_stack([configs[0], broken, configs[2]], [tmp_path / "stack" / str(i) for i in range(3)])
        assert stacks == ([[0, 1, 2]] if where == "loss" else [[0, 2], [1]])  # metrics are part of a stack's key
        assert isinstance(outcomes[1], SystemExit) and outcomes[1].code == 3
        for i in (0, 2):
            assert_same_run(tmp_path, i, singles[i], outcomes[i])
    finally:
        LOSSES.remove("quits_loss")
        METRICS.remove("quits_metric")


def test_members_of_different_sizes_train_in_separate_stacks(tmp_path, stacks):
    configs = configs_of(digits())
    configs[1]["dataset"]["val_fraction"] = 0.3  # another number of training samples
    finished = []
    singles, outcomes = train_both(configs, tmp_path, on_finish=lambda i, outcome: finished.append(i))
    assert stacks == [[0, 2], [1]] and sorted(finished) == [0, 1, 2]
    for i in range(3):
        assert_same_run(tmp_path, i, singles[i], outcomes[i])


def test_an_auto_stack_is_split_to_fit_the_memory_budget(tmp_path, stacks, monkeypatch):
    monkeypatch.setattr(stacked, "stack_size_limit", lambda configs, device: 2)  # two members fit, not three
    configs = configs_of(digits())
    singles, outcomes = train_both(configs, tmp_path)
    assert stacks == [[0, 1], [2]]
    for i in range(3):
        assert_same_run(tmp_path, i, singles[i], outcomes[i])
