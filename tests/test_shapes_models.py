"""The `shapes` segmentation dataset and the `unet` and `resnet` models.

Everything is built through the registries, so the catalogue's parameters and
defaults are exercised along with the implementations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losszoo.data.splits import load_data
from losszoo.factory import create_loss
from losszoo.models.resnet import BasicBlock
from losszoo.registry import DATASETS, MODELS
from losszoo.training.trainer import compute_metrics, evaluate

BACKGROUND, CIRCLE, SQUARE, TRIANGLE, LINE = range(5)


def make_shapes(**given):
    entry = DATASETS.get("shapes")
    return entry.load()(**entry.resolve(given))


def make_model(name, image_shape, out_dim, **given):
    entry = MODELS.get(name)
    in_features = int(np.prod(image_shape))
    return entry.load()(in_features=in_features, out_dim=out_dim, image_shape=image_shape, **entry.resolve(given))


# --- shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels, size", [(1, 32), (3, 16), (1, 9)])
def test_shapes_arrays_have_the_documented_shapes_and_types(channels, size):
    source = make_shapes(n_samples=30, size=size, channels=channels)
    assert source.task == "segmentation"
    assert source.x.shape == (30, channels, size, size) and source.x.dtype == np.float32
    assert source.y.shape == (30, size, size) and source.y.dtype == np.int64
    assert source.image_shape == (channels, size, size)
    assert source.class_names == ["background", "circle", "square", "triangle", "line"]
    assert set(np.unique(source.y)) <= set(range(5))
    assert np.isfinite(source.x).all()


def test_shapes_is_fixed_by_random_state():
    a, b = make_shapes(n_samples=50, random_state=3), make_shapes(n_samples=50, random_state=3)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    c = make_shapes(n_samples=50, random_state=4)
    assert not np.array_equal(a.y, c.y) and not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("channels", [1, 3])
def test_masks_mark_exactly_the_drawn_pixels(channels):
    # Without noise the background sits in [0, 0.3] and objects in [0.5, 1] in every channel, and each
    # image's background is one flat colour: the mask must be non-zero exactly where the image is bright.
    source = make_shapes(n_samples=60, channels=channels, noise=0.0)
    bright = (source.x > 0.4).all(axis=1)
    np.testing.assert_array_equal(bright, source.y > 0)
    for image, mask in zip(source.x, source.y, strict=True):
        background = image[:, mask == 0]
        np.testing.assert_array_equal(background, background[:, :1].repeat(background.shape[1], axis=1))


def test_noise_is_gaussian_with_the_asked_deviation():
    clean, noisy = make_shapes(n_samples=40, noise=0.0), make_shapes(n_samples=40, noise=0.3)
    np.testing.assert_array_equal(clean.y, noisy.y)
    assert abs((noisy.x - clean.x).std() - 0.3) < 0.01


def test_every_class_appears_and_the_line_class_can_be_made_rare():
    share = {}
    for thin in (0.0, 0.02, 0.25, 1.0):
        masks = make_shapes(n_samples=400, thin_fraction=thin).y
        share[thin] = np.bincount(masks.ravel(), minlength=5) / masks.size
    assert (share[0.25] > 0).all()
    assert share[0.0][LINE] == 0
    assert 0 < share[0.02][LINE] < share[0.25][LINE] / 5
    assert share[1.0][[CIRCLE, SQUARE, TRIANGLE]].sum() == 0 and share[1.0][LINE] > 0


def _bbox_fill(mask):
    """Pixel count over bounding-box area, or None when the object touches the border."""
    rows, cols = np.nonzero(mask)
    if rows.min() == 0 or cols.min() == 0 or rows.max() == mask.shape[0] - 1 or cols.max() == mask.shape[1] - 1:
        return None
    return len(rows) / ((rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1))


def test_the_drawn_regions_have_their_shapes():
    # One object per image: a disc fills about pi/4 of its bounding box, a triangle at most half of it
    # (any triangle inside a rectangle does), a rotated square between a half and all of it; and the
    # three kinds are drawn with the same area, so that size does not give the class away.
    source = make_shapes(n_samples=300, size=64, shapes=1, noise=0.0, thin_fraction=0.0)
    fills = {CIRCLE: [], SQUARE: [], TRIANGLE: []}
    areas = {CIRCLE: [], SQUARE: [], TRIANGLE: []}
    for mask in source.y:
        kind = int(mask.max())
        fill = _bbox_fill(mask == kind)
        if fill is not None:
            fills[kind].append(fill)
            areas[kind].append((mask == kind).sum())
    assert all(len(f) >= 30 for f in fills.values())
    mean_areas = [np.mean(a) for a in areas.values()]
    assert max(mean_areas) < 1.15 * min(mean_areas)
    assert min(fills[CIRCLE]) > 0.70 and max(fills[CIRCLE]) < 0.87
    assert max(fills[TRIANGLE]) < 0.56
    assert min(fills[SQUARE]) > 0.45 and max(fills[SQUARE]) <= 1.0
    assert np.mean(fills[SQUARE]) > np.mean(fills[TRIANGLE]) + 0.1


def _has_full_2x2(mask):
    return bool((mask[:-1, :-1] & mask[1:, :-1] & mask[:-1, 1:] & mask[1:, 1:]).any())


def test_line_width_sets_how_thick_lines_are():
    thin = make_shapes(n_samples=50, size=32, shapes=1, thin_fraction=1.0, line_width=1.0).y == LINE
    thick = make_shapes(n_samples=50, size=32, shapes=1, thin_fraction=1.0, line_width=3.0).y == LINE
    # a one-pixel line never fills a 2x2 block; a three-pixel one always does
    assert not any(_has_full_2x2(m) for m in thin)
    assert all(_has_full_2x2(m) for m in thick)
    # each line runs at least 0.4 * size pixels along its longer axis
    assert all(np.ptp(np.nonzero(m)[0]) + np.ptp(np.nonzero(m)[1]) >= 0.4 * 32 - 2 for m in thin)
    assert thick.sum() > 2 * thin.sum()


def test_shapes_splits_without_stratification_and_counts_five_classes():
    params = DATASETS.get("shapes").resolve({"n_samples": 50, "size": 16})
    data = load_data("shapes", params, seed=0)
    assert data.task == "segmentation" and data.num_classes == 5
    assert (len(data.train), len(data.val), len(data.test)) == (32, 8, 10)
    assert data.train.x.shape == (32, 1, 16, 16) and data.train.x.dtype == torch.float32
    assert data.train.y.shape == (32, 16, 16) and data.train.y.dtype == torch.int64
    again = load_data("shapes", params, seed=0)
    assert torch.equal(data.test.x, again.test.x) and torch.equal(data.test.y, again.test.y)


# --- unet ----------------------------------------------------------------------------------------


def _check_gradients_reach_everything(model, x):
    x = x.clone().requires_grad_(True)
    out = model(x)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    return out


@pytest.mark.parametrize("image_shape, given", [
    ((1, 32, 32), {}),
    ((3, 13, 10), {"channels": [4, 8, 12]}),  # neither side divides by 4: padded, then cropped back
    ((1, 9, 9), {"channels": [4, 8], "up": "bilinear"}),
    ((1, 8, 8), {"channels": [4]}),  # depth 1: no pooling at all
])
def test_unet_gives_per_pixel_logits_and_gradients_reach_every_parameter(image_shape, given):
    torch.manual_seed(0)
    model = make_model("unet", image_shape, out_dim=5, **given)
    x = torch.randn(2, *image_shape)
    out = _check_gradients_reach_everything(model, x)
    assert out.shape == (2, 5, *image_shape[1:])
    channels = given.get("channels", [16, 32, 64])
    assert model.features(x).shape == (2, channels[-1])
    model.eval()  # batch norm on running statistics: flat rows and images must agree
    torch.testing.assert_close(model(x.flatten(1)), model(x))


def test_unet_logits_at_a_pixel_depend_on_that_pixel():
    torch.manual_seed(0)
    model = make_model("unet", (1, 12, 12), out_dim=3, channels=[4, 8]).eval()
    x = torch.randn(1, 1, 12, 12, requires_grad=True)
    model(x)[0, :, 7, 3].sum().backward()
    assert x.grad[0, 0, 7, 3] != 0


def test_unet_plugs_into_the_trainers_evaluation_and_segmentation_metrics():
    data = load_data("shapes", DATASETS.get("shapes").resolve({"n_samples": 40, "size": 16}), seed=0)
    model = make_model("unet", data.image_shape, out_dim=data.num_classes, channels=[4, 8])
    loss = create_loss("cross_entropy", num_classes=data.num_classes)
    value = loss(model(data.train.x[:8]), data.train.y[:8])
    value.backward()
    evaluation = evaluate(model, loss, "logits", data.val, data, torch.device("cpu"))
    assert evaluation.outputs["pixel_logits"].shape == (len(data.val), 5, 16, 16)
    metrics = compute_metrics(evaluation, ["dice", "miou", "pixel_accuracy"])
    assert set(metrics) == {"dice", "miou", "pixel_accuracy"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


# --- resnet --------------------------------------------------------------------------------------


def _n_parameters(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("image_shape", [(1, 8, 8), (3, 32, 32)])
def test_resnet_with_and_without_skips_has_the_same_parameters_and_different_outputs(image_shape):
    with_skip = make_model("resnet", image_shape, out_dim=10, skip=True)
    without = make_model("resnet", image_shape, out_dim=10, skip=False)
    assert _n_parameters(with_skip) == _n_parameters(without)
    without.load_state_dict(with_skip.state_dict())  # same names and shapes, so the same weights load
    x = torch.randn(4, *image_shape)
    with_skip.eval(), without.eval()
    a, b = with_skip(x), without(x)
    assert a.shape == b.shape == (4, 10)
    assert not torch.allclose(a, b, atol=1e-4)
    assert with_skip.features(x).shape == (4, 64)


def test_resnet_halves_the_resolution_per_stage_while_it_can():
    model = make_model("resnet", (1, 8, 8), out_dim=10, channels=[4, 8, 16, 32])
    maps = model.body[:-2](torch.randn(2, 64))  # before global pooling
    assert maps.shape == (2, 32, 2, 2)  # 8 -> 4 -> 2, then no further: a 1x1 map would be all border
    model = make_model("resnet", (1, 32, 32), out_dim=10)
    assert model.body[:-2](torch.randn(2, 1, 32, 32)).shape == (2, 64, 8, 8)


@pytest.mark.parametrize("stride, c_in, c_out", [(1, 4, 4), (2, 4, 6), (2, 6, 4)])
def test_basic_block_adds_the_parameter_free_shortcut_only_with_skip(stride, c_in, c_out):
    x = torch.randn(2, c_in, 6, 6)
    for skip in (True, False):
        block = BasicBlock(c_in, c_out, stride, skip).eval()
        torch.nn.init.zeros_(block.conv2.weight)  # the residual branch is now exactly zero
        expected = torch.zeros(2, c_out, 6 // stride, 6 // stride)
        if skip:  # option A: subsample, then zero-pad or drop channels
            sub = x[:, :, ::stride, ::stride]
            expected[:, : min(c_in, c_out)] = F.relu(sub[:, : min(c_in, c_out)])
        torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("skip", [True, False])
def test_resnet_trains_on_digits_like_data(skip):
    torch.manual_seed(0)
    model = make_model("resnet", (1, 8, 8), out_dim=10, skip=skip, channels=[8, 16])
    x, y = torch.rand(64, 64), torch.randint(0, 10, (64,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
