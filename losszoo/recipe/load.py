"""Read a recipe, check every key against the registry, expand it into runs.

    read -> --set overrides -> plugins -> sweep variants -> check each -> runs

Every problem is collected, not just the first, and reported as
``recipe.yaml:7 losses[2].margin: must be > 0, got -1`` with a "did you mean"
for misspelt names and keys. Nothing here imports torch (unless a recipe
names a GPU device, to ask whether it exists).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from losszoo.errors import LosszooError, RecipeError
from losszoo.recipe import check, sweep
from losszoo.recipe.check import DEFAULT_MODEL, Named, Problems, named, one_or_many
from losszoo.recipe.overrides import apply_override, hint, parse_override
from losszoo.recipe.tune import check_block, studies_of
from losszoo.recipe.yaml_lines import Path as NodePath
from losszoo.recipe.yaml_lines import load_yaml
from losszoo.registry import DATASETS, LOSSES, MODELS, yaml_repr
from losszoo.spec import UNHASHED_TRAIN_KEYS, RunSpec, config_hash  # noqa: F401  (re-exported)

TOP_KEYS = (
    "experiment", "dataset", "datasets", "model", "loss", "losses", "seed", "seeds",
    "train", "metrics", "select_by", "plugins", "sweep", "tune",
)
#: Experiment names become folder names: letters, digits, '.', '_', '-', at most this long.
MAX_NAME = 100
#: Top-level keys a recipe may use for its own anchors (``x-focal: &focal {...}``): ignored.
EXTENSION_PREFIX = "x-"


@dataclass
class Recipe:
    experiment: str
    source: str
    base_dir: Path
    runs: list[RunSpec]
    plugins: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # data read with something skipped, for the user
    studies: list[Any] = field(default_factory=list)  # recipe.tune.Study: with tune:, the runs come from these
    text: str = ""  # the recipe as written (a dict: as YAML), kept with its runs for the report
    overrides: list[str] = field(default_factory=list)  # the --set arguments it was loaded with

    @property
    def planned(self) -> int:
        """How many runs the recipe will train: its runs, or every trial and final seed of its studies."""
        return len(self.runs) or sum(s.trials + len(s.final_seeds) for s in self.studies)


def load_recipe(recipe: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Validate ``recipe`` (a path or a dict) with ``--set`` overrides and expand its runs."""
    data, positions, source, base_dir, text = _read(recipe)
    problems = Problems(source, positions)
    if data is None:
        raise RecipeError([f"{source}: the recipe is empty; it needs at least `dataset:` and `loss:`"])
    if not isinstance(data, dict):
        raise RecipeError([f"{source}:1 (recipe): must be a mapping of keys such as dataset: and losses:"])
    data = json.loads(json.dumps(data))  # a private copy that --set may change
    for override in overrides:
        path, value = parse_override(override)
        if path[0] == "model" and len(path) > 1:
            data.setdefault("model", DEFAULT_MODEL)
        apply_override(data, path, value, override, TOP_KEYS)
        problems.moved[path] = "--set"

    for key in data:
        if key not in TOP_KEYS and not str(key).startswith(EXTENSION_PREFIX):
            problems.add((key,), f"unknown key{hint(key, TOP_KEYS)} (known: {', '.join(TOP_KEYS)})")
    plugins = _load_plugins(data, base_dir, problems)
    experiment = _experiment(data, source, problems)
    axes = sweep.axes_of(data, problems)
    block = check_block(data, problems)
    problems.raise_if_any()

    cache: dict[str, Any] = {}
    grid = sweep.points(axes)
    runs: list[tuple[tuple[int, ...], RunSpec]] = []
    written: dict[str, set[str]] = {}  # run id -> the loss hyperparameters the recipe sets (tuning keeps them)
    for p_index, point in enumerate(grid):
        variant = sweep.variant(data, axes, point, problems)
        for order, (label, config, given) in _runs(variant, experiment, base_dir, plugins, problems, cache,
                                                   len(grid)):
            d_index, l_index, v_index, s_index = order
            spec = RunSpec.of(experiment, label, config, l_index * len(grid) * 1000 + p_index * 1000 + v_index)
            runs.append(((d_index, l_index, p_index, v_index, s_index), spec))
            written[spec.run_id] = given
    problems.raise_if_any()
    runs.sort(key=lambda item: item[0])
    specs = [spec for _, spec in runs]
    seen: dict[str, tuple[tuple[int, ...], RunSpec]] = {}
    for order, spec in runs:
        twin_order, twin = seen.setdefault(spec.run_id, (order, spec))
        if twin is spec:
            continue
        if twin_order[2] != order[2]:  # two sweep points make one run
            problems.add(("sweep",), f"points {twin_order[2] + 1} and {order[2] + 1} of the sweep give the same "
                         f"run ({spec.label}) once defaults are filled in; remove one")
        else:
            problems.add(("losses",), f"{spec.label} and {twin.label} are the same run once defaults are filled "
                         "in; remove one")
    problems.raise_if_any()
    studies = studies_of(block, specs, written, problems) if block is not None else []
    problems.raise_if_any()
    return Recipe(experiment, source, base_dir, [] if studies else specs, list(data.get("plugins") or []),
                  problems.warnings, studies, text, list(overrides))


