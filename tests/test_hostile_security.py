"""Issue 11, security: nothing runs that the user did not ask for.

- Run folders are data: a result.json or config.yaml that names plugins
  (files or modules) never causes an import in `compare` or `landscape`;
  plugins come from a recipe or an explicit ``--plugins``. `compare` still
  ranks a plugin's metric the way its runs recorded (``higher_is_better``).
- A recipe cannot exhaust the machine: alias bombs, merge-key bombs, deep
  nesting and Python tags fail at once (exit 2, file:line), in a file or
  through ``--set``; merge keys with overrides work.
- User text is printed literally: no Rich markup, no emoji codes.
- Files honour the umask.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from test_hostile_faults import flat, invoke, train_into, write

from losszoo.registry import LOSSES

TINY = {"experiment": "tiny", "dataset": "iris", "losses": ["cross_entropy", "focal"], "seeds": [0, 1],
        "train": {"epochs": 2, "batch_size": 32}}


def assert_clean_exit(outcome, code: int) -> None:
    assert outcome.exit_code == code, outcome.output
    assert "Traceback" not in outcome.output
    assert "(set LOSSZOO_DEBUG=1" not in outcome.output, outcome.output  # never the catch-all


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A runs folder with experiment `tiny`: 2 losses x 2 seeds on iris, 2 epochs."""
    return train_into(tmp_path_factory.mktemp("trained"), TINY)


# --- run files never cause imports --------------------------------------------------------------


EVIL = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"


@pytest.fixture
def poisoned(trained, tmp_path, monkeypatch) -> tuple[Path, Path, str]:
    """A copy of `trained` whose result.json and config.yaml files name a plugin file (absolute and
    relative) and an importable module, each of which would leave a marker file when imported."""
    import shutil

    marker = tmp_path / "MARKER"
    module = f"losszoo_evil_{os.getpid()}"
    (tmp_path / "evil.py").write_text(EVIL.format(marker=str(marker)))
    (tmp_path / f"{module}.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # where a relative "evil.py" would resolve
    root = tmp_path / "runs"
    shutil.copytree(trained, root)
    plugins = [str(tmp_path / "evil.py"), "evil.py", module]
    for result_file in root.rglob("result.json"):
        result = json.loads(result_file.read_text())
        result["config"]["plugins"] = plugins
        result["plugins"] = plugins
        result_file.write_text(json.dumps(result))
        config = result_file.parent / "config.yaml"
        config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "plugins": plugins}))
    return root, marker, module


def test_compare_never_imports_what_a_run_names(poisoned):
    root, marker, module = poisoned
    for fmt in ("table", "json", "csv", "md"):
        outcome = invoke("compare", "--runs-dir", root, "--format", fmt)
        assert_clean_exit(outcome, 0)
    assert not marker.exists()
    assert module not in sys.modules


@pytest.mark.slow
def test_landscape_never_imports_what_a_run_names(poisoned):
    root, marker, module = poisoned
    run = next(p.parent for p in sorted(root.rglob("result.json")))
    outcome = invoke("landscape", run, "--runs-dir", root, "--budget", "1", "--probe", "16")
    assert_clean_exit(outcome, 0)
    assert not marker.exists()
    assert module not in sys.modules


def test_explicit_plugins_are_imported_and_listed(tmp_path, monkeypatch):
    """--plugins is the way in: list and show see a plugin's loss only when asked to load it."""
    name = f"hostile_probe_{os.getpid()}"
    (tmp_path / "mine.py").write_text(textwrap.dedent(f"""
        import torch.nn.functional as F
        import losszoo

        @losszoo.register_loss("{name}", input="logits", family="custom",
                               summary="cross-entropy on logits[batch, classes] [bold]as is[/bold] :x:")
        def {name}(logits, labels):
            return F.cross_entropy(logits, labels)
        """))
    monkeypatch.chdir(tmp_path)
    try:
        assert name not in invoke("list").output
        listed = invoke("list", "--plugins", "mine.py")
        assert_clean_exit(listed, 0)
        assert name in listed.output
        shown = invoke("show", name, "--plugins", "mine.py")
        assert_clean_exit(shown, 0)
        assert "logits[batch, classes] [bold]as is[/bold] :x:" in flat(shown)  # literally, markup and emoji off
    finally:
        if name in LOSSES:
            LOSSES.remove(name)


