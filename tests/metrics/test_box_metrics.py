"""Box metrics against IoU written out one box at a time."""

from __future__ import annotations

import math

import pytest
import torch

from losszoo.catalog import boxes as catalog
from losszoo.metrics import boxes as metrics


def slow_iou(b, g) -> float:
    x1, x2 = sorted((b[0], b[2]))
    y1, y2 = sorted((b[1], b[3]))
    w = max(0.0, min(x2, g[2]) - max(x1, g[0]))
    h = max(0.0, min(y2, g[3]) - max(y1, g[1]))
    union = (x2 - x1) * (y2 - y1) + (g[2] - g[0]) * (g[3] - g[1]) - w * h
    return w * h / union if union > 0 else 0.0


def boxes(seed: int, n: int = 60):
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=g)
    target = torch.cat([corner, corner + 0.1 + 0.3 * torch.rand(n, 2, generator=g)], dim=1)
    predicted = target + 0.08 * torch.randn(n, 4, generator=g)
    predicted[::7] = predicted[::7, [2, 3, 0, 1]]  # swapped corners: the same box
    return predicted, target


def test_catalogue_entries():
    entries = {e.name: e for e in catalog.METRICS}
    assert set(entries) == {"mean_iou", "ap50"}
    for name, entry in entries.items():
        assert entry.load() is getattr(metrics, name)
        assert (entry.input, entry.target_kind, entry.task, entry.higher_is_better) == ("boxes", "boxes", "boxes",
                                                                                        True)
        assert entry.value_range == (0.0, 1.0) and entry.default
    assert catalog.METRICS[0].name == "mean_iou"  # the first default picks the best epoch


@pytest.mark.parametrize("seed", range(3))
def test_mean_iou_and_ap50_match_slow_formula(seed):
    predicted, target = boxes(seed)
    ious = [slow_iou(b, g) for b, g in zip(predicted.tolist(), target.tolist(), strict=True)]
    assert metrics.mean_iou(predicted, target) == pytest.approx(sum(ious) / len(ious), rel=1e-6)
    assert metrics.ap50(predicted, target) == pytest.approx(sum(v >= 0.5 for v in ious) / len(ious))
    assert 0 < metrics.ap50(predicted, target) < 1  # the test data cross the threshold both ways


def test_edge_cases():
    target = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 4)
    predicted = torch.tensor([
        [0.0, 0.0, 1.0, 1.0],  # exact: 1
        [0.0, 0.0, 0.5, 1.0],  # IoU exactly 0.5: counts for ap50
        [2.0, 2.0, 3.0, 3.0],  # apart: 0
        [0.5, 0.5, 0.5, 0.5],  # empty: 0
    ])
    assert metrics.box_iou(predicted, target).tolist() == [1.0, 0.5, 0.0, 0.0]
    assert metrics.ap50(predicted, target) == 0.5
    assert metrics.mean_iou(predicted, target) == 0.375
    both_empty = torch.zeros(1, 4)
    assert metrics.mean_iou(both_empty, both_empty) == 0.0
    assert math.isnan(metrics.mean_iou(torch.zeros(0, 4), torch.zeros(0, 4)))


def test_shape_mismatch_raises():
    predicted, target = boxes(0)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        metrics.mean_iou(predicted[:, :2], target)
