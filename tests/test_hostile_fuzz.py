"""Issue 11, fuzzed: whatever a recipe file or a ``--set`` holds, the loader
answers with exit 0 (a valid recipe) or exit 2 (one line per problem), never
a traceback or the catch-all "error: SomeException:", and within a time bound.

Recipes are drawn as plausible structures (the registry's own names and
keys) with implausible values (huge and non-finite numbers, odd unicode,
markup, nested lists and mappings), then written as YAML, sometimes with
anchors, aliases, merge keys, tags or broken syntax spliced in.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from losszoo.cli.main import app
from losszoo.recipe.load import TOP_KEYS
from losszoo.recipe.schema import Train
from losszoo.registry import DATASETS, LOSSES, MODELS

cli = CliRunner()
#: "error: ValueError: ..." is the catch-all for a bug; a recipe problem never reads like that.
CATCH_ALL = re.compile(r"error: [A-Za-z_.]*(Error|Exception|Exit|Interrupt)\b:")

# image_folder reads whatever folder a path names (a fuzzed "/" would read the machine), and parquet
# needs pyarrow: both are covered by their own tests.
DATASET_NAMES = sorted(set(DATASETS.names()) - {"image_folder", "parquet"})
LOSS_NAMES = LOSSES.names()
PARAM_KEYS = sorted({p.name for registry in (LOSSES, DATASETS, MODELS) for e in registry.entries() for p in e.params})
TRAIN_KEYS = list(Train.model_fields)

weird_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
odd_strings = st.sampled_from(["", " ", "[/x]", "[bold]", ":x:", "~", "null", ".inf", "-.nan", "0x1F", "1e999",
                               "\u202e", "\ufeff", "\x00", "a" * 300, "../../etc", "/", "cuda", "cuda:99", "auto",
                               "val.accuracy", "last", "tcp://x:1", "*", "&a", "!!set", "<<"])
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 2**32, 2**32 - 1, 2**63, 10**30, 1e-320, 0.5, 0.999, 1e6]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, weird_text, odd_strings)
keys = st.one_of(st.sampled_from(PARAM_KEYS + TRAIN_KEYS + list(TOP_KEYS) + ["name", "x-a", "<<"]), weird_text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


def named(names: list[str]):
    """A registry name, bare or as a mapping with some of the registry's keys (and any values)."""
    return st.one_of(st.sampled_from(names), values,
                     st.builds(lambda name, extra: {"name": name, **extra}, st.sampled_from(names),
                               st.dictionaries(st.sampled_from(PARAM_KEYS), values, max_size=3)))


# Near-valid recipes: classification sets, losses and values that usually fit, so that exit 0 is reached and
# the checks behind the first error run too; then at most one wild key.
plausible = st.fixed_dictionaries(
    {"dataset": st.sampled_from(["iris", "wine", "moons", "digits", "breast_cancer", {"name": "iris",
                                                                                     "test_fraction": 0.3}]),
     "losses": st.lists(st.one_of(
         st.sampled_from(["cross_entropy", "focal", "poly1", "arcface", "triplet", "mse"]),
         st.builds(lambda name, key, value: {"name": name, key: value}, st.sampled_from(["focal", "cross_entropy",
                                                                                         "arcface"]),
                   st.sampled_from(["gamma", "label_smoothing", "margin", "scale", "weight", "alpha"]),
                   st.one_of(st.floats(0, 2), st.lists(st.floats(0, 2), min_size=2, max_size=4), numbers))),
         min_size=1, max_size=3, unique_by=str)},
    optional={"seeds": st.lists(st.integers(0, 2**32 + 5), min_size=1, max_size=3, unique=True),
              "train": st.fixed_dictionaries({}, optional={"epochs": st.integers(-1, 200_000),
                                                           "batch_size": st.integers(0, 4096),
                                                           "threads": st.integers(0, 1000),
                                                           "device": st.sampled_from(["auto", "cpu", "cuda", "gpu"]),
                                                           "optimizer": st.fixed_dictionaries(
                                                               {"lr": st.one_of(st.floats(0, 1), numbers)})}),
              "model": st.sampled_from(["mlp", "linear", {"name": "mlp", "batch_norm": True}, "cnn"]),
              "experiment": st.sampled_from(["ok", "a" * 101, "[x]", "2024-01-01"])},
).flatmap(lambda d: st.dictionaries(keys, values, max_size=1).map(lambda extra: {**extra, **d}))

