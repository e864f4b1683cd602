"""Regenerate docs/results.md: train every example recipe, time it, and paste its comparison.

    python docs/make_results.py [--only NAME ...] [--runs-dir DIR] [--tuning]

Each recipe is trained with ``losszoo train`` as a user would (one torch thread per run, one run at a
time), the wall time of the whole command is recorded, and the table is ``losszoo compare EXPERIMENT
--format md``. ``--tuning`` also runs the "Does tuning change the verdict?" section: digits-margin and
digits-noisy again with ``tune: {trials: 20}`` (every loss the same budget, selected on val, the best
retrained on the recipe's seeds). Text around the tables lives in ``INTROS`` below, next to the
recipe it describes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "results.md"

INTROS = {
    "digits-margin": "Softmax against angular margins on handwritten digits: which loss separates the classes "
                     "best, and by how much over seeds?",
    "wine-quick": "A quick look: four cross-entropy variants on 178 wines (13 features, 3 classes).",
    "diabetes-robust": "Squared error against the robust Huber loss on the diabetes progression data. Metrics are "
                       "in the data's own units (disease progression score).",
    "csv-iris": "Your own table: any csv of numeric features and one target column. This one reads "
                "recipes/data/iris.csv (Fisher's iris, exported from scikit-learn).",
    "digits-noisy": "40% of the training labels flipped to a random other class (val and test stay clean): which "
                    "losses are robust to label noise?",
    "digits-longtail": "A long-tailed training set: the rarest digit has 5% of the samples of the most common one "
                       "(val and test stay balanced). Re-weighting and margin losses for imbalance against plain "
                       "cross-entropy.",
    "digits-embeddings": "Seven ways to learn class centres on the unit sphere: which gives the most accurate "
                         "classifier and the best retrieval (map_at_r) on the same embedding?",
    "regression-outliers": "Friedman #1 regression with 20% of the training targets hit by heavy-tailed (Cauchy) "
                           "noise; val and test are clean. Targets are standardised with the training targets as "
                           "the run sees them, outliers included (no clean oracle).",
    "digits-open-set": "Open-set retrieval (Musgrave et al., \"A Metric Learning Reality Check\", 2020): train on "
                       "digits 0-4, rank the unseen 5-9 by cosine similarity. Every loss retrieves with the same "
                       "32-d embedding layer.",
    "shapes-segmentation": "Thin structures are rare: lines cover few pixels. Overlap losses (dice, tversky, "
                           "lovasz) against pixel cross-entropy on the synthetic shapes.",
    "custom-loss": "Your own loss beside a built-in one: cross-entropy against cross-entropy with logit "
                   "squeezing, from recipes/my_losses.py, with a metric of its own (top-2 accuracy).",
    "custom-data": "Your own dataset and model from plugin files (recipes/my_dataset.py, recipes/my_model.py).",
    "multilabel-tags": "Multi-label tagging (8 tags, about 2 per sample): binary cross-entropy against sigmoid "
                       "focal, ASL (asymmetric) and ZLPR, ranked on mAP (average_precision). f1_best applies the "
                       "threshold chosen on val to test.",
    "shapes-boxes": "One shape per image: regress its bounding box. Smooth L1 on the corners against the IoU "
                    "family, on mean IoU and AP at IoU 0.5.",
}
ORDER = list(INTROS)
TUNED = ("digits-margin", "digits-noisy")


def losszoo(*args: str, runs: Path) -> tuple[float, str]:
    env = {**os.environ, "LOSSZOO_RUNS": str(runs), "COLUMNS": "200"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "losszoo", *args], env=env, capture_output=True, text=True,
                          cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"losszoo {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def section(name: str, runs: Path, recipe: Path, title: str | None = None) -> str:
    seconds, _ = losszoo("--quiet", "train", str(recipe), runs=runs)
    experiment = yaml.safe_load(recipe.read_text()).get("experiment", recipe.stem)
    _, table = losszoo("compare", experiment, "--format", "md", runs=runs)
    return f"## {title or name} ({seconds:.0f} s)\n\n{INTROS.get(name, '')}\n\n{table}\n"


def tuned_recipe(name: str, folder: Path) -> Path:
    data = yaml.safe_load((REPO / "recipes" / f"{name}.yaml").read_text())
    data["experiment"] = f"{name}-tuned"
    data["tune"] = {"trials": 20}
    path = folder / f"{name}-tuned.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rank1(experiment: str, runs: Path) -> str:
    """The rows in test accuracy's rank-1 group, best mean first."""
    _, out = losszoo("compare", experiment, "--metric", "accuracy", "--format", "json", runs=runs)
    rows = sorted((r for r in json.loads(out)["rows"] if r["in_rank1_group"]), key=lambda r: -r["mean"])
    return ", ".join(f"`{r['label']}` {r['mean']:.4f}" for r in rows)


def verdicts(names: list[str], runs: Path) -> str:
    """Rank 1 on test accuracy with the hand-picked settings and after tuning, from the runs just trained."""
    lines = ["## The verdict, before and after tuning\n",
             "The rank-1 group on test accuracy (best mean first), read from the runs above:\n"]
    for name in names:
        lines.append(f"- {name}: hand-picked {rank1(name, runs)}; tuned {rank1(f'{name}-tuned', runs)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--tuning", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="losszoo-results-") as tmp:
        runs = args.runs_dir or Path(tmp) / "runs"
        parts = [
            "# Measured results of the example recipes\n",
            "Each table is `losszoo compare EXPERIMENT --format md` after `losszoo train recipes/EXPERIMENT.yaml`, "
            "on the 2-core CPU machine this project is developed on (torch 2.13 CPU, one torch thread per run), "
            "with the wall time of the whole `losszoo train` command; `docs/make_results.py` writes this file. "
            "Bold cells are rank 1 (not significantly worse than any other row of the block: one-sided t-tests of "
            "every pair over the seeds, Holm-corrected); `*` marks the best mean, `+` the other rank-1 rows. Three "
            "seeds are few: read the rank groups, not the third decimal.\n",
        ]
        for name in args.only or ORDER:
            parts.append(section(name, runs, REPO / "recipes" / f"{name}.yaml"))
            print(f"{name} done", file=sys.stderr)
        if args.tuning:
            parts.append(
                "## Does tuning change the verdict?\n\nThe hand-picked settings above against an equal budget for "
                "every loss (Musgrave et al. 2020): `tune: {trials: 20}` searches each loss's own tunable "
                "hyperparameters (their ranges are declared in the catalogue: `losszoo show NAME`) and the learning "
                "rate with Optuna's TPE sampler, selects on val only, and retrains each loss's best on the same "
                "seeds, tested once. The `tuned` column of each table shows the values each loss ended with, the "
                "trials it used and its best val score; `losszoo compare EXPERIMENT --trials LOSS` lists every "
                "trial.\n")
            tuned = [name for name in TUNED if name in (args.only or ORDER)]
            for name in tuned:
                parts.append(section(name, runs, tuned_recipe(name, Path(tmp)), title=f"{name}, tuned"))
                print(f"{name} tuned done", file=sys.stderr)
            parts.append(verdicts(tuned, runs))
    OUT.write_text("\n".join(parts))
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