def _runs(data: dict[str, Any], experiment: str, base_dir: Path, plugins: list[str], problems: Problems,
          cache: dict[str, Any], points: int = 1):
    """The resolved (label, config) of every run of one variant (of ``points``), with its place in the recipe."""
    datasets = [v for p, item in one_or_many(data, "dataset", "datasets", problems)
                for v in named(item, p, DATASETS, problems)]
    losses = [(i, v, loss) for i, (p, item) in enumerate(one_or_many(data, "loss", "losses", problems))
              for v, loss in enumerate(named(item, p, LOSSES, problems, sweepable=True))]
    if "dataset" not in data and "datasets" not in data:
        problems.add((), "needs `dataset:` (e.g. `dataset: digits`; `losszoo list datasets` shows them)")
    if "loss" not in data and "losses" not in data:
        problems.add((), "needs `loss:` or `losses:` (e.g. `losses: [cross_entropy, focal]`)")
    models = named(data.get("model", DEFAULT_MODEL), ("model",), MODELS, problems)
    model = models[0] if models else None
    seeds = check.check_seeds(data, problems)
    train = check.check_train(data.get("train"), problems)
    metric_names = check.check_metrics(data, problems)
    select_by = data.get("select_by")

    checked = [check.check_dataset(d, base_dir, problems, cache, seeds) for d in datasets]
    for dataset in checked:
        check.check_pairing(dataset, model, [loss for _, _, loss in losses], problems, train)
    if problems.found or train is None or model is None:
        return
    count = len(checked) * len(losses) * len(seeds) * points
    if count > check.MAX_RUNS:
        sweeps = f" x {points:,} sweep points" if points > 1 else ""
        problems.add((), f"expands to {count:,} runs ({len(checked)} datasets x {len(losses):,} losses x {len(seeds)} "
                     f"seeds{sweeps}); at most {check.MAX_RUNS:,}")
        problems.raise_if_any()  # the other sweep points would only say it again
    for d_index, dataset in enumerate(checked):
        task = dataset.facts.task if dataset.facts else check.task_of(dataset.named)
        for l_index, v_index, loss in losses:
            metrics, chosen = check.run_metrics(metric_names, select_by, task, loss.entry, loss.path, problems)
            for s_index, seed in enumerate(seeds):
                config = {
                    "experiment": experiment,
                    "dataset": _dataset_config(dataset.named, base_dir),
                    "model": {"name": model.entry.name, **model.params},
                    "loss": {"name": loss.entry.name, **loss.params},
                    "seed": seed,
                    "train": train,
                    "metrics": metrics,
                    "select_by": chosen,
                    "inputs": _inputs(dataset, [dataset.named, model, loss]),
                    "plugins": plugins,  # recorded for the user; never imported from a run folder
                }
                yield (d_index, l_index, v_index, s_index), (_label(loss), config, set(loss.given))