def _result(label: str, seed: int, value: float, metric: str, higher: bool) -> dict:
    """A result.json as the runner writes it, for a metric no registry knows."""
    from losszoo.spec import configuration_id

    config = {"experiment": "plug", "dataset": {"name": "iris", "test_fraction": 0.2},
              "model": {"name": "mlp"}, "loss": {"name": label}, "seed": seed,
              "train": {"epochs": 3, "batch_size": 32, "device": "cpu"}, "metrics": [metric],
              "select_by": f"val.{metric}", "inputs": {}, "plugins": ["gone.py"]}
    run_id = f"{label}-{seed}"
    return {"run_id": run_id, "experiment": "plug", "status": "completed", "dataset": "iris", "model": "mlp",
            "loss": config["loss"], "label": label, "seed": seed, "config_hash": run_id,
            "configuration_id": configuration_id(config),
            "metrics": {"val": {metric: value}, "test": {metric: value}}, "higher_is_better": {metric: higher},
            "best_epoch": 3, "epochs_run": 3, "train_seconds": 1.0, "samples_per_second": 1, "n_parameters": 1,
            "versions": {}, "provenance": {}, "error": None, "position": 0, "config": config}


@pytest.mark.parametrize("higher", [False, True])
def test_compare_ranks_a_plugin_metric_by_the_direction_its_runs_recorded(tmp_path, higher):
    metric = "my_plugin_error"
    root = tmp_path / "runs"
    for label, values in (("low", [0.10, 0.11, 0.12]), ("high", [0.50, 0.52, 0.51])):
        for seed, value in enumerate(values):
            folder = root / "plug" / f"{label}-{seed}"
            folder.mkdir(parents=True)
            (folder / "result.json").write_text(json.dumps(_result(label, seed, value, metric, higher)))
    outcome = invoke("compare", "--runs-dir", root, "--metric", metric, "--format", "json")
    assert_clean_exit(outcome, 0)
    rows = {row["label"]: row for row in json.loads(outcome.stdout)["rows"]}
    best = "high" if higher else "low"
    assert rows[best]["best"] and not rows["low" if higher else "high"]["best"]


def test_a_result_that_names_another_folder_is_skipped_and_never_followed(tmp_path):
    """A shared result.json with run_id '../../secret' must not make `report` read (and embed) files there."""
    root = tmp_path / "runs"
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "private.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    for seed, value in enumerate([0.1, 0.2, 0.3]):
        honest = _result("low", seed, value, "my_plugin_error", False)
        folder = root / "plug" / honest["run_id"]
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(honest))
    hostile = {**_result("high", 0, 0.5, "my_plugin_error", False), "run_id": "../../secret"}
    (root / "plug" / "high-0").mkdir()
    (root / "plug" / "high-0" / "result.json").write_text(json.dumps(hostile))
    outcome = invoke("report", "plug", "--runs-dir", root, "-o", tmp_path / "report.html")
    assert_clean_exit(outcome, 0)
    assert "names run '../../secret', not its folder" in flat(outcome)
    assert "private.png" not in (tmp_path / "report.html").read_text()


