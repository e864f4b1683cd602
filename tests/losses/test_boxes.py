"""Box losses: torchvision.ops' formulas written out box by box, degenerate and extreme boxes.

torchvision cannot be installed beside this torch, so ``generalized_box_iou_loss``,
``distance_box_iou_loss`` and ``complete_box_iou_loss`` (eps = 1e-7) are
restated here in plain Python floats, one box at a time, for proper boxes
(x1 < x2, y1 < y2), the inputs torchvision documents.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from losszoo.catalog import boxes as catalog
from losszoo.factory import build
from losszoo.registry import Registry

EPS = 1e-7
ENTRIES = {e.name: e for e in catalog.LOSSES}
REGISTRY = Registry("loss", "losses", ())
for _entry in catalog.LOSSES:
    REGISTRY.add(_entry)
IOU_LOSSES = ("iou", "giou", "diou", "ciou")


def make(name: str, **kw):
    return build(REGISTRY, name, dict(kw))


def proper_boxes(seed: int, n: int = 8, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true boxes with x1 < x2, y1 < y2, overlapping or not."""
    g = torch.Generator().manual_seed(seed)

    def draw() -> torch.Tensor:
        corner = torch.rand(n, 2, generator=g, dtype=dtype)
        size = 0.05 + 0.5 * torch.rand(n, 2, generator=g, dtype=dtype)
        return torch.cat([corner, corner + size], dim=1)

    return draw(), draw()


def close(actual: torch.Tensor, expected, rtol: float = 1e-7, atol: float = 1e-9) -> None:
    torch.testing.assert_close(actual.double(), torch.as_tensor(expected, dtype=torch.float64), rtol=rtol, atol=atol)


# ----------------------------------------------------------------- slow references, one box at a time


def slow_parts(b, g):
    """torchvision's _loss_inter_union and _diou_iou_loss pieces for one pair of boxes."""
    x1, y1, x2, y2 = b
    gx1, gy1, gx2, gy2 = g
    xk1, yk1, xk2, yk2 = max(x1, gx1), max(y1, gy1), min(x2, gx2), min(y2, gy2)
    inter = (xk2 - xk1) * (yk2 - yk1) if (yk2 > yk1 and xk2 > xk1) else 0.0
    union = (x2 - x1) * (y2 - y1) + (gx2 - gx1) * (gy2 - gy1) - inter
    iou = inter / (union + EPS)
    xc1, yc1, xc2, yc2 = min(x1, gx1), min(y1, gy1), max(x2, gx2), max(y2, gy2)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    diagonal = (xc2 - xc1) ** 2 + (yc2 - yc1) ** 2 + EPS
    centres = ((x1 + x2) / 2 - (gx1 + gx2) / 2) ** 2 + ((y1 + y2) / 2 - (gy1 + gy2) / 2) ** 2
    return iou, union, area_c, centres / diagonal


def slow_iou(b, g):
    return 1 - slow_parts(b, g)[0]


def slow_giou(b, g):
    iou, union, area_c, _ = slow_parts(b, g)
    return 1 - (iou - (area_c - union) / (area_c + EPS))


def slow_diou(b, g):
    iou, _, _, penalty = slow_parts(b, g)
    return 1 - iou + penalty


def slow_ciou(b, g, alpha=None):
    iou, _, _, penalty = slow_parts(b, g)
    v = 4 / math.pi**2 * (math.atan((g[2] - g[0]) / (g[3] - g[1])) - math.atan((b[2] - b[0]) / (b[3] - b[1]))) ** 2
    if alpha is None:
        alpha = v / (1 - iou + v + EPS)
    return 1 - iou + penalty + alpha * v


SLOW = {"iou": slow_iou, "giou": slow_giou, "diou": slow_diou, "ciou": slow_ciou}


def slow(name, boxes, target) -> list[float]:
    return [SLOW[name](b, g) for b, g in zip(boxes.tolist(), target.tolist(), strict=True)]


# ----------------------------------------------------------------- the catalogue


def test_catalogue_entries_are_box_losses():
    assert set(ENTRIES) == {*IOU_LOSSES, "box_smooth_l1"}
    for name, entry in ENTRIES.items():
        assert (entry.input, entry.target_kind, entry.context, entry.elementwise) == ("boxes", "boxes", (), True)
        assert entry.paper and entry.formula and entry.summary and entry.reference, name
        for p in entry.params:
            assert p.doc and p.short and p.problem(p.default) is None, (name, p.name)
    assert ENTRIES["ciou"].no_gradcheck and not any(ENTRIES[n].no_gradcheck for n in ("iou", "giou", "diou"))


# ----------------------------------------------------------------- reference values


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", IOU_LOSSES)
def test_iou_losses_match_torchvision_formulas(name, seed):
    boxes, target = proper_boxes(seed, n=12)
    expected = slow(name, boxes, target)
    close(make(name, reduction="none")(boxes, target), expected)
    close(make(name, reduction="sum")(boxes, target), sum(expected))
    close(make(name)(boxes, target), sum(expected) / len(expected))