def _dataset_config(d: Named, base_dir: Path) -> dict[str, Any]:
    params = dict(d.params)
    if params.get("path"):
        params["path"] = str((base_dir / params["path"]).resolve())
    return {"name": d.entry.name, **params}


def _inputs(dataset: check.DatasetCheck, used: list[Named | None]) -> dict[str, str]:
    """Content hashes of what the run reads beyond losszoo: its data files and its plugins' sources."""
    from losszoo.plugins import source_hash

    inputs = dict(dataset.inputs)
    for item in used:
        digest = source_hash(item.entry) if item is not None else None
        if digest:
            inputs[f"{item.entry.kind}.{item.entry.name}"] = digest
    return inputs


def _label(loss: Named) -> str:
    if not loss.given:
        return loss.entry.name
    shorts = {p.name: p.short or p.name for p in loss.entry.params}

    def text(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, (list, tuple)):
            return "[" + ",".join(text(v) for v in value) + "]"
        return yaml_repr(value).strip("'")

    inner = ",".join(f"{shorts[k]}={text(v)}" for k, v in loss.given.items())
    return f"{loss.entry.name}({inner})"


# --- reading -------------------------------------------------------------------------------------


def _read(recipe: str | Path | dict[str, Any]) -> tuple[Any, dict[NodePath, int], str, Path, str]:
    """The recipe's data, the line of each node, its name, the folder its paths are relative to, its text."""
    if isinstance(recipe, dict):
        plain = json.loads(json.dumps(recipe, default=str))  # tuples and paths as YAML can write them
        return recipe, {}, "<recipe>", Path.cwd(), yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    path = Path(recipe)
    if path.is_dir():
        raise RecipeError([f"{path}: is a folder; give a recipe file such as {path / 'recipe.yaml'}"])
    if not path.is_file():
        siblings = [p.name for p in path.parent.glob("*.y*ml")] if path.parent.is_dir() else []
        close = difflib.get_close_matches(path.name, siblings, n=1)
        did_you_mean = f"; did you mean {str(path.parent / close[0])!r}?" if close else ""
        raise RecipeError([f"{path}: no such recipe file{did_you_mean}"])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecipeError([f"{path}: not a UTF-8 text file"]) from None
    except OSError as error:
        raise RecipeError([f"{path}: cannot be read ({error.strerror or error})"]) from None
    try:
        data, positions = load_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise RecipeError([f"{path}{line}: malformed YAML: {problem}"]) from None
    return data, positions, str(path), path.parent.resolve(), text


def _load_plugins(data: dict[str, Any], base_dir: Path, problems: Problems) -> list[str]:
    """Import the recipe's plugins now (they may register what the rest names); their resolved specs."""
    plugins = data.get("plugins", [])
    if not plugins:
        return []
    from losszoo.plugins import load_plugins

    try:
        load_plugins(plugins, base_dir)
    except LosszooError as error:
        problems.add(("plugins",), str(error))
        problems.raise_if_any()
    return [str((base_dir / p).resolve()) if p.endswith(".py") else p for p in plugins]


def _experiment(data: dict[str, Any], source: str, problems: Problems) -> str:
    experiment = data.get("experiment", Path(source).stem if source != "<recipe>" else "experiment")
    if not isinstance(experiment, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", experiment) or (
            len(experiment) > MAX_NAME):
        shown = yaml_repr(experiment if not isinstance(experiment, str) or len(experiment) <= 60
                          else experiment[:57] + "...")
        problems.add(("experiment",), f"must be a name of at most {MAX_NAME} letters, digits, '.', '_' or '-', "
                     f"starting with a letter or digit, got {shown}")
        return "experiment"
    return experiment