def test_a_renamed_experiment_folder_is_read_where_it_lies(tmp_path):
    root = tmp_path / "runs"
    for seed, value in enumerate([0.1, 0.2, 0.3]):
        result = _result("low", seed, value, "my_plugin_error", False)
        folder = root / "renamed" / result["run_id"]  # written as experiment "plug", then moved
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(result))
        (folder / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val": {"my_plugin_error": value}}) + "\n")
    outcome = invoke("compare", "renamed", "--runs-dir", root, "--format", "json")
    assert_clean_exit(outcome, 0)
    from losszoo.training.store import iter_results

    assert {r["experiment"] for r in iter_results(root)[0]} == {"renamed"}


# --- a recipe cannot exhaust the machine ---------------------------------------------------------


def _bomb(levels: int = 9, width: int = 9) -> list[str]:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return lines


def _quick(outcome_of, limit: float = 10.0):
    start = time.monotonic()
    outcome = outcome_of()
    assert time.monotonic() - start < limit, "the loader took too long"
    return outcome


def test_a_billion_laughs_recipe_fails_at_once(tmp_path):
    text = "\n".join(["x-" + line for line in _bomb()]) + "\ndataset: iris\nlosses: [cross_entropy]\n"
    assert len(text) < 1000
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    outcome = _quick(lambda: invoke("train", path, "--dry-run"))
    assert_clean_exit(outcome, 2)
    assert "bomb.yaml:" in outcome.output and "expands to more than" in outcome.output


def test_a_billion_laughs_through_set_fails_at_once(tmp_path):
    path = write(tmp_path, "dataset: iris\nlosses: [cross_entropy]\n")
    value = "{" + ", ".join(_bomb()) + "}"
    for key in ("train", "x-bomb", "losses[0]"):
        outcome = _quick(lambda key=key: invoke("train", path, "--dry-run", "--set", f"{key}={value}"))
        assert_clean_exit(outcome, 2)
        assert "--set" in outcome.output and "expands to more than" in outcome.output


def test_a_merge_key_bomb_fails_at_once(tmp_path):
    lines = ["x-m0: &m0 {a: 1, b: 2}"]
    lines += [f"x-m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}], k{i}: 1}}" for i in range(1, 10)]
    path = write(tmp_path, "\n".join(lines) + "\ndataset: iris\nlosses: [cross_entropy]\n")
    outcome = _quick(lambda: invoke("train", path, "--dry-run"))
    assert_clean_exit(outcome, 2)
    assert "expands to more than" in outcome.output


@pytest.mark.parametrize("text", [
    "x-a: &a [*a]\ndataset: iris\n",  # refers to itself
    "x-deep: " + "[" * 5000 + "]" * 5000 + "\ndataset: iris\nlosses: [cross_entropy]\n",
    "x-deep: " + "{a: " * 3000 + "1" + "}" * 3000 + "\ndataset: iris\nlosses: [cross_entropy]\n",
    "x-deep: " + "[" * 5000 + "\n",  # unclosed as well
], ids=["recursive alias", "deep lists", "deep mappings", "deep and unclosed"])
def test_self_reference_and_deep_nesting_fail_cleanly(tmp_path, text):
    path = write(tmp_path, text)
    outcome = _quick(lambda: invoke("train", path, "--dry-run"))
    assert_clean_exit(outcome, 2)
    assert "recipe.yaml" in outcome.output


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!binary aGVsbG8=",
    "!!set {{a: null}}",
    "!!omap [{{a: 1}}]",
    "!custom thing",
])
def test_tags_are_refused_and_never_run(tmp_path, tag):
    marker = tmp_path / "MARKER"
    path = write(tmp_path, f"dataset: iris\nlosses: [cross_entropy]\nx-tagged: {tag.format(marker=marker)}\n")
    outcome = invoke("train", path, "--dry-run")
    assert_clean_exit(outcome, 2)
    assert "recipe.yaml:3" in outcome.output
    assert not marker.exists()
    outcome = invoke("train", write(tmp_path, "dataset: iris\nlosses: [cross_entropy]\n", "plain.yaml"),
                     "--dry-run", "--set", f"x-tagged={tag.format(marker=marker)}")
    assert outcome.exit_code in (0, 2) and "Traceback" not in outcome.output
    assert not marker.exists()


def test_a_date_stays_text(tmp_path):
    path = write(tmp_path, "experiment: 2024-01-01\ndataset: iris\nlosses: [cross_entropy]\n")
    outcome = invoke("train", path, "--dry-run")
    assert_clean_exit(outcome, 0)
    assert "2024-01-01" in outcome.output


def test_merge_keys_with_overrides(tmp_path):
    path = write(tmp_path, """
        x-focal: &f {name: focal, gamma: 2.0, alpha: 0.25}
        x-half: &h {gamma: 0.5}
        dataset: iris
        losses:
          - *f
          - {<<: *f, gamma: 1.0}
          - {<<: [*h, *f]}
          - {<<: [*f, *h], alpha: 0.5}
        """)
    assert_clean_exit(invoke("train", path, "--dry-run"), 0)
    from losszoo.recipe.load import load_recipe

    losses = [(run.config["loss"]["gamma"], run.config["loss"]["alpha"]) for run in load_recipe(path).runs]
    assert losses == [(2.0, 0.25), (1.0, 0.25), (0.5, 0.25), (2.0, 0.5)]


def test_a_bad_value_is_placed_where_it_was_written_merged_or_overridden(tmp_path):
    path = write(tmp_path, """
        x-focal: &f
          name: focal
          gamma: -1
        dataset: iris
        losses:
          - {<<: *f}
          - {<<: *f, gamma: -2}
        """)
    outcome = invoke("train", path, "--dry-run")
    assert_clean_exit(outcome, 2)
    text = flat(outcome)
    assert "recipe.yaml:3 losses[0].gamma" in text  # the anchor's line: where -1 is written
    assert "recipe.yaml:7 losses[1].gamma" in text  # the override's line


# --- user text is printed literally --------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "literal"), [
    (["list", "[/x]"], 0, "'[/x]'"),
    (["list", "losses", "[/x]"], 0, "'[/x]'"),
    (["list", ":x:"], 2, "':x:'"),
    (["list", "--family", "[/x]"], 2, "'[/x]'"),
    (["list", "--family", "[bold red]x"], 2, "'[bold red]x'"),
    (["show", "[/x]"], 2, "'[/x]'"),
    (["show", ":thumbs_up:"], 2, "':thumbs_up:'"),
    (["show", "logits[batch, classes]"], 2, "logits[batch, classes]"),
    (["check", "[/x]"], 2, "[/x]"),
    (["train", "[/x].yaml"], 2, "[/x].yaml"),
    (["list", "--plugins", "[/x].py"], 2, "[/x].py"),
    (["list", "--plugins", "[/x]"], 2, "[/x]"),
])
def test_user_text_is_printed_literally(args, code, literal):
    outcome = invoke(*args)
    assert_clean_exit(outcome, code)
    assert literal in outcome.output
    assert "\u274c" not in outcome.output and "\U0001f44d" not in outcome.output  # no emoji substituted


