"""Row labels (issue 10, item 1): one configuration per row, labels that show
exactly the keys that differ, unique even where rounding would collide, a
user's file named; and the fast key search against a slow, obvious one."""

from __future__ import annotations

import json
import random

import pytest
from test_compare import result

from losszoo.comparison import labels
from losszoo.comparison.table import compare_results


def slow_varying(flats: list[dict]) -> list[list[str]]:
    """The rule in words: a key tells row i apart when its value differs among i's peers, the rows with the same
    dataset name (dataset keys), model name (model keys), loss label (loss keys), the same file (its content
    hash), the same plugin's owner (a plugin's hash), or among all rows (the rest); differing names always do."""
    def text(value):
        return json.dumps(value, sort_keys=True, default=str)

    def peer_key(key: str) -> str | None:
        head, _, rest = key.partition(".")
        if head == "inputs":
            if rest == "dataset.path":
                return "dataset.path"
            head = rest.split(".")[0]
        return {"dataset": "dataset.name", "model": "model.name", "loss": "loss.label"}.get(head)

    out = []
    for mine in flats:
        keys = set()
        for key in mine:
            if key == "loss.label":
                continue
            same = peer_key(key)
            peers = [f for f in flats if same is None or text(f.get(same)) == text(mine.get(same))]
            if len({text(f.get(key)) for f in peers}) > 1:
                keys.add(key)
        keys |= {k for k in ("dataset.name", "model.name", "loss.name") if len({text(f.get(k)) for f in flats}) > 1}
        out.append(sorted(keys))
    return out


def random_config(rng: random.Random) -> tuple[dict, str]:
    loss = rng.choice(["cross_entropy", "focal", "arcface"])
    params = {"gamma": rng.choice([1.0, 2.0])} if loss == "focal" and rng.random() < 0.7 else {}
    dataset = rng.choice(["digits", "csv"])
    config = {
        "dataset": {"name": dataset, "label_noise": rng.choice([0.0, 0.4])}
        | ({"path": rng.choice(["/a/iris.csv", "/b/wine.csv"])} if dataset == "csv" else {}),
        "model": {"name": rng.choice(["mlp", "cnn"]), "hidden": rng.choice([[32], [256], [32, 32]])},
        "loss": {"name": loss, **params},
        "seed": rng.randint(0, 3),
        "train": {"epochs": rng.choice([10, 20]), "device": rng.choice(["cpu", "cuda"])},
        "inputs": {"dataset.path": rng.choice(["1" * 64, "2" * 64])} if dataset == "csv" else {},
    }
    label = loss + (f"(g={params['gamma']:g})" if params else "")
    return config, label


@pytest.mark.parametrize("seed", range(30))
def test_the_keys_that_differ_equal_a_slow_search(seed):
    rng = random.Random(seed)
    configs, names = zip(*(random_config(rng) for _ in range(rng.randint(1, 12))), strict=True)
    flats = [{k: v for k, v in labels.flatten(c).items() if k not in labels.IGNORED} | {"loss.label": label}
             for c, label in zip(configs, names, strict=True)]
    assert labels._varying(flats) == slow_varying(flats)


def test_ignored_keys_are_the_run_identitys_and_the_tuning_record():
    """What a run's identity leaves out never labels a row; nor does a final run's tuning record, which is in
    the identity (a larger budget is a new run) but has its own column."""
    from losszoo.spec import UNHASHED_KEYS, UNHASHED_TRAIN_KEYS

    assert set(labels.IGNORED) == {"seed", "tuned", *UNHASHED_KEYS, *(f"train.{k}" for k in UNHASHED_TRAIN_KEYS)}
    assert "tuned" not in UNHASHED_KEYS


def labelled(results):
    return [r.label for r in compare_results(results).rows]


def test_labels_show_only_what_differs():
    shown = labelled([result("cross_entropy", 0, 0.9, model_params={"hidden": [32]}),
                      result("cross_entropy", 0, 0.9, model_params={"hidden": [256]}),
                      result("focal(g=2)", 0, 0.9, model_params={"hidden": [32]}, position=1)])
    assert shown == [{"dataset": "iris", "model": "mlp(hidden=[32])", "label": "cross_entropy"},
                     {"dataset": "iris", "model": "mlp(hidden=[256])", "label": "cross_entropy"},
                     {"dataset": "iris", "model": "mlp(hidden=[32])", "label": "focal(g=2)"}]


def test_labels_where_rounding_would_collide_show_exact_values():
    shown = labelled([result("cross_entropy", 0, 0.9, dataset_params={"label_noise": 0.1}),
                      result("cross_entropy", 0, 0.9, dataset_params={"label_noise": 0.1000001})])
    assert [s["dataset"] for s in shown] == ["iris(label_noise=0.1)", "iris(label_noise=0.1000001)"]


def test_a_users_file_is_named_and_two_files_need_no_hash():
    rows = [result("cross_entropy", 0, 0.9, dataset="csv", dataset_params={"path": f"/data/{name}.csv"},
                   inputs={"dataset.path": digest}) for name, digest in (("iris", "1" * 64), ("wine", "2" * 64))]
    assert labelled(rows) == [{"dataset": "csv(iris.csv)", "label": "cross_entropy"},
                              {"dataset": "csv(wine.csv)", "label": "cross_entropy"}]


def test_two_files_of_one_name_are_told_apart_by_their_paths():
    rows = [result("cross_entropy", 0, 0.9, dataset="csv", dataset_params={"path": f"/{folder}/iris.csv"},
                   inputs={"dataset.path": digest}) for folder, digest in (("a", "1" * 64), ("b", "2" * 64))]
    assert [s["dataset"] for s in labelled(rows)] == ["csv(/a/iris.csv)", "csv(/b/iris.csv)"]


def test_labels_are_unique_on_random_grids():
    rng = random.Random(7)
    for _ in range(20):
        results = []
        for _ in range(rng.randint(2, 10)):
            config, label = random_config(rng)
            results.append(result(label, config["seed"], 0.9, dataset=config["dataset"]["name"],
                                  dataset_params={k: v for k, v in config["dataset"].items() if k != "name"},
                                  model=config["model"]["name"], model_params={"hidden": config["model"]["hidden"]},
                                  epochs=config["train"]["epochs"], inputs=config["inputs"]))
        comparison = compare_results(results)
        shown = [tuple(sorted(r.label.items())) for r in comparison.rows]
        assert len(shown) == len(set(shown)) == len({r.key for r in comparison.rows})


def test_train_metrics_are_columns_and_train_settings_stay_the_config_s():
    from losszoo.comparison.table import compare_results, lookup

    runs = [result("a", s, 0.9 + 0.01 * s) for s in range(3)]
    for r in runs:
        r["metrics"]["train"] = {"accuracy": 0.99, "nll": 0.05}
    assert lookup(runs[0], "train.nll") == 0.05 and lookup(runs[0], "train.epochs") == 10
    comparison = compare_results(runs, ["train.nll", "accuracy"])
    assert comparison.rows[0].cells["train.nll"].mean == pytest.approx(0.05)
    assert comparison.rows[0].cells["test.accuracy"].n == 3
    from losszoo.comparison.keys import higher_is_better, value_range

    assert higher_is_better("train.accuracy") and not higher_is_better("train.nll")
    assert value_range("train.accuracy") == (0.0, 1.0)  # its interval stays within [0, 1] like test's