wild = st.fixed_dictionaries(
    {},
    optional={
        "experiment": st.one_of(st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True), scalars),
        "dataset": named(DATASET_NAMES),
        "datasets": st.lists(named(DATASET_NAMES), max_size=3),
        "model": named(MODELS.names()),
        "loss": named(LOSS_NAMES),
        "losses": st.lists(named(LOSS_NAMES), max_size=3),
        "seed": scalars,
        "seeds": st.lists(numbers, max_size=4),
        "train": st.one_of(values, st.dictionaries(st.sampled_from(TRAIN_KEYS), values, max_size=4)),
        "metrics": st.one_of(values, st.lists(st.sampled_from(["accuracy", "nll", "r2", "map_at_r"]), max_size=3)),
        "select_by": scalars,
        "sweep": st.one_of(values, st.dictionaries(st.sampled_from(["train.epochs", "train.optimizer.lr",
                                                                    "model", "loss.gamma", "dataset.noise"]),
                                                   st.lists(values, max_size=3), max_size=2)),
        "plugins": st.one_of(values, st.just([])),
        "tune": st.one_of(values, st.fixed_dictionaries({"trials": numbers})),
    },
).flatmap(lambda d: st.dictionaries(keys, values, max_size=2).map(lambda extra: {**extra, **d}))
recipes = st.one_of(plausible, wild)

SPLICES = [
    "x-a: &a [1, 2, 3]", "x-b: *a", "x-m: &m {name: focal, gamma: 2.0}", "losses: [{<<: *m, gamma: .inf}]",
    "<<: *m", "x-t: !!python/object/apply:os.system [echo]", "x-t: !!binary aGVsbG8=", "x-t: !custom {a: 1}",
    "x-s: !!set {a, b}", "? [a, b]\n: c", "%YAML 1.1\n---", "---\nother: doc", "...", "\tx: 1", "x: [1, 2",
    "x: {a: 1", "x: 'unterminated", "x: \"\\uZZZZ\"", "&orphan", "*undefined", "x: *undefined",
    "x-r: &r [*r]", "dataset: iris", "dataset: iris\ndataset: wine", "- a", "x: |\n  text", ": :", "@x", "`x`",
]


@st.composite
def recipe_texts(draw) -> str:
    data = draw(recipes)
    try:
        text = yaml.safe_dump(data, allow_unicode=draw(st.booleans()), default_flow_style=draw(st.booleans()))
    except (yaml.YAMLError, ValueError):
        text = ""
    lines = text.splitlines()
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from(SPLICES)))
    if draw(st.integers(0, 9)) == 0:  # now and then, bytes a text editor would not write
        lines.append(draw(st.text(st.characters(exclude_categories=("Cs",)), max_size=40)))
    return "\n".join(lines) + "\n"


set_keys = st.one_of(st.sampled_from(["train.epochs", "train.optimizer.lr", "losses[0].gamma", "losses[0]",
                                      "dataset", "dataset.test_fraction", "seed", "seeds", "model.hidden",
                                      "x-a", "train", "losses[9].gamma", "losses[0][1]", "a..b", "[0]",
                                      "train.optimizer.lr.x", "tune.trials", "sweep"]), weird_text)
set_values = st.one_of(values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()), weird_text,
                       st.sampled_from([s.replace("\n", " ") for s in SPLICES]))
overrides = st.lists(st.builds(lambda k, v: f"{k}={v}", set_keys, set_values), max_size=3)


