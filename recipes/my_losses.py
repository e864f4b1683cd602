"""A user's own loss and metric for losszoo: copy this file and change the maths.

recipes/custom-loss.yaml names this file under `plugins:` (a path relative to
the recipe), which imports it before the recipe is checked; the decorators
below then make `ce_logit_squeeze` and `top2_accuracy` usable like any
built-in loss or metric. Before trusting a loss, run the suite losszoo's own
losses pass:

    losszoo check recipes/my_losses.py:ce_logit_squeeze

and `losszoo list losses ce_logit_squeeze --plugins recipes/my_losses.py` (or
`losszoo show ce_logit_squeeze --plugins ...`) shows where the loss came from
(its origin: this file). losszoo imports a plugin only when you name it: a
recipe's `plugins:`, or `--plugins` on list, show, compare and landscape; a
runs folder never makes it import anything.
"""

import torch
import torch.nn.functional as F

import losszoo
from losszoo import Param


# A loss is a plain function `fn(input, target, **hyperparameters)` (or an
# nn.Module class whose __init__ takes the hyperparameters). `input=` says what
# the model must produce: "logits" gives the model a linear head of one output
# per class, and the target is then the class labels. losszoo checks the labels
# against the number of logit columns before the function runs, so a plain
# function gets the ValueError for labels out of range for free.
#
# Hyperparameters are declared as Param objects: a default, a one-line meaning
# and bounds (gt/ge/lt/le). The registry rejects an out-of-range value before
# the loss is built, so a recipe with `beta: -1` is an error at its file and
# line, not a strange run. (`params={"beta": 0.01}` also works, without bounds.)
#
# `elementwise=True` promises a per-sample loss: the function takes
# `reduction="mean" | "sum" | "none"`, and `losszoo check` verifies that mean is
# sum / n and that "none" gives one value per sample.
@losszoo.register_loss(
    "ce_logit_squeeze",
    input="logits",
    family="custom",
    elementwise=True,
    params=[Param("beta", 0.01, "weight of the squared-logit penalty", ge=0.0, le=1.0, short="b")],
    summary="cross-entropy plus beta times the mean squared logit (logit squeezing)",
    paper="Kannan, Kurakin & Goodfellow, Adversarial Logit Pairing, 2018 (logit squeezing)",
    formula="-log softmax(z)_y + beta * 1/C sum_c z_c^2",
)
def ce_logit_squeeze(logits: torch.Tensor, labels: torch.Tensor, beta: float,
                     reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy that also keeps the logits small, which tempers over-confidence.

    logits (N, C), labels (N,) -> a scalar, or (N,) with reduction="none".
    """
    # F.cross_entropy works from log_softmax, so it stays finite at logits of
    # +-1e4 (a naive exp(z) / sum(exp(z)) would be inf / inf = nan there).
    per_sample = F.cross_entropy(logits, labels, reduction="none") + beta * logits.pow(2).mean(dim=1)
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


# A metric is a function `fn(output, target) -> float`, called on a whole
# split (val, then test) without gradients. It must say whether higher is
# better, so a recipe can pick the best epoch by it (`select_by:
# val.top2_accuracy`); `task=` ties it to classification datasets.
@losszoo.register_metric(
    "top2_accuracy",
    input="logits",
    family="custom",
    task="classification",
    higher_is_better=True,
    summary="share of samples whose label is among the two largest logits",
)
def top2_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    top = logits.topk(min(2, logits.shape[1]), dim=1).indices
    return (top == labels[:, None]).any(dim=1).float().mean().item()
