"""Run the studies of a ``tune:`` recipe: trials round by round, then each loss's best on the final seeds.

Every loss gets the same budget: ``trials`` runs, proposed by Optuna's TPE
sampler seeded with ``tune.seed`` (Bergstra et al. 2011), ``tune.parallel``
at a time. Trials are ordinary runs in the store (their config holds
``trial: {study, number}``, so they are never mistaken for a final run), they
stop at the validation split, and a round trains the proposals of every
study at once on the grid's backend, so ``--jobs`` and Dask train trials in
parallel. The sampler sees results in trial order whatever finished first,
so a recipe gives the same trials sequentially, with ``--jobs`` or on Dask;
and a run already in the store is reused, so an interrupted tuning resumes
into the same trials.

``tune.prune: median`` stops a trial after an epoch where its validation
metric is worse than the median of the earlier rounds' finished trials at
that epoch (Optuna's MedianPruner rule, with its 5 startup trials); a pruned
trial counts in the budget.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable
from typing import Any

from losszoo.recipe.tune import Dimension, Study
from losszoo.spec import RunSpec

#: Finished trials before the median rule prunes (Optuna's MedianPruner default).
PRUNE_STARTUP_TRIALS = 5

Grid = Callable[[list[RunSpec]], list[dict[str, Any]]]


def run_studies(studies: list[Study], grid: Grid) -> list[dict[str, Any]]:
    """Tune every study with an equal budget, then train each best configuration on its final seeds."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tunings = [_Tuning(s) for s in studies]
    results: list[dict[str, Any]] = []
    while any(t.asked < t.study.trials for t in tunings):
        proposals = [(t, trial, spec) for t in tunings for trial, spec in t.ask()]
        outcomes = grid([spec for _, _, spec in proposals])
        for (tuning, trial, _), result in zip(proposals, outcomes, strict=True):
            tuning.tell(trial, result)
        results.extend(outcomes)
    results.extend(grid([spec for t in tunings for spec in t.finals()]))
    return results


def trial_config(study: Study, values: dict[str, float], number: int) -> dict[str, Any]:
    """The study's base config with a trial's values set."""
    config = copy.deepcopy(study.base)
    for key, value in values.items():
        node = config
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    config["trial"] = {"study": study.key, "number": number}
    return config


class _Tuning:
    """One study in flight: its Optuna study, the trials asked, their curves for the median rule."""

    def __init__(self, study: Study):
        import optuna

        self.study = study
        self.optuna = optuna.create_study(
            direction="maximize" if study.higher_is_better else "minimize",
            sampler=optuna.samplers.TPESampler(seed=study.seed),
        )
        self.asked = 0
        self.curves: list[list[float | None]] = []  # val metric per epoch of each finished (not pruned) trial

    def ask(self) -> list[tuple[Any, RunSpec]]:
        out = []
        prune = self._thresholds()
        for _ in range(min(self.study.parallel, self.study.trials - self.asked)):
            trial = self.optuna.ask()
            values = {d.key: _suggest(trial, d) for d in self.study.space}
            config = trial_config(self.study, values, trial.number)
            out.append((trial, RunSpec.of(config["experiment"], self.study.label, config, self.study.position,
                                          prune)))
        self.asked += len(out)
        return out

    def _thresholds(self) -> tuple[str, bool, tuple[float | None, ...]] | None:
        if self.study.prune != "median" or len(self.curves) < PRUNE_STARTUP_TRIALS:
            return None
        longest = max(len(c) for c in self.curves)
        medians = []
        for epoch in range(longest):
            values = [c[epoch] for c in self.curves if epoch < len(c) and c[epoch] is not None]
            medians.append(statistics.median(values) if values else None)
        return self.study.metric, self.study.higher_is_better, tuple(medians)

    def tell(self, trial: Any, result: dict[str, Any]) -> None:
        import optuna

        status = result.get("status")
        value = (result.get("metrics") or {}).get("val", {}).get(self.study.metric)
        if status == "completed" and isinstance(value, (int, float)) and math.isfinite(value):
            self.optuna.tell(trial, value)
            self.curves.append((result.get("val_curves") or {}).get(self.study.metric) or [])
        elif status == "pruned":
            self.optuna.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:  # diverged, failed, claimed by another process: spent, and no value
            self.optuna.tell(trial, state=optuna.trial.TrialState.FAIL)

    def finals(self) -> list[RunSpec]:
        """The best trial's configuration on every final seed, tested; nothing if no trial finished."""
        import optuna

        done = [t for t in self.optuna.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            return []
        sign = 1.0 if self.study.higher_is_better else -1.0
        best = max(done, key=lambda t: (sign * t.value, -t.number))  # ties: the earliest trial
        config = trial_config(self.study, best.params, best.number)
        del config["trial"]
        config["tuned"] = {
            "values": dict(best.params),
            "trials": len(self.optuna.trials),
            "space": {d.key: [d.low, d.high, "log" if d.log else "linear"] for d in self.study.space},
            "best_trial": best.number,
            "best_val": best.value,
            "metric": f"val.{self.study.metric}",
            "study": self.study.key,
        }
        specs = []
        for seed in self.study.final_seeds:
            final = {**copy.deepcopy(config), "seed": seed}
            specs.append(RunSpec.of(final["experiment"], self.study.label, final, self.study.position))
        return specs


def _suggest(trial: Any, d: Dimension) -> float | int:
    if d.integer:
        return trial.suggest_int(d.key, int(d.low), int(d.high), log=d.log)
    return trial.suggest_float(d.key, d.low, d.high, log=d.log)
