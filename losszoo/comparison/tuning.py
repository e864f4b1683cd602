"""What ``compare`` shows of a tuned experiment (``tune:``): the studies behind its final rows.

A final row (a loss's best trial retrained on the final seeds) carries in its
config how it was tuned (``tuned``: the values, the trials used, the space, the
best val score); the trials themselves are runs with a ``trial`` key, left out
of the main table, listed by ``compare --trials NAME`` and drawn by ``--plot``
as each loss's best-so-far curve over trials, so a user sees whether the budget
was enough.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from losszoo.errors import LosszooError


def is_trial(result: dict[str, Any]) -> bool:
    return bool((result.get("config") or {}).get("trial"))


def tuned_text(result: dict[str, Any]) -> str | None:
    """The tuning of a final run in a few words: ``lr=0.00125, margin=0.31; 20 trials, best val.accuracy 0.97``."""
    tuned = (result.get("config") or {}).get("tuned")
    if not tuned:
        return None
    values = ", ".join(f"{key.rsplit('.', 1)[-1]}={_number(v)}" for key, v in tuned.get("values", {}).items())
    best = tuned.get("best_val")
    score = f", best {tuned.get('metric', 'val')} {_number(best)}" if isinstance(best, (int, float)) else ""
    return f"{values}; {tuned.get('trials')} trials{score}"


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def budget_warnings(finals: list[dict[str, Any]]) -> list[str]:
    """A fairness warning when the losses compared got different budgets or spaces of different size."""
    tuned = [(r.get("config") or {}).get("tuned") for r in finals]
    tuned = [t for t in tuned if t]
    if not tuned:
        return []
    warnings = []
    if len({t.get("trials") for t in tuned}) > 1:
        warnings.append("the losses were tuned with different budgets (" + ", ".join(
            sorted({str(t.get("trials")) for t in tuned})) + " trials): the comparison is unfair")
    if len({len(t.get("space") or {}) for t in tuned}) > 1:
        warnings.append("the losses were tuned over spaces of different sizes (" + ", ".join(
            sorted({str(len(t.get("space") or {})) for t in tuned})) + " hyperparameters): a larger space is more "
            "to search with the same budget")
    return warnings


@dataclass
class Study:
    """One loss's trials, in trial order."""

    key: str
    label: str
    metric: str  # the val metric selected on, e.g. "accuracy"
    higher_is_better: bool
    trials: list[dict[str, Any]] = field(default_factory=list)

    def scores(self) -> list[float]:
        """Each trial's val score (NaN for a pruned or failed trial)."""
        out = []
        for r in self.trials:
            value = ((r.get("metrics") or {}).get("val") or {}).get(self.metric)
            ok = r.get("status") == "completed" and isinstance(value, (int, float)) and math.isfinite(value)
            out.append(float(value) if ok else math.nan)
        return out

    def best_so_far(self) -> list[float]:
        best, out = math.nan, []
        for score in self.scores():
            if not math.isnan(score) and (math.isnan(best) or (score > best if self.higher_is_better
                                                                 else score < best)):
                best = score
            out.append(best)
        return out


def studies(results: list[dict[str, Any]]) -> list[Study]:
    """The studies of ``results``' trials, by label, each with its trials in order."""
    from losszoo.comparison.keys import higher_is_better

    found: dict[str, Study] = {}
    for r in sorted((r for r in results if is_trial(r)), key=lambda r: r["config"]["trial"]["number"]):
        trial = r["config"]["trial"]
        if trial["study"] not in found:
            metric = str(r["config"].get("select_by", "val.")).rpartition(".")[2]
            finals = [f for f in results if ((f.get("config") or {}).get("tuned") or {}).get("study") == trial["study"]]
            if finals:
                metric = finals[0]["config"]["tuned"]["metric"].rpartition(".")[2]
            found[trial["study"]] = Study(trial["study"], str(r.get("label")), metric,
                                          higher_is_better(f"val.{metric}", [r]))
        found[trial["study"]].trials.append(r)
    return sorted(found.values(), key=lambda s: (s.label, s.key))  # never in folder order


def trials_of(every: list[Study], name: str) -> Study:
    """The study of the loss called ``name`` (its label or its name); a LosszooError naming the others."""
    chosen = [s for s in every if name in (s.label, s.label.partition("(")[0])]
    if not chosen:
        known = ", ".join(s.label for s in every) or "none (the experiment was not tuned)"
        raise LosszooError(f"--trials {name!r}: no tuned loss of that name (tuned: {known})")
    if len(chosen) > 1:
        raise LosszooError(f"--trials {name!r}: {len(chosen)} studies have that loss (several datasets or sweep "
                           "points); narrow them with --filter")
    return chosen[0]


def trial_rows(study: Study) -> list[dict[str, Any]]:
    """One record per trial: its number, status, searched values, val score and the best so far."""
    rows, searched = [], _searched(study)
    for r, score, best in zip(study.trials, study.scores(), study.best_so_far(), strict=True):
        values = {}
        for key in searched:
            node: Any = r.get("config") or {}
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            values[key] = node
        rows.append({"trial": r["config"]["trial"]["number"], "status": r.get("status"), **values,
                     f"val.{study.metric}": score, "best so far": best, "epochs": r.get("epochs_run")})
    return rows


def _searched(study: Study) -> list[str]:
    """The config keys the trials vary (the study's space)."""
    from losszoo.comparison.labels import flatten

    flats = [flatten({k: v for k, v in (r.get("config") or {}).items() if k in ("loss", "train", "model")})
             for r in study.trials]
    keys = sorted({k for f in flats for k in f})
    return [k for k in keys if len({repr(f.get(k)) for f in flats}) > 1]
