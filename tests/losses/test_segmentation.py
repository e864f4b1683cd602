"""Segmentation losses: dice, tversky and lovasz_softmax equal kornia 0.9; jaccard, focal_tversky
and dice_ce equal slow per-pixel formulas; identities between them; ignored pixels and empty
masks; gradcheck, extreme logits and bf16."""

from __future__ import annotations

import math

import kornia.losses as K
import pytest
import torch
import torch.nn.functional as F

import losszoo
from losszoo.errors import InvalidParameterError

NAMES = ["dice", "jaccard", "tversky", "focal_tversky", "lovasz_softmax", "dice_ce"]
SEEDS = [0, 1]


def make(name: str, num_classes: int, **kw) -> torch.nn.Module:
    return losszoo.create_loss(name, num_classes=num_classes, **kw)


def inputs(seed: int, shape=(3, 4, 6, 5), scale: float = 2.0, case: str = "plain"):
    """Logits ``(N, C, H, W)`` and masks; ``case`` adds ignored pixels or removes a class."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    logits = scale * torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    masks = torch.randint(0, c, (n, h, w), generator=g)
    if case == "ignored":
        masks[0, :2] = -100
        masks[1, :, 0] = -100
    elif case == "all ignored":
        masks[1] = -100
    elif case == "absent class":
        masks[masks == 1] = 0
        masks[0][masks[0] == c - 1] = 0
    return logits, masks


CASES = ["plain", "ignored", "all ignored", "absent class"]


# ---------------------------------------------------------------------------
# reference values: kornia


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("average", ["micro", "macro"])
@pytest.mark.parametrize("eps", [1e-8, 1e-2])
def test_dice_equals_kornia(seed, case, average, eps):
    logits, masks = inputs(seed, case=case)
    ours = make("dice", 4, average=average, eps=eps)(logits, masks)
    torch.testing.assert_close(ours, K.dice_loss(logits, masks, average=average, eps=eps), rtol=1e-6, atol=1e-8)


def test_dice_default_is_kornia_default_on_a_large_batch():
    """8 x 4 x 64 x 64 takes kornia's one-hot-free CPU path."""
    logits, masks = inputs(7, shape=(8, 4, 64, 64))
    torch.testing.assert_close(make("dice", 4)(logits, masks), K.dice_loss(logits, masks), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(make("dice", 4, average="macro")(logits, masks),
                               K.dice_loss(logits, masks, average="macro"), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("alpha", "beta"), [(0.3, 0.7), (0.5, 0.5), (1.0, 0.0), (0.9, 2.0)])
def test_tversky_equals_kornia(seed, case, alpha, beta):
    logits, masks = inputs(seed, case=case)
    ours = make("tversky", 4, alpha=alpha, beta=beta)(logits, masks)
    torch.testing.assert_close(ours, K.tversky_loss(logits, masks, alpha, beta), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("shape", "case"), [((3, 4, 6, 5), "plain"), ((3, 4, 6, 5), "absent class"),
                                             ((2, 2, 7, 7), "plain"), ((8, 4, 64, 64), "plain")])
def test_lovasz_softmax_equals_kornia(seed, shape, case):
    logits, masks = inputs(seed, shape=shape, case=case)
    logits.requires_grad_(True)
    ours = make("lovasz_softmax", shape[1])(logits, masks)
    theirs = K.lovasz_softmax_loss(logits, masks)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-8)
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_theirs,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_lovasz_drops_ignored_pixels(seed):
    """kornia has no ignore_index: ours on an image with ignored pixels is kornia on the other pixels alone."""
    logits, masks = inputs(seed, shape=(2, 3, 5, 6), case="ignored")
    ours = make("lovasz_softmax", 3)(logits, masks)
    per_image = []
    for b in range(2):
        keep = masks[b] != -100
        kept_logits = logits[b][:, keep].reshape(1, 3, 1, -1)
        kept_masks = masks[b][keep].reshape(1, 1, -1)
        per_image.append(K.lovasz_softmax_loss(kept_logits, kept_masks))
    torch.testing.assert_close(ours, torch.stack(per_image).mean(), rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# slow formulas, python loops over pixels


def slow_counts(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int = -100):
    """Per image, per class: [tp, sum p, sum y] over the non-ignored pixels, python floats."""
    n, c, h, w = logits.shape
    counts = [[[0.0, 0.0, 0.0] for _ in range(c)] for _ in range(n)]
    for b in range(n):
        for i in range(h):
            for j in range(w):
                label = int(masks[b, i, j])
                if label == ignore_index:
                    continue
                z = [float(logits[b, k, i, j]) for k in range(c)]
                top = max(z)
                e = [math.exp(v - top) for v in z]
                p = [v / sum(e) for v in e]
                for k in range(c):
                    counts[b][k][0] += p[k] * (label == k)
                    counts[b][k][1] += p[k]
                    counts[b][k][2] += float(label == k)
    return counts


def slow_present_mean(per_class_by_image: list[list[float | None]]) -> float:
    """Mean over images of the mean over present classes (None = absent); 1 for an image with none."""
    out = []
    for row in per_class_by_image:
        present = [v for v in row if v is not None]
        out.append(sum(present) / len(present) if present else 1.0)
    return sum(out) / len(out)


def slow_jaccard(logits, masks, average, eps=1e-8):
    counts = slow_counts(logits, masks)
    if average == "micro":
        out = []
        for image in counts:
            tp = sum(c[0] for c in image)
            union = sum(c[1] + c[2] - c[0] for c in image)
            out.append(1.0 - (tp / (union + eps) if sum(c[1] + c[2] for c in image) > 0 else 0.0))
        return sum(out) / len(out)
    return slow_present_mean(
        [[1.0 - tp / (p + y - tp + eps) if y > 0 else None for tp, p, y in image] for image in counts]
    )


def slow_focal_tversky(logits, masks, alpha, beta, gamma, eps=1e-8):
    counts = slow_counts(logits, masks)
    return slow_present_mean([
        [(1.0 - tp / (tp + alpha * (p - tp) + beta * (y - tp) + eps)) ** gamma if y > 0 else None
         for tp, p, y in image]
        for image in counts
    ])


def slow_dice_ce(logits, masks, lambda_dice, lambda_ce, average, eps=1e-8):
    counts = slow_counts(logits, masks)
    if average == "micro":
        per_image = []
        for image in counts:
            card = sum(c[1] + c[2] for c in image)
            per_image.append(1.0 - (2 * sum(c[0] for c in image) / (card + eps) if card > 0 else 0.0))
        dice = sum(per_image) / len(per_image)
    else:
        dice = slow_present_mean(
            [[1.0 - 2 * tp / (p + y + eps) if y > 0 else None for tp, p, y in image] for image in counts]
        )
    nll, pixels = 0.0, 0
    n, c, h, w = logits.shape
    for b in range(n):
        for i in range(h):
            for j in range(w):
                label = int(masks[b, i, j])
                if label == -100:
                    continue
                z = [float(logits[b, k, i, j]) for k in range(c)]
                nll += math.log(sum(math.exp(v) for v in z)) - z[label]
                pixels += 1
    return lambda_dice * dice + lambda_ce * (nll / pixels if pixels else 0.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("average", ["micro", "macro"])
def test_jaccard_equals_slow_formula(seed, case, average):
    logits, masks = inputs(seed, shape=(3, 3, 4, 5), case=case)
    ours = make("jaccard", 3, average=average)(logits, masks)
    assert ours.item() == pytest.approx(slow_jaccard(logits, masks, average), rel=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("alpha", "beta", "gamma"), [(0.3, 0.7, 0.75), (0.5, 0.5, 2.0), (0.7, 0.3, 4 / 3)])
def test_focal_tversky_equals_slow_formula(seed, case, alpha, beta, gamma):
    logits, masks = inputs(seed, shape=(3, 3, 4, 5), case=case)
    ours = make("focal_tversky", 3, alpha=alpha, beta=beta, gamma=gamma)(logits, masks)
    assert ours.item() == pytest.approx(slow_focal_tversky(logits, masks, alpha, beta, gamma), rel=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("lambda_dice", "lambda_ce", "average"), [(1.0, 1.0, "micro"), (0.5, 2.0, "macro")])
def test_dice_ce_equals_slow_formula(seed, case, lambda_dice, lambda_ce, average):
    logits, masks = inputs(seed, shape=(3, 3, 4, 5), case=case)
    ours = make("dice_ce", 3, lambda_dice=lambda_dice, lambda_ce=lambda_ce, average=average)(logits, masks)
    assert ours.item() == pytest.approx(slow_dice_ce(logits, masks, lambda_dice, lambda_ce, average), rel=1e-9)


# ---------------------------------------------------------------------------
# identities


@pytest.mark.parametrize("case", CASES)
def test_identities(case):
    logits, masks = inputs(5, case=case)
    tversky_11 = make("tversky", 4, alpha=1.0, beta=1.0)(logits, masks)
    torch.testing.assert_close(make("jaccard", 4, average="macro")(logits, masks), tversky_11, rtol=1e-12, atol=0)
    torch.testing.assert_close(make("focal_tversky", 4, alpha=0.4, beta=0.6, gamma=1.0)(logits, masks),
                               make("tversky", 4, alpha=0.4, beta=0.6)(logits, masks), rtol=1e-12, atol=0)
    # alpha = beta = 1/2 is macro Dice with twice the eps (kornia's note)
    torch.testing.assert_close(make("tversky", 4, alpha=0.5, beta=0.5, eps=1e-3)(logits, masks),
                               make("dice", 4, average="macro", eps=2e-3)(logits, masks), rtol=1e-12, atol=0)
    for average in ("micro", "macro"):
        torch.testing.assert_close(make("dice_ce", 4, lambda_ce=0.0, average=average)(logits, masks),
                                   make("dice", 4, average=average)(logits, masks), rtol=1e-12, atol=0)
    if case != "all ignored":
        torch.testing.assert_close(make("dice_ce", 4, lambda_dice=0.0)(logits, masks),
                                   F.cross_entropy(logits, masks, ignore_index=-100), rtol=1e-12, atol=0)
    # micro Jaccard is D / (2 - D) of the micro Dice score D, at eps = 0, image by image
    for b in range(len(masks)):
        one = (logits[b : b + 1], masks[b : b + 1])
        score = 1.0 - make("dice", 4, eps=0.0)(*one)
        expected = 1.0 - score / (2.0 - score) if (one[1] != -100).any() else torch.ones((), dtype=torch.float64)
        torch.testing.assert_close(make("jaccard", 4, average="micro", eps=0.0)(*one), expected, rtol=1e-12, atol=0)


def test_a_perfect_prediction_scores_zero():
    masks = torch.randint(0, 3, (2, 4, 4))
    logits = 50.0 * F.one_hot(masks, 3).permute(0, 3, 1, 2).double()
    for name in NAMES:
        kw = {} if name == "lovasz_softmax" else {"eps": 0.0}
        assert make(name, 3, **kw)(logits, masks).item() == pytest.approx(0.0, abs=1e-12), name


# ---------------------------------------------------------------------------
# empty masks, gradients, extremes, bf16


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ["absent class", "all ignored"])
def test_empty_masks_give_finite_values_and_gradients(name, case):
    logits, masks = inputs(3, case=case)
    if case == "all ignored":
        masks[:] = -100
    logits.requires_grad_(True)
    value = make(name, 4)(logits, masks)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    if case == "all ignored":
        assert (logits.grad == 0).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kw", [{}, {"ignore_index": 2}], ids=["plain", "ignore class 2"])
def test_gradcheck(name, kw):
    logits, masks = inputs(9, shape=(2, 3, 3, 4))
    loss = make(name, 3, **kw)
    assert torch.autograd.gradcheck(lambda z: loss(z, masks), (logits.requires_grad_(True),), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_extreme_logits_stay_finite(name):
    _, masks = inputs(4, shape=(2, 3, 4, 4))
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float64, torch.float32):
        signs = torch.randint(0, 2, (2, 3, 4, 4), generator=g).to(dtype) * 2 - 1
        perfect = F.one_hot(masks, 3).permute(0, 3, 1, 2).to(dtype) * 2 - 1
        for logits in (1e4 * signs, 1e4 * perfect, -1e4 * perfect):
            logits.requires_grad_(True)
            value = make(name, 3)(logits, masks)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(logits.grad).all(), (name, dtype)


@pytest.mark.parametrize("name", ["tversky", "focal_tversky"])
def test_nothing_predicted_without_eps_stays_finite(name):
    """eps 0 and beta 0: a present class with probability exactly 0 everywhere scores TI = 0, not 0/0."""
    masks = torch.zeros(1, 2, 2, dtype=torch.long)
    logits = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    logits[:, 0] = -1e4
    logits.requires_grad_(True)
    value = make(name, 3, alpha=1.0, beta=0.0, eps=0.0)(logits, masks)
    value.backward()
    assert value.item() == 1.0 and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast(name):
    logits, masks = inputs(2, case="ignored")
    logits = logits.float().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = make(name, 4)(logits, masks)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    torch.testing.assert_close(value.float(), make(name, 4)(logits.detach(), masks), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# module contract


@pytest.mark.parametrize("name", NAMES)
def test_masks_are_checked(name):
    logits, masks = inputs(0)
    loss = make(name, 4)
    for bad in (4, -1):
        wrong = masks.clone()
        wrong[1, 2, 3] = bad
        with pytest.raises(ValueError, match="outside"):
            loss(logits, wrong)
    with pytest.raises(ValueError):
        loss(logits, masks.double())
    with pytest.raises(ValueError, match="logits"):
        loss(logits[:, :3], masks)
    with pytest.raises(InvalidParameterError, match="num_classes"):
        make(name, 1)


def test_meaningless_weights_are_rejected():
    for name in ("tversky", "focal_tversky"):
        with pytest.raises(InvalidParameterError, match="alpha"):
            make(name, 3, alpha=0.0, beta=0.0)
    with pytest.raises(InvalidParameterError, match="lambda"):
        make("dice_ce", 3, lambda_dice=0.0, lambda_ce=0.0)
    with pytest.raises(InvalidParameterError, match="average"):
        make("dice", 3, average="weighted")


def test_metadata():
    for name in NAMES:
        entry = losszoo.loss_spec(name)
        assert (entry.family, entry.input, entry.target_kind) == ("segmentation", "pixel_logits", "masks")
        assert entry.defaults()["ignore_index"] == -100
