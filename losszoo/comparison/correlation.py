"""``compare --correlate KEY``: does a stored figure predict how well runs generalise?

Jiang et al. 2020, "Fantastic generalization measures and where to find them":
across the experiment's runs, Kendall's τ between a figure each run stores
(``landscape.lambda_max``, ``landscape.radius``, ``train_seconds``, ...) and its
generalisation gap (how much worse test is than train on the metric that
picked its epoch), with a bootstrap interval over runs. Flatness is claimed to
help generalise. The figure is said to rank the gaps only when both the test
of τ = 0 (scipy's ``kendalltau``: exact for a few runs without ties) rejects
and the interval excludes 0: the percentile bootstrap alone calls a perfect
order of three runs significant one time in three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from losszoo.comparison.keys import lookup, require
from losszoo.comparison.stats import ALPHA
from losszoo.errors import LosszooError


@dataclass
class Correlation:
    key: str
    gap_metric: str
    gap_definition: str  # "train - test" (higher is better), "test - train" (lower is better)
    xs: list[float]
    ys: list[float]
    tau: float
    low: float
    high: float
    p: float  # two-sided, of tau = 0

    @property
    def n(self) -> int:
        return len(self.xs)

    def record(self) -> dict[str, Any]:
        """For ``--format json``: the figure, the gap's metric, n, tau and its interval (None when undefined)."""
        def finite(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {"key": self.key, "gap": self.gap, "n": self.n, "tau": finite(self.tau), "p": finite(self.p),
                "ci95_low": finite(self.low), "ci95_high": finite(self.high)}

    @property
    def gap(self) -> str:
        return f"{self.gap_definition} {self.gap_metric}"

    def words(self) -> str:
        if not math.isfinite(self.tau):
            return (f"Kendall's tau between {self.key} and the generalisation gap is undefined over these {self.n} "
                    "runs: one of them is the same in every run")
        interval = f"[{self.low:.2f}, {self.high:.2f}]" if math.isfinite(self.low) else "[not enough pairs]"
        excludes_0 = math.isfinite(self.low) and (self.low > 0 or self.high < 0)
        if self.p < ALPHA and excludes_0:
            verdict = "the figure ranks the gaps"
        else:
            why = []
            if not self.p < ALPHA:
                why.append(f"p >= {ALPHA:g}" + (", too few runs to ever be below" if self.n < 5 else ""))
            if not excludes_0:
                why.append("the interval holds 0")
            verdict = f"no evidence that it ranks the gaps ({'; '.join(why)})"
        return (f"Kendall's tau between {self.key} and the generalisation gap ({self.gap}) over {self.n} runs: "
                f"{self.tau:.2f}, 95% bootstrap interval {interval}, p = {self.p:.3g}: {verdict}")


def correlate(results: list[dict[str, Any]], key: str) -> Correlation:
    """τ between ``key`` and each completed run's generalisation gap; a LosszooError when no run has both."""
    from losszoo.landscape.correlate import kendall_tau_with_ci

    require(key, "--correlate", results)
    xs, ys, gaps = [], [], set()
    for r in sorted(results, key=lambda r: str(r.get("run_id"))):  # the interval never hangs on folder order
        x, gap = lookup(r, key), r.get("generalization_gap")
        gap = gap if isinstance(gap, dict) else {}
        if r.get("status") == "completed" and _finite(x) and _finite(gap.get("value")):
            xs.append(float(x))
            ys.append(float(gap["value"]))
            gaps.add((str(gap.get("metric")), str(gap.get("definition", "train - test"))))  # as first stored
    if len(xs) < 3:
        raise LosszooError(f"--correlate {key}: {len(xs)} runs have both it and a generalisation gap; it needs at "
                           "least 3 (runs trained by this losszoo store their gap)")
    if len(gaps) > 1:
        kinds = ", ".join(f"{definition} {metric}" for metric, definition in sorted(gaps))
        raise LosszooError(f"--correlate {key}: the runs' gaps are of different metrics ({kinds}); --filter them "
                           "to one")
    from scipy.stats import kendalltau

    found = kendall_tau_with_ci(xs, ys)
    p = kendalltau(xs, ys).pvalue
    metric, definition = gaps.pop()
    return Correlation(key, metric, definition, xs, ys, found.tau, found.low, found.high,
                       float(p) if p == p else math.nan)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