def test_known_values():
    unit = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    apart = torch.tensor([[2.0, 0.0, 3.0, 1.0]])  # IoU 0, enclosing box 3 x 1, centres 2 apart
    assert make("iou")(unit, apart).item() == 1.0
    assert make("giou")(unit, apart).item() == pytest.approx(1 + 1 / 3, rel=1e-6)
    assert make("diou")(unit, apart).item() == pytest.approx(1 + 4 / 10, rel=1e-6)
    for name in IOU_LOSSES:
        assert make(name)(unit, unit).item() == pytest.approx(0.0, abs=1e-6)


def test_ciou_gradient_holds_alpha_constant():
    # d/db of [1 - IoU + rho^2/c^2 + alpha v] with alpha frozen at its value: central differences of the slow
    # formula with alpha passed in.
    boxes, target = proper_boxes(5, n=4)
    boxes.requires_grad_(True)
    make("ciou", reduction="sum")(boxes, target).backward()
    h = 1e-6
    for i, (b, g) in enumerate(zip(boxes.detach().tolist(), target.tolist(), strict=True)):
        iou, *_ = slow_parts(b, g)
        v = 4 / math.pi**2 * (math.atan((g[2] - g[0]) / (g[3] - g[1])) - math.atan((b[2] - b[0]) / (b[3] - b[1]))) ** 2
        alpha = v / (1 - iou + v + EPS)
        for k in range(4):
            up, down = list(b), list(b)
            up[k] += h
            down[k] -= h
            numeric = (slow_ciou(up, g, alpha) - slow_ciou(down, g, alpha)) / (2 * h)
            assert boxes.grad[i, k].item() == pytest.approx(numeric, rel=1e-5, abs=1e-7), (i, k)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [0.0, 0.1, 1.0])
def test_box_smooth_l1_is_torch_smooth_l1_on_the_coordinates(beta, reduction):
    boxes, target = proper_boxes(6)
    expected = F.smooth_l1_loss(boxes, target, beta=beta, reduction=reduction)
    close(make("box_smooth_l1", beta=beta, reduction=reduction)(boxes, target), expected)


# ----------------------------------------------------------------- degenerate predictions


@pytest.mark.parametrize("name", IOU_LOSSES)
def test_swapped_corners_are_the_same_box(name):
    boxes, target = proper_boxes(7)
    swapped = boxes[:, [2, 3, 0, 1]]  # x2 < x1 and y2 < y1
    half = torch.stack([boxes[:, 2], boxes[:, 1], boxes[:, 0], boxes[:, 3]], dim=1)  # x only
    expected = make(name, reduction="none")(boxes, target)
    close(make(name, reduction="none")(swapped, target), expected)
    close(make(name, reduction="none")(half, target), expected)


def degenerate_cases(dtype):
    boxes, target = proper_boxes(8, dtype=dtype)
    point = boxes[:, :2].repeat(1, 2)  # zero width and height
    flat = boxes.clone()
    flat[:, 3] = flat[:, 1]  # zero height: atan(w / 0)
    sign = torch.where(torch.rand(boxes.shape, generator=torch.Generator().manual_seed(1)) > 0.5, 1.0, -1.0)
    return {
        "zero-size boxes": (point, target),
        "zero-height boxes": (flat, target),
        "all zero": (torch.zeros_like(boxes), target),
        "both empty": (torch.zeros_like(boxes), torch.zeros_like(target)),
        "coordinates of +-1e4": (1e4 * sign.to(dtype), target),
        "exactly the target": (target.clone(), target),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_degenerate_and_extreme_boxes_give_finite_values_and_gradients(name, dtype):
    loss = make(name)
    for case, (boxes, target) in degenerate_cases(dtype).items():
        boxes = boxes.clone().requires_grad_(True)
        value = loss(boxes, target)
        assert value.ndim == 0 and torch.isfinite(value), (case, value)
        value.backward()
        assert torch.isfinite(boxes.grad).all(), case


def test_an_empty_prediction_has_iou_zero():
    point = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    target = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    assert make("iou")(point, target).item() == 1.0
    assert math.isfinite(make("ciou")(point, target).item())


# ----------------------------------------------------------------- shared properties


@pytest.mark.parametrize("name", ["iou", "giou", "diou", "box_smooth_l1"])
def test_gradcheck_float64(name):
    boxes, target = proper_boxes(9, n=6)
    # Shift the predictions so that none sits on a kink (an edge exactly on the target's edge).
    boxes = (boxes + 0.013).requires_grad_(True)
    loss = make(name)
    assert torch.autograd.gradcheck(lambda b: loss(b, target), (boxes,), eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_bf16_autocast_runs_in_float32(name):
    boxes, target = proper_boxes(10, dtype=torch.float32)
    boxes.requires_grad_(True)
    loss = make(name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(boxes.to(torch.bfloat16), target)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(boxes.grad).all()


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_reductions_agree(name):
    boxes, target = proper_boxes(11)
    none = make(name, reduction="none")(boxes, target)
    assert none.shape == ((8, 4) if name == "box_smooth_l1" else (8,))
    close(make(name, reduction="sum")(boxes, target), none.sum())
    close(make(name, reduction="mean")(boxes, target), none.mean())


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_wrong_shapes_raise_value_error(name):
    boxes, target = proper_boxes(12)
    loss = make(name)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        loss(boxes[:, :3], target[:, :3])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        loss(boxes, target[:4])
