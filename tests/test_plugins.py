"""User plugins: losses, metrics, datasets and models registered from a user's
file, module or installed package, and what losszoo does when one is broken.

Every plugin here is a file the test writes into its own temporary folder.
Registrations are process-wide, so an autouse fixture forgets every name, loaded
plugin and plugin module a test added.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import losszoo
from losszoo import InvalidParameterError, LosszooError, RecipeError, registry
from losszoo import plugins as plugin_loader
from losszoo.cli.main import app
from losszoo.recipe.load import load_recipe
from losszoo.registry import DATASETS, LOSSES, METRICS, MODELS
from losszoo.testing import run_checks

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
REGISTRIES = (LOSSES, METRICS, DATASETS, MODELS)
cli = CliRunner()


def invoke(*args: str, env: dict | None = None):
    return cli.invoke(app, [str(a) for a in args], env=env)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of ``path`` holding ``needle``, so tests do not hard-code line numbers."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.fixture(autouse=True)
def _forget_plugins():
    """Undo every registration, loaded-plugin mark and plugin module a test leaves behind."""
    before = {r.kind: set(r.names()) for r in REGISTRIES}  # names() also loads the built-in catalogue
    loaded = set(plugin_loader._loaded)
    modules = set(sys.modules)
    yield
    for r in REGISTRIES:
        for name in set(r.names()) - before[r.kind]:
            r.remove(name)
    for key in set(plugin_loader._loaded) - loaded:
        del plugin_loader._loaded[key]
    for name in set(sys.modules) - modules:
        if name.startswith(("losszoo_plugin_", "tp_")):
            del sys.modules[name]


# A correct loss with a bounded hyperparameter, used by several tests.
GOOD_LOSS = '''
import torch
import torch.nn.functional as F
import losszoo
from losszoo import Param

@losszoo.register_loss("{name}", input="logits", family="custom",
                       params=[Param("w", 0.1, "weight of the logit penalty", ge=0.0, le=1.0)])
def {name}(logits, labels, w):
    return F.cross_entropy(logits, labels) + w * logits.pow(2).mean()
'''


def recipe_file(folder: Path, **keys) -> Path:
    """A small, fast recipe (iris, one seed, two epochs) with ``keys`` on top."""
    data = {"experiment": "plugins", "dataset": "iris", "model": {"name": "mlp", "hidden": [16]},
            "seeds": [0], "train": {"epochs": 2, "batch_size": 16}}
    data.update(keys)
    path = folder / "recipe.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))  # JSON is YAML, one key per line
    return path


# --- the file route ------------------------------------------------------------------------------


def test_a_plugin_file_beside_the_recipe_registers_its_loss_with_its_origin(tmp_path):
    write(tmp_path / "tp_file_losses.py", GOOD_LOSS.format(name="tp_file_loss"))
    recipe = recipe_file(tmp_path, plugins=["tp_file_losses.py"],
                         losses=["cross_entropy", {"name": "tp_file_loss", "w": 0.5}])

    spec = load_recipe(recipe)

    entry = LOSSES.get("tp_file_loss")
    assert entry.origin == "file tp_file_losses.py"
    assert (entry.family, entry.input, entry.target_kind) == ("custom", "logits", "labels")
    assert [r.config["loss"]["name"] for r in spec.runs] == ["cross_entropy", "tp_file_loss"]
    assert spec.runs[1].config["loss"] == {"name": "tp_file_loss", "w": 0.5}
    assert spec.runs[1].label == "tp_file_loss(w=0.5)"
    assert spec.plugins == ["tp_file_losses.py"]
    # The Param bounds hold for the user's loss as for a built-in one, in Python and in a recipe.
    with pytest.raises(InvalidParameterError, match=r"tp_file_loss\.w: must be in \[0, 1\], got 1.5"):
        losszoo.create_loss("tp_file_loss", w=1.5, num_classes=3)
    bad = recipe_file(tmp_path, plugins=["tp_file_losses.py"], losses=["cross_entropy", {"name": "tp_file_loss",
                                                                                          "w": -1}])
    with pytest.raises(RecipeError, match=r"losses\[1\]\.w: must be in \[0, 1\], got -1"):
        load_recipe(bad)


def test_a_plain_function_loss_is_checked_for_labels_and_gives_its_value(tmp_path):
    import torch
    import torch.nn.functional as F

    write(tmp_path / "tp_fn_losses.py", GOOD_LOSS.format(name="tp_fn_loss"))
    plugin_loader.load_plugin("tp_fn_losses.py", tmp_path)
    loss = losszoo.create_loss("tp_fn_loss", w=0.25, num_classes=3)
    logits, labels = torch.randn(5, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 1, 0])

    expected = F.cross_entropy(logits, labels) + 0.25 * (logits**2).mean()
    torch.testing.assert_close(loss(logits, labels), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="label 3 is outside"):
        loss(logits, torch.tensor([0, 1, 2, 3, 0]))


def test_a_plugin_loss_and_metric_train_beside_built_ins_and_the_metric_picks_the_epoch(tmp_path):
    write(tmp_path / "tp_train_plugin.py", GOOD_LOSS.format(name="tp_train_loss") + '''

@losszoo.register_metric("tp_error_rate", input="logits", task="classification", higher_is_better=False)
def tp_error_rate(logits, labels):
    return (logits.argmax(1) != labels).double().mean().item()
''')
    recipe = recipe_file(tmp_path, plugins=["tp_train_plugin.py"], losses=["cross_entropy", "tp_train_loss"],
                         metrics=["accuracy", "tp_error_rate"], select_by="val.tp_error_rate",
                         train={"epochs": 3, "batch_size": 16})
    runs = tmp_path / "runs"

    results = losszoo.train(recipe, runs_dir=runs)

    assert [r["status"] for r in results] == ["completed", "completed"], [r["error"] for r in results]
    assert METRICS.get("tp_error_rate").origin == "file tp_train_plugin.py"
    for result in results:
        on_disk = json.loads((runs / "plugins" / result["run_id"] / "result.json").read_text())
        assert on_disk["config"]["select_by"] == "val.tp_error_rate"
        for split in ("val", "test"):
            metrics = on_disk["metrics"][split]
            assert set(metrics) == {"accuracy", "tp_error_rate"}
            # The user's metric was computed on the same outputs as the built-in one.
            assert metrics["tp_error_rate"] == pytest.approx(1 - metrics["accuracy"], abs=1e-9)
        # The best epoch is the one with the lowest val error rate (lower is better for this metric).
        epochs = [json.loads(line) for line in (runs / "plugins" / result["run_id"] / "metrics.jsonl").open()]
        errors = [e["val"]["tp_error_rate"] for e in epochs]
        assert on_disk["best_epoch"] == 1 + errors.index(min(errors))
        assert on_disk["metrics"]["val"]["tp_error_rate"] == min(errors)


# --- the module route ----------------------------------------------------------------------------


def test_a_module_on_the_path_registers_with_module_origin(tmp_path, monkeypatch):
    write(tmp_path / "mods" / "tp_pkg" / "__init__.py", "")
    write(tmp_path / "mods" / "tp_pkg" / "losses.py", GOOD_LOSS.format(name="tp_module_loss") + '''

@losszoo.register_metric("tp_module_metric", input="logits", higher_is_better=True)
def tp_module_metric(logits, labels):
    return 0.0
''')
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    recipe = recipe_file(tmp_path / "elsewhere", plugins=["tp_pkg.losses"], losses=["tp_module_loss"])

    spec = load_recipe(recipe)

    assert spec.runs[0].config["loss"] == {"name": "tp_module_loss", "w": 0.1}
    assert LOSSES.get("tp_module_loss").origin == "module tp_pkg.losses"
    assert METRICS.get("tp_module_metric").origin == "module tp_pkg.losses"
    load_recipe(recipe)  # a second read reuses the loaded module: no "registered twice"


def test_list_shows_each_entry_origin(tmp_path, monkeypatch):
    write(tmp_path / "tp_list_file.py", GOOD_LOSS.format(name="tp_list_from_file"))
    write(tmp_path / "mods" / "tp_list_module.py", GOOD_LOSS.format(name="tp_list_from_module") + '''

@losszoo.register_metric("tp_list_metric", input="logits", higher_is_better=True)
def tp_list_metric(logits, labels):
    return 0.0
''')
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    plugin_loader.load_plugins(["tp_list_file.py", "tp_list_module"], tmp_path)

    losses = invoke("list", "losses", "tp_list_*")
    metrics = invoke("list", "metrics", "tp_list_*")
    builtin = invoke("list", "losses", "cross_entropy")

    assert losses.exit_code == 0, losses.output
    rows = {line.split()[1]: line for line in losses.output.splitlines() if "tp_list_from" in line}
    assert "file tp_list_file.py" in rows["tp_list_from_file"]
    assert "module tp_list_module" in rows["tp_list_from_module"]
    assert metrics.exit_code == 0 and "module tp_list_module" in metrics.output
    assert builtin.exit_code == 0 and "built-in" in builtin.output


# --- the entry-point route -----------------------------------------------------------------------


def make_distribution(site: Path, module: str, body: str, dist: str = "tp-plugin-dist") -> Path:
    """A tiny installed distribution: ``module.py`` and a dist-info offering it in ``losszoo.plugins``."""
    write(site / f"{module}.py", body)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    write(info / "entry_points.txt", f"[losszoo.plugins]\nlosses = {module}\n")
    return site


def test_an_installed_package_offers_its_loss_through_the_entry_point_group(tmp_path, monkeypatch):
    site = make_distribution(tmp_path / "site", "tp_ep_losses", GOOD_LOSS.format(name="tp_ep_loss"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)

    registry._load_installed_plugins()

    assert LOSSES.get("tp_ep_loss").origin == "package tp-plugin-dist"
    listed = invoke("list", "losses", "tp_ep_*")
    assert listed.exit_code == 0, listed.output
    assert "package tp-plugin-dist" in listed.output
    # A recipe uses it without `plugins:`, and naming the module there too does not import it twice.
    load_recipe(recipe_file(tmp_path, losses=["tp_ep_loss"]))
    load_recipe(recipe_file(tmp_path, losses=["tp_ep_loss"], plugins=["tp_ep_losses"]))
    registry._load_installed_plugins()  # once per process
    assert LOSSES.get("tp_ep_loss").origin == "package tp-plugin-dist"


def run_losszoo(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``losszoo ARGS`` in a fresh process that sees the distributions in ``site``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "LOSSZOO_DEBUG": ""}
    return subprocess.run([sys.executable, "-m", "losszoo.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_entry_points_load_the_first_time_a_fresh_process_reads_the_registry(tmp_path):
    site = make_distribution(tmp_path / "site", "tp_ep_fresh", GOOD_LOSS.format(name="tp_ep_fresh_loss"))

    done = run_losszoo(["list", "losses", "tp_ep_*"], site, tmp_path)

    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "tp_ep_fresh_loss" in line)
    assert "package tp-plugin-dist" in row


def test_a_broken_installed_plugin_is_one_message_and_exit_2(tmp_path):
    site = make_distribution(tmp_path / "site", "tp_ep_broken", """
        import losszoo

        SETTINGS = {}
        threshold = SETTINGS["threshold"]
    """)
    line = line_of(site / "tp_ep_broken.py", 'SETTINGS["threshold"]')

    done = run_losszoo(["list", "losses"], site, tmp_path)

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    message = done.stderr.strip()
    assert "tp_ep_broken" in message and "KeyError" in message
    assert f"tp_ep_broken.py:{line}" in message.replace("\n", "")


# --- broken plugins: exit 2 with one clear message -----------------------------------------------


def dry_run(recipe: Path):
    return invoke("train", recipe, "--dry-run", "--runs-dir", recipe.parent / "runs")


@pytest.mark.parametrize(
    ("plugin", "words"),
    [
        ("tp_no_such_file.py", "plugin tp_no_such_file.py: no such file"),
        ("tp_no_such_module", "plugin tp_no_such_module: no such module or file"),
        ("tp_no_such_package.losses", "plugin tp_no_such_package.losses: no such module or file"),
    ],
)
def test_a_missing_plugin_is_a_recipe_error(tmp_path, plugin, words):
    recipe = recipe_file(tmp_path, plugins=[plugin], losses=["cross_entropy"])

    outcome = dry_run(recipe)

    assert outcome.exit_code == 2, outcome.output
    assert words in outcome.output
    assert f"{recipe}:" in outcome.output and "plugins" in outcome.output
    assert "Traceback" not in outcome.output


def test_a_plugin_that_fails_to_import_shows_the_users_file_and_line_only(tmp_path):
    plugin = write(tmp_path / "tp_raising.py", """
        import losszoo


        def scale_of(name):
            return {"small": 0.1}[name]


        SCALE = scale_of("large")
    """)
    recipe = recipe_file(tmp_path, plugins=["tp_raising.py"], losses=["cross_entropy"])

    outcome = dry_run(recipe)

    assert outcome.exit_code == 2, outcome.output
    text = " ".join(outcome.output.split())  # Rich may wrap the line
    assert "plugin tp_raising.py failed to import: KeyError: 'large'" in text
    # Both of the user's frames, innermost last; none of losszoo's or importlib's.
    assert f"(at {plugin}:{line_of(plugin, 'SCALE = ')}; {plugin}:{line_of(plugin, 'return {')})" in text
    assert "importlib" not in text and "losszoo/" not in text and "Traceback" not in text


def test_a_module_plugin_that_fails_to_import_shows_its_file_and_line(tmp_path, monkeypatch):
    module = write(tmp_path / "mods" / "tp_failing_module.py", """
        import losszoo
        import torch

        WEIGHTS = torch.tensor([1.0, 2.0]).reshape(3)
    """)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))

    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe_file(tmp_path, plugins=["tp_failing_module"], losses=["cross_entropy"]))

    message = str(caught.value)
    assert "plugin tp_failing_module failed to import: RuntimeError" in message
    assert f"{module}:{line_of(module, 'WEIGHTS')}" in message


def test_a_plugin_with_a_syntax_error_names_its_file_and_line(tmp_path):
    write(tmp_path / "tp_syntax.py", """
        import losszoo

        def broken(:
            pass
    """)

    outcome = dry_run(recipe_file(tmp_path, plugins=["tp_syntax.py"], losses=["cross_entropy"]))

    assert outcome.exit_code == 2, outcome.output
    assert "SyntaxError" in outcome.output
    assert "tp_syntax.py:3" in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize(
    ("registration", "words"),
    [
        ('@losszoo.register_loss("cross_entropy", input="logits")\ndef f(x, y):\n    return x.sum()',
         "loss 'cross_entropy' is registered twice (built-in and file tp_clash.py); choose another name"),
        ('@losszoo.register_metric("accuracy", input="logits", higher_is_better=True)\ndef f(x, y):\n    return 0.0',
         "metric 'accuracy' is registered twice (built-in and file tp_clash.py)"),
        ('@losszoo.register_dataset("digits", task="classification")\ndef f():\n    return None',
         "dataset 'digits' is registered twice (built-in and file tp_clash.py)"),
        ('@losszoo.register_model("mlp")\nclass F:\n    pass',
         "model 'mlp' is registered twice (built-in and file tp_clash.py)"),
    ],
    ids=["loss", "metric", "dataset", "model"],
)
def test_a_plugin_that_takes_a_built_in_name_is_refused(tmp_path, registration, words):
    write(tmp_path / "tp_clash.py", "import losszoo\n\n" + registration + "\n")
    recipe = recipe_file(tmp_path, plugins=["tp_clash.py"], losses=["cross_entropy"])

    outcome = dry_run(recipe)

    assert outcome.exit_code == 2, outcome.output
    assert words in " ".join(outcome.output.split())
    assert outcome.output.count("error") == 1  # one message
    kind, name = words.split()[:2]
    assert {"loss": LOSSES, "metric": METRICS, "dataset": DATASETS, "model": MODELS}[kind].get(
        name.strip("'")).origin == "built-in"


def test_two_plugins_that_register_one_name_are_refused_naming_both(tmp_path, monkeypatch):
    write(tmp_path / "tp_first.py", GOOD_LOSS.format(name="tp_twice"))
    write(tmp_path / "mods" / "tp_second.py", GOOD_LOSS.format(name="tp_twice"))
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))

    outcome = dry_run(recipe_file(tmp_path, plugins=["tp_first.py", "tp_second"], losses=["tp_twice"]))

    assert outcome.exit_code == 2, outcome.output
    assert ("plugin tp_second: loss 'tp_twice' is registered twice (file tp_first.py and module tp_second)"
            in " ".join(outcome.output.split()))
    assert LOSSES.get("tp_twice").origin == "file tp_first.py"


@pytest.mark.parametrize(
    ("registration", "words"),
    [
        ('@losszoo.register_loss("tp_no_input")\ndef f(x, y):\n    return x.sum()',
         "loss 'tp_no_input' must declare input= one of logits, embeddings, values, mean_var, pixel_logits, "
         "multilabel, boxes (got None)"),
        ('@losszoo.register_loss("tp_bad_input", input="pixels")\ndef f(x, y):\n    return x.sum()',
         "loss 'tp_bad_input' must declare input= one of"),
        ('@losszoo.register_metric("tp_no_direction", input="logits")\ndef f(x, y):\n    return 0.0',
         "metric 'tp_no_direction' must declare higher_is_better=True or False"),
        ('@losszoo.register_metric("tp_metric_no_input", higher_is_better=True)\ndef f(x, y):\n    return 0.0',
         "metric 'tp_metric_no_input' must declare input= one of"),
        ('@losszoo.register_loss("tp_untyped", input="logits", params={"w": None})\ndef f(x, y, w):\n'
         '    return x.sum()', "tp_untyped: cannot infer the type of parameter 'w' from None"),
        ('@losszoo.register_loss("tp_not_params", input="logits", params=["w"])\ndef f(x, y, w):\n'
         '    return x.sum()', "tp_not_params: params must be losszoo.Param objects"),
    ],
    ids=["loss-without-input", "loss-unknown-input", "metric-without-direction", "metric-without-input",
         "untyped-param", "params-not-Param"],
)
def test_a_registration_without_its_required_metadata_is_refused(tmp_path, registration, words):
    write(tmp_path / "tp_meta.py", "import losszoo\n\n" + registration + "\n")

    outcome = dry_run(recipe_file(tmp_path, plugins=["tp_meta.py"], losses=["cross_entropy"]))

    assert outcome.exit_code == 2, outcome.output
    assert f"plugin tp_meta.py: {words}" in " ".join(outcome.output.split())
    assert "Traceback" not in outcome.output
    name = words.split("'")[1] if "'" in words else words.split(":")[0]
    assert name not in LOSSES and name not in METRICS


def test_plugins_must_be_a_list_of_names(tmp_path):
    outcome = dry_run(recipe_file(tmp_path, plugins="tp_single.py", losses=["cross_entropy"]))

    assert outcome.exit_code == 2, outcome.output
    assert "plugins: must be a list of .py files or module names" in outcome.output


# --- a broken user loss fails its run, not the grid ----------------------------------------------


BROKEN_LOSSES = '''
import torch
import torch.nn.functional as F
import losszoo


@losszoo.register_loss("tp_per_sample", input="logits")
def tp_per_sample(logits, labels):
    return F.cross_entropy(logits, labels, reduction="none")  # forgot to reduce


@losszoo.register_loss("tp_nan_at_start", input="logits")
def tp_nan_at_start(logits, labels):
    return F.cross_entropy(logits, labels) * float("nan")


@losszoo.register_loss("tp_no_gradient", input="logits")
def tp_no_gradient(logits, labels):
    return F.cross_entropy(logits.detach(), labels)


@losszoo.register_loss("tp_nan_later", input="logits")
class NanLater(torch.nn.Module):
    """Fine on the first step, non-finite from the second on."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, logits, labels):
        self.calls += 1
        value = F.cross_entropy(logits, labels)
        return value if self.calls == 1 else value * float("nan")
'''


def test_a_loss_that_is_broken_on_the_first_step_fails_its_run_and_the_grid_goes_on(tmp_path):
    write(tmp_path / "tp_broken.py", BROKEN_LOSSES)
    losses = ["tp_per_sample", "tp_nan_at_start", "tp_no_gradient", "tp_nan_later", "cross_entropy"]
    recipe = recipe_file(tmp_path, plugins=["tp_broken.py"], losses=losses)
    runs = tmp_path / "runs"

    outcome = invoke("train", recipe, "--runs-dir", runs)

    assert outcome.exit_code == 1, outcome.output  # a run failed
    assert "3 of 5 runs failed" in " ".join(outcome.output.split())
    spec = load_recipe(recipe)
    results = {r.config["loss"]["name"]: json.loads((runs / "plugins" / r.run_id / "result.json").read_text())
               for r in spec.runs}
    statuses = {name: r["status"] for name, r in results.items()}
    assert statuses == {"tp_per_sample": "failed", "tp_nan_at_start": "failed", "tp_no_gradient": "failed",
                        "tp_nan_later": "diverged", "cross_entropy": "completed"}
    errors = {name: r["error"] for name, r in results.items()}
    assert "'tp_per_sample' returned shape (16,) on the first step, not a scalar" in errors["tp_per_sample"]
    assert "'tp_nan_at_start' is nan on the first step" in errors["tp_nan_at_start"]
    assert "'tp_no_gradient' returned a value without a gradient on the first step" in errors["tp_no_gradient"]
    assert "non-finite" in errors["tp_nan_later"] and "first step" not in errors["tp_nan_later"]
    assert errors["cross_entropy"] is None
    assert results["cross_entropy"]["epochs_run"] == 2 and results["cross_entropy"]["metrics"]["test"]
    for name in ("tp_per_sample", "tp_nan_at_start", "tp_no_gradient"):
        assert results[name]["metrics"] == {} and results[name]["epochs_run"] == 0


# --- losszoo check on a user's file --------------------------------------------------------------


DEFECTIVE_LOSSES = '''
import torch
import torch.nn.functional as F
import losszoo


@losszoo.register_loss("tp_detaches", input="logits")
def tp_detaches(logits, labels):
    """Cross-entropy on a detached copy: the model never learns."""
    return F.cross_entropy(logits.detach(), labels)


@losszoo.register_loss("tp_naive_softmax", input="logits")
def tp_naive_softmax(logits, labels):
    """Cross-entropy through exp(z) / sum exp(z): inf / inf = nan at large logits."""
    e = logits.exp()
    p = e / e.sum(dim=1, keepdim=True)
    return -p.gather(1, labels[:, None]).log().mean()


@losszoo.register_loss("tp_mean_is_sum", input="logits", elementwise=True)
class MeanIsSum(torch.nn.Module):
    """Per-sample cross-entropy whose 'mean' is really the sum."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, labels):
        if labels.min() < 0 or labels.max() >= logits.shape[1]:
            raise ValueError("label out of range")
        per_sample = F.cross_entropy(logits, labels, reduction="none")
        return per_sample if self.reduction == "none" else per_sample.sum()
'''

ALL_CHECKS = {
    "finite scalar", "gradients reach input and parameters", "reductions agree", "gradcheck (float64)",
    "extreme inputs stay finite", "bf16 autocast", "labels out of range raise", "hyperparameter bounds enforced",
}


@pytest.mark.parametrize(
    ("name", "must_fail", "must_pass"),
    [
        ("tp_detaches", {"gradients reach input and parameters", "finite scalar"},
         {"reductions agree", "labels out of range raise", "hyperparameter bounds enforced"}),
        ("tp_naive_softmax", {"extreme inputs stay finite"}, ALL_CHECKS - {"extreme inputs stay finite"}),
        ("tp_mean_is_sum", {"reductions agree"}, ALL_CHECKS - {"reductions agree"}),
    ],
)
def test_check_catches_each_planted_defect(tmp_path, name, must_fail, must_pass):
    plugin = write(tmp_path / "tp_defects.py", DEFECTIVE_LOSSES)

    outcome = invoke("check", f"{plugin}:{name}")

    assert outcome.exit_code == 1, outcome.output
    rows = {}
    for line in outcome.output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 3 and cells[0] in ALL_CHECKS:
            rows[cells[0]] = cells[1]
    assert set(rows) == ALL_CHECKS, outcome.output
    failed = {check for check, result in rows.items() if result == "FAIL"}
    assert must_fail <= failed, outcome.output
    assert not failed & must_pass, outcome.output
    summary = " ".join(outcome.output.split())
    assert f"checks failed for '{name}'" in summary
    for check in must_fail:
        assert check in summary.split(f"for '{name}':")[1]


def test_check_details_say_what_is_wrong(tmp_path):
    plugin_loader.load_plugin(str(write(tmp_path / "tp_defects.py", DEFECTIVE_LOSSES)))

    detail = {name: {c.name: c.detail for c in run_checks(name) if not c.passed}
              for name in ("tp_detaches", "tp_naive_softmax", "tp_mean_is_sum")}

    assert "no gradient" in detail["tp_detaches"]["finite scalar"]
    assert "logits of +-1e4: value nan" in detail["tp_naive_softmax"]["extreme inputs stay finite"]
    assert "mean != sum / n (n = 8)" in detail["tp_mean_is_sum"]["reductions agree"]


def test_check_passes_a_correct_user_loss_and_shows_its_origin(tmp_path, monkeypatch):
    write(tmp_path / "tp_good.py", GOOD_LOSS.format(name="tp_good_loss"))
    monkeypatch.chdir(tmp_path)  # FILE.py is relative to where the command runs

    outcome = invoke("check", "tp_good.py:tp_good_loss")

    assert outcome.exit_code == 0, outcome.output
    assert "all 8 checks passed" in outcome.output
    assert "(file tp_good.py)" in outcome.output
    assert "FAIL" not in outcome.output


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("tp_nowhere.py:tp_x", "tp_nowhere.py: no such file"),
        ("tp_nowhere.txt:tp_x", "expected FILE.py:NAME"),
        ("tp_good.py:tp_not_registered", "unknown loss 'tp_not_registered'"),
    ],
)
def test_check_of_a_missing_file_or_name_is_a_usage_error(tmp_path, monkeypatch, target, words):
    write(tmp_path / "tp_good.py", GOOD_LOSS.format(name="tp_good_loss2"))
    monkeypatch.chdir(tmp_path)

    outcome = invoke("check", target)

    assert outcome.exit_code == 2, outcome.output
    assert words in " ".join(outcome.output.split())
    assert "Traceback" not in outcome.output


# --- the example: recipes/custom-loss.yaml and recipes/my_losses.py -----------------------------


EXAMPLE = RECIPES / "my_losses.py"


@pytest.fixture
def example_plugin():
    """recipes/my_losses.py not yet loaded, whoever loaded it before in this process."""

    def forget():
        for r in REGISTRIES:
            for entry in r.entries():
                if entry.origin == f"file {EXAMPLE.name}":
                    r.remove(entry.name)
        for key in [k for k in plugin_loader._loaded if k.endswith(EXAMPLE.name)]:
            del plugin_loader._loaded[key]

    forget()
    yield EXAMPLE
    forget()


def test_the_example_loss_passes_check(example_plugin):
    outcome = invoke("check", f"{example_plugin}:ce_logit_squeeze")

    assert outcome.exit_code == 0, outcome.output
    assert "all 8 checks passed" in outcome.output
    assert "reductions agree" in outcome.output and "mean = sum / 8" in outcome.output


def test_the_example_recipe_compares_the_users_loss_with_cross_entropy(example_plugin):
    spec = load_recipe(RECIPES / "custom-loss.yaml")

    assert spec.plugins == ["my_losses.py"]
    names = {r.config["loss"]["name"] for r in spec.runs}
    assert "cross_entropy" in names
    users = [LOSSES.get(n) for n in names if n != "cross_entropy"]
    assert users and all(e.origin == "file my_losses.py" for e in users)
    assert sorted({r.seed for r in spec.runs}) == [0, 1, 2]
    bounded = [p for e in users for p in e.params if p.bounds()]
    assert bounded, "the example loss declares Param bounds"
    user_metrics = [m for m in spec.runs[0].config["metrics"] if METRICS.get(m).origin == "file my_losses.py"]
    assert user_metrics, "the example recipe reports the example metric"
    loss = users[0]
    too_big = bounded[0].le + 1 if bounded[0].le is not None else bounded[0].lt + 1
    with pytest.raises(RecipeError, match=rf"losses\[\d\]\.{bounded[0].name}: must be"):
        load_recipe(RECIPES / "custom-loss.yaml", [f"losses[1]={{name: {loss.name}, {bounded[0].name}: {too_big}}}"])


def test_the_example_recipe_trains_and_reports_the_example_metric(example_plugin, tmp_path):
    results = losszoo.train(RECIPES / "custom-loss.yaml", ["seeds=[0]", "train.epochs=2"], runs_dir=tmp_path)

    assert [r["status"] for r in results] == ["completed"] * len(results), [r["error"] for r in results]
    for result in results:
        assert 0 <= result["metrics"]["test"]["top2_accuracy"] <= 1
        assert result["metrics"]["test"]["top2_accuracy"] >= result["metrics"]["test"]["accuracy"]


# --- the loader and the check, on the problems they once had ------------------------------------


def test_two_recipes_in_two_folders_each_load_their_own_plugin_file(tmp_path):
    write(tmp_path / "a" / "tp_same_name.py", GOOD_LOSS.format(name="tp_from_a"))
    write(tmp_path / "b" / "tp_same_name.py", GOOD_LOSS.format(name="tp_from_b"))

    load_recipe(recipe_file(tmp_path / "a", plugins=["tp_same_name.py"], losses=["tp_from_a"]))
    load_recipe(recipe_file(tmp_path / "b", plugins=["tp_same_name.py"], losses=["tp_from_b"]))

    assert "tp_from_b" in LOSSES


def test_one_file_named_two_ways_is_loaded_once(tmp_path):
    plugin = write(tmp_path / "tp_two_ways.py", GOOD_LOSS.format(name="tp_two_ways_loss"))

    plugin_loader.load_plugin("tp_two_ways.py", tmp_path)
    plugin_loader.load_plugin(str(plugin))  # what `losszoo check FILE.py:NAME` does

    assert LOSSES.get("tp_two_ways_loss").origin == "file tp_two_ways.py"


def test_a_plugin_fixed_after_a_failed_import_loads_in_the_same_process(tmp_path):
    plugin = write(tmp_path / "tp_half.py", GOOD_LOSS.format(name="tp_half_first") + '''

@losszoo.register_loss("tp_half_second")
def tp_half_second(logits, labels):
    return logits.sum()
''')
    with pytest.raises(LosszooError, match="must declare input="):
        plugin_loader.load_plugin("tp_half.py", tmp_path)

    plugin.write_text(plugin.read_text().replace('register_loss("tp_half_second")',
                                                 'register_loss("tp_half_second", input="logits")'))
    plugin_loader.load_plugin("tp_half.py", tmp_path)

    assert "tp_half_first" in LOSSES and "tp_half_second" in LOSSES


def test_check_says_in_words_that_a_detached_loss_does_not_reach_the_input(tmp_path):
    plugin_loader.load_plugin(str(write(tmp_path / "tp_defects.py", DEFECTIVE_LOSSES)))

    detail = {c.name: c.detail for c in run_checks("tp_detaches")}

    assert "does not reach the input" in detail["gradients reach input and parameters"]


def test_compare_ranks_a_plugin_metric_by_its_own_direction_in_a_fresh_process(tmp_path):
    """compare loads the plugins the runs were trained with, so a higher-is-better user metric is best when high."""
    runs = tmp_path / "runs"
    example = Path(__file__).resolve().parents[1] / "recipes" / "custom-loss.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "losszoo", "train", str(example), "--runs-dir", str(runs), "--set", "seeds=[0, 1]",
         "--set", "train.epochs=2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shown = subprocess.run([sys.executable, "-m", "losszoo", "compare", "custom-loss", "--runs-dir", str(runs),
                            "--metric", "top2_accuracy", "--format", "json"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["rows"]
    top = max(r["mean"] for r in rows)
    assert all(r["best"] == (r["mean"] == top) for r in rows), rows  # exact ties share best