def test_a_plugin_error_with_markup_is_printed_literally(tmp_path, monkeypatch):
    (tmp_path / "bad.py").write_text('raise ValueError("logits[batch, classes] [bold]2-D[/bold] :x: [/x]")\n')
    monkeypatch.chdir(tmp_path)
    for args in (["list", "--plugins", "bad.py"], ["show", "focal", "--plugins", "bad.py"],
                 ["compare", "--plugins", "bad.py", "--runs-dir", str(tmp_path / "runs")]):
        outcome = invoke(*args)
        assert_clean_exit(outcome, 2)
        assert "logits[batch, classes] [bold]2-D[/bold] :x: [/x]" in flat(outcome)


@pytest.mark.parametrize("folder", ["r[/x]", "r[bold]", "r:x:", "r[link=http://e.invalid]"])
def test_a_runs_folder_with_markup_in_its_name(trained, tmp_path, folder):
    import shutil

    root = tmp_path / folder
    shutil.copytree(trained, root)
    outcome = invoke("compare", "--runs-dir", root)
    assert_clean_exit(outcome, 0)
    assert str(root) in flat(outcome)
    outcome = invoke("train", write(tmp_path, yaml.safe_dump(TINY)), "--runs-dir", root)
    assert_clean_exit(outcome, 0)
    assert f"runs in {root / 'tiny'}" in flat(outcome)
    empty = tmp_path / f"empty{folder}"
    outcome = invoke("compare", "--runs-dir", empty)
    assert_clean_exit(outcome, 2)
    assert str(empty) in flat(outcome)


def test_a_recipe_in_a_folder_with_markup_in_its_name(tmp_path):
    folder = tmp_path / "[/x]:x:"  # a folder "[" holding "x]:x:"
    folder.mkdir(parents=True)
    path = write(folder, "dataset: iris\nlosses:\n  - {name: focal, gamma: -1}\n")
    outcome = invoke("train", path, "--dry-run")
    assert_clean_exit(outcome, 2)
    assert f"{path}:3 losses[0].gamma" in flat(outcome)


# --- files honour the umask ----------------------------------------------------------------------


@pytest.fixture
def umask():
    """Set the process umask for one test; the old one comes back."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o027, 0o077])
def test_atomic_writes_honour_the_umask_of_the_moment(tmp_path, umask, mask):
    from losszoo.training.store import write_atomic, write_json

    umask(mask)
    write_atomic(tmp_path / "a.bin", b"x")
    write_json(tmp_path / "b.json", {"a": 1})
    for name in ("a.bin", "b.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.json"]  # no temporary left


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_every_file_of_a_run_honours_the_umask(tmp_path, umask, mask):
    umask(mask)
    recipe = write(tmp_path, yaml.safe_dump({**TINY, "losses": ["cross_entropy"], "seeds": [0]}))
    root = tmp_path / "runs"
    outcome = invoke("train", recipe, "--runs-dir", root)
    assert_clean_exit(outcome, 0)
    files = [p for p in (root / "tiny").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"result.json", "config.yaml", "metrics.jsonl", "checkpoint.pt"} <= names
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~mask, file


MARGINS, SCALES = [x / 100 for x in range(1, 100)], [float(x) for x in range(1, 100)]


@pytest.mark.parametrize("text", [
    # 99 x 99 variants of one loss x 30 seeds: 294,030 runs from a 1 kB recipe
    f"dataset: iris\nlosses:\n  - {{name: arcface, margin: {MARGINS}, scale: {SCALES}}}\nseeds: {list(range(30))}\n",
    # the lists of one loss alone: 19,602 combinations
    f"dataset: iris\nlosses:\n  - {{name: arcface, margin: {MARGINS}, scale: {SCALES}, easy_margin: [true, false]}}\n",
    # a sweep: block of 10,000 points times two losses
    f"dataset: iris\nlosses: [cross_entropy, focal]\nsweep:\n  train.optimizer.lr: {MARGINS + [1.0]}\n"
    f"  train.optimizer.weight_decay: {[x / 1000 for x in range(100)]}\n",
], ids=["loss lists x seeds", "loss lists", "sweep x losses"])
def test_a_recipe_that_expands_to_too_many_runs_fails_at_once(tmp_path, text):
    path = write(tmp_path, text)
    outcome = _quick(lambda: invoke("train", path, "--dry-run"), limit=5.0)
    assert_clean_exit(outcome, 2)
    assert "at most 10,000" in outcome.output
