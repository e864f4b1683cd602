"""``compare --correlate KEY``: does a stored figure predict how well runs generalise?

Jiang et al. 2020, "Fantastic generalization measures and where to find them":
across the experiment's runs, Kendall's τ between a figure each run stores
(``landscape.lambda_max``, ``landscape.radius``, ``train_seconds``, ...) and its
generalisation gap (train minus test of the metric that picked its epoch),
with a bootstrap interval over runs. Flatness is claimed to help generalise;
a τ whose interval holds 0 says the figure does not rank the gaps here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from losszoo.comparison.keys import lookup, require
from losszoo.errors import LosszooError


@dataclass
class Correlation:
    key: str
    gap_metric: str
    xs: list[float]
    ys: list[float]
    tau: float
    low: float
    high: float

    @property
    def n(self) -> int:
        return len(self.xs)

    def record(self) -> dict[str, Any]:
        """For ``--format json``: the figure, the gap's metric, n, tau and its interval (None when undefined)."""
        def finite(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {"key": self.key, "gap": f"train - test {self.gap_metric}", "n": self.n, "tau": finite(self.tau),
                "ci95_low": finite(self.low), "ci95_high": finite(self.high)}

    def words(self) -> str:
        if not math.isfinite(self.tau):
            return (f"Kendall's tau between {self.key} and the generalisation gap is undefined over these {self.n} "
                    "runs: one of them is the same in every run")
        interval = f"[{self.low:.2f}, {self.high:.2f}]" if math.isfinite(self.low) else "[not enough pairs]"
        verdict = ("the figure ranks the gaps" if math.isfinite(self.low) and (self.low > 0 or self.high < 0)
                   else "no evidence that it ranks the gaps (the interval holds 0)")
        return (f"Kendall's tau between {self.key} and the generalisation gap (train - test {self.gap_metric}) over "
                f"{self.n} runs: {self.tau:.2f}, 95% bootstrap interval {interval}: {verdict}")


def correlate(results: list[dict[str, Any]], key: str) -> Correlation:
    """τ between ``key`` and each completed run's generalisation gap; a LosszooError when no run has both."""
    from losszoo.landscape.correlate import kendall_tau_with_ci

    require(key, "--correlate", results)
    xs, ys, metrics = [], [], set()
    for r in sorted(results, key=lambda r: str(r.get("run_id"))):  # the interval never hangs on folder order
        x, gap = lookup(r, key), r.get("generalization_gap") or {}
        if r.get("status") == "completed" and isinstance(x, (int, float)) and isinstance(gap.get("value"),
                                                                                         (int, float)):
            xs.append(float(x))
            ys.append(float(gap["value"]))
            metrics.add(str(gap.get("metric")))
    if len(xs) < 3:
        raise LosszooError(f"--correlate {key}: {len(xs)} runs have both it and a generalisation gap; it needs at "
                           "least 3 (runs trained by this losszoo store their gap)")
    if len(metrics) > 1:
        raise LosszooError(f"--correlate {key}: the runs' gaps are of different metrics ({', '.join(sorted(metrics))})"
                           "; --filter them to one")
    found = kendall_tau_with_ci(xs, ys)
    return Correlation(key, metrics.pop(), xs, ys, found.tau, found.low, found.high)