def assert_answered(outcome) -> None:
    output = outcome.output
    assert outcome.exit_code in (0, 2), f"exit {outcome.exit_code}:\n{output}\n{outcome.exception!r}"
    assert "Traceback" not in output, output
    assert not CATCH_ALL.search(output), output
    assert "(set LOSSZOO_DEBUG=1" not in output, output
    if outcome.exit_code == 2:
        assert "error:" in output or "Usage:" in output, output


FUZZ = settings(max_examples=150, deadline=2000, derandomize=True, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def folder():
    import torch  # noqa: F401  (a recipe naming a GPU imports torch to ask: not on the clock of one example)

    with tempfile.TemporaryDirectory(prefix="losszoo-fuzz-") as name:
        yield Path(name)


@FUZZ
@given(text=recipe_texts(), sets=overrides)
def test_any_recipe_file_and_sets_are_answered_cleanly(folder, text, sets):
    path = folder / "recipe.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    args = ["train", str(path), "--dry-run", "--runs-dir", str(folder / "runs")]
    for value in sets:
        args += ["--set", value]
    assert_answered(cli.invoke(app, args))
    assert not (folder / "runs").exists()  # a dry run writes nothing


@FUZZ
@given(sets=st.lists(st.builds(lambda k, v: f"{k}={v}", set_keys, set_values), min_size=1, max_size=4))
def test_any_set_on_a_valid_recipe_is_answered_cleanly(folder, sets):
    path = folder / "valid.yaml"
    path.write_text("dataset: iris\nlosses: [cross_entropy, {name: focal, gamma: 1.0}]\nseeds: [0, 1]\n")
    args = ["train", str(path), "--dry-run", "--runs-dir", str(folder / "runs")]
    for value in sets:
        args += ["--set", value]
    assert_answered(cli.invoke(app, args))


@settings(max_examples=60, deadline=2000, derandomize=True)
@given(raw=st.binary(max_size=200))
def test_any_bytes_as_a_recipe_are_answered_cleanly(folder, raw):
    path = folder / "bytes.yaml"
    path.write_bytes(raw)
    assert_answered(cli.invoke(app, ["train", str(path), "--dry-run", "--runs-dir", str(folder / "runs")]))


def test_the_fuzzer_reaches_both_answers(folder):
    """The strategies are not all noise: a plain draw validates, a spliced one fails."""
    assert cli.invoke(app, ["train", str(_write(folder, "dataset: iris\nloss: focal\n")), "--dry-run"]).exit_code == 0
    assert cli.invoke(app, ["train", str(_write(folder, "x-r: &r [*r]\n")), "--dry-run"]).exit_code == 2
    assert sys.getrecursionlimit() >= 1000  # the loader must not have lowered it


def _write(folder: Path, text: str) -> Path:
    path = folder / "sample.yaml"
    path.write_text(text)
    return path


# --- what the fuzzer found, kept as plain examples -------------------------------------------------


@pytest.mark.parametrize(("text", "sets", "words"), [
    # a sweep of train.* over a recipe whose train: is a list (was: TypeError, the catch-all)
    ("dataset: iris\nlosses: [focal]\nsweep:\n  train.optimizer.lr: [0.1]\ntrain: []\n", [],
     "train: must be a mapping"),
    ("dataset: iris\nlosses: [focal]\nsweep:\n  model.hidden: [[8]]\nmodel: [mlp]\n", [], "model:"),
    # --set on a key of the default model (was: `model: needs name:` at line 1)
    ("dataset: iris\nlosses: [focal]\n", ["model.hidden=[0]"], "--set model.hidden: must be >= 1"),
], ids=["sweep over train: []", "sweep over model: []", "set a key of the default model"])
def test_found_by_the_fuzzer(folder, text, sets, words):
    args = ["train", str(_write(folder, text)), "--dry-run"]
    for value in sets:
        args += ["--set", value]
    outcome = cli.invoke(app, args)
    assert_answered(outcome)
    assert outcome.exit_code == 2 and words in " ".join(outcome.output.split()), outcome.output
