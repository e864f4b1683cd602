"""A forward pass over a whole split, and the metrics it feeds.

``evaluate`` collects every *view* a metric may read (``losszoo.inputs``):
the loss's own output (class logits, embeddings, predicted values in the
data's units, per-label logits, boxes), the class logits a margin loss's
centres give, and the retrieval features of the model (its embedding layer).
``compute_metrics`` feeds each named metric the view it declares.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from losszoo.data.splits import Data, Split
from losszoo.inputs import INPUT_KINDS
from losszoo.registry import METRICS

EVAL_ELEMENTS = 2**18  # inputs per evaluation batch: 4096 digits rows, 256 images of 32x32


@dataclass
class Evaluation:
    """What a metric may consume, computed once per split."""

    outputs: dict[str, torch.Tensor]
    target: torch.Tensor


@torch.no_grad()
def evaluate(model: nn.Module, loss: nn.Module, loss_input: str, split: Split, data: Data,
             device: torch.device) -> Evaluation:
    """Forward the whole split in large batches (eval mode) and collect every view metrics read."""
    model.eval()
    loss.eval()
    kind = INPUT_KINDS[loss_input]
    heads, features = [], []
    step = max(1, EVAL_ELEMENTS // max(1, split.x[0].numel()))
    for start in range(0, len(split), step):
        x = split.x[start:start + step].to(device, non_blocking=True)
        if hasattr(model, "features") and hasattr(model, "head"):  # a Net: keep the features for retrieval
            feats = model.features(x)
            features.append(feats)
            heads.append(model.head(feats))
        else:
            heads.append(model(x))
    out = kind.loss_input(torch.cat(heads).float())
    target = split.y.to(device)
    view = kind.view_for(data.task)
    outputs: dict[str, torch.Tensor] = {}
    if view == "values":  # metrics read predictions in the data's own units
        values = loss.predict(out) if hasattr(loss, "predict") else out
        outputs["values"] = values * data.target_std + data.target_mean
        target = target * data.target_std + data.target_mean
    else:
        outputs[view] = out
    if view == "embeddings" and hasattr(loss, "class_logits"):
        outputs["logits"] = loss.class_logits(out)
    elif features and view != "embeddings":
        outputs["embeddings"] = torch.cat(features).float()
    model.train()
    loss.train()
    return Evaluation(outputs, target)


def _call(target: str, *args: Any) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(*args)


def compute_metrics(evaluation: Evaluation, names: list[str], retrieval_only: bool = False,
                    fitted: dict[str, Any] | None = None, fit: bool = False) -> dict[str, float]:
    """Each named metric the evaluation can feed; a metric without its view is left out.

    A metric with a parameter chosen on validation data (``f1_best``'s threshold) has it chosen here when
    ``fit`` (the val split; it goes into ``fitted``) and reads it from ``fitted`` otherwise (the test split).
    """
    values: dict[str, float] = {}
    shared: dict[str, dict[str, float]] = {}  # metrics computed together (one retrieval search for three)
    for name in names:
        entry = METRICS.get(name)
        if entry.input not in evaluation.outputs or (retrieval_only and entry.input != "embeddings"):
            continue
        output = evaluation.outputs[entry.input]
        if entry.computed_with:
            if entry.computed_with not in shared:
                shared[entry.computed_with] = _call(entry.computed_with, output, evaluation.target)
            values[name] = float(shared[entry.computed_with][name])
        elif entry.fitted_on_val:
            if fit and fitted is not None:
                fitted[name] = _call(entry.fitted_on_val, output, evaluation.target)
            if fitted is None or name not in fitted:
                continue
            values[name] = float(_call(entry.applied_with, output, evaluation.target, fitted[name]))
        else:
            values[name] = float(entry.load()(output, evaluation.target))
    return values
