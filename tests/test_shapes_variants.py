"""The multi-label and box variants of `shapes`, and scikit-learn's multi-label generator.

Built through the catalogue entries (defaults and bounds exercised with the
generators); the labels and boxes are checked against the masks `shapes` draws.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from losszoo.catalog import boxes as box_catalog
from losszoo.catalog import multilabel as multilabel_catalog
from losszoo.data import shapes as impl

DATASETS = {e.name: e for e in multilabel_catalog.DATASETS + box_catalog.DATASETS}
CIRCLE, SQUARE, TRIANGLE, LINE = range(1, 5)


def make(name: str, **given):
    entry = DATASETS[name]
    return entry.load()(**entry.resolve(given))


def test_catalogue_entries_declare_their_task_and_facts():
    assert set(DATASETS) == {"multilabel", "shapes_multilabel", "shapes_boxes"}
    for name, entry in DATASETS.items():
        params = entry.resolve({})
        facts = entry.facts_of(params)
        assert facts.task == entry.task and facts.samples == params["n_samples"], name
        defaults = inspect.signature(entry.load()).parameters
        for p in entry.params:
            if p.name in defaults:
                assert defaults[p.name].default == p.default, (name, p.name)
    assert DATASETS["shapes_multilabel"].images and DATASETS["shapes_boxes"].images
    assert "shapes" not in {p.name for p in DATASETS["shapes_boxes"].params}  # one object per image


# --- shapes_multilabel --------------------------------------------------------------------------


@pytest.mark.parametrize("channels, size", [(1, 32), (3, 16)])
def test_shapes_multilabel_arrays(channels, size):
    source = make("shapes_multilabel", n_samples=30, size=size, channels=channels)
    assert source.task == "multilabel" and source.class_names == ["circle", "square", "triangle", "line"]
    assert source.x.shape == (30, channels, size, size) and source.x.dtype == np.float32
    assert source.y.shape == (30, 4) and source.y.dtype == np.float32
    assert set(np.unique(source.y)) <= {0.0, 1.0}
    assert source.image_shape == (channels, size, size)
    facts = DATASETS["shapes_multilabel"].facts_of(DATASETS["shapes_multilabel"].resolve(
        {"n_samples": 30, "size": size, "channels": channels}))
    assert (facts.classes, facts.image_shape) == (4, source.image_shape)


def test_shapes_multilabel_labels_are_the_kinds_seen_in_the_shapes_masks():
    kw = dict(n_samples=200, size=24, shapes=4, thin_fraction=0.3, random_state=5)
    labelled, segmented = impl.shapes_multilabel(**kw), impl.shapes(**kw)
    np.testing.assert_array_equal(labelled.x, segmented.x)  # the very same images
    for image in range(200):
        seen = set(np.unique(segmented.y[image])) - {0}
        assert {k + 1 for k in np.flatnonzero(labelled.y[image])} == seen
    counts = labelled.y.sum(axis=1)
    assert counts.min() >= 1 and counts.max() > 1  # at least one kind per image, often several
    assert labelled.y.mean(axis=0).min() > 0.1  # every kind occurs


def test_a_covered_object_is_not_a_label():
    # Find an image where an object was drawn yet no pixel of its kind survives in the mask.
    kw = dict(n_samples=400, size=16, shapes=5, random_state=1)
    labelled = impl.shapes_multilabel(**kw)
    _, masks, objects = impl._draw(400, 16, 5, 1, 0.1, 1.0, 0.25, 1)
    drawn = np.stack([(objects.kinds == k).any(axis=1) for k in (CIRCLE, SQUARE, TRIANGLE, LINE)], axis=1)
    assert (drawn >= labelled.y).all()
    assert (drawn > labelled.y).any()


# --- shapes_boxes -------------------------------------------------------------------------------


def test_shapes_boxes_arrays():
    source = make("shapes_boxes", n_samples=40, size=16, channels=3)
    assert source.task == "boxes" and source.class_names == ["x1", "y1", "x2", "y2"]
    assert source.x.shape == (40, 3, 16, 16) and source.y.shape == (40, 4) and source.y.dtype == np.float32
    assert (source.y >= 0).all() and (source.y <= 1).all()
    assert (source.y[:, :2] < source.y[:, 2:]).all()


@pytest.mark.parametrize("size, line_width", [(32, 1.0), (24, 3.0)])
def test_boxes_hold_every_drawn_pixel_and_hug_it(size, line_width):
    n = 500
    source = impl.shapes_boxes(n_samples=n, size=size, line_width=line_width, noise=0.0, random_state=2)
    _, masks, objects = impl._draw(n, size, 1, 1, 0.0, line_width, 0.25, 2, fit=True)
    centres = (np.arange(size) + 0.5) / size
    for image in range(n):
        rows, cols = np.nonzero(masks[image])
        assert len(cols), "every object shows some pixels"
        x1, y1, x2, y2 = source.y[image]
        assert x1 <= centres[cols].min() and centres[cols].max() <= x2
        assert y1 <= centres[rows].min() and centres[rows].max() <= y2
        # the box of the pixels themselves (their edges) is within 1.5 pixels of the exact box
        pixels = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]) / size
        assert np.abs(pixels - source.y[image]).max() * size <= 1.5, (image, objects.kinds[image])
    # wholly inside: no object is cut by the image border, so no box touches it
    assert (source.y > 0).all() and (source.y < 1).all()
    assert len(set(objects.kinds[:, 0])) == 4


def test_shapes_boxes_is_fixed_by_random_state():
    a, b = impl.shapes_boxes(n_samples=20, random_state=3), impl.shapes_boxes(n_samples=20, random_state=3)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, impl.shapes_boxes(n_samples=20, random_state=4).y)


def test_bounding_boxes_of_known_objects():
    # A circle of radius 2 at (8, 8), an axis-aligned square (angle 0) and a horizontal line, on a 16 image.
    objects = impl.Objects(
        kinds=np.array([[CIRCLE, SQUARE, LINE]]),
        centre=np.array([[[8.0, 8.0], [8.0, 8.0], [8.0, 4.0]]], dtype=np.float32),
        radius=np.array([[2.0, 2.0, 2.0]], dtype=np.float32),
        angle=np.zeros((1, 3), dtype=np.float32),
        length=np.array([[0.0, 0.0, 6.0]], dtype=np.float32),
    )
    boxes = impl.bounding_boxes(objects, 16, line_width=1.0)[0] * 16
    half_side = np.sqrt(np.pi)  # the square with the circle's area (radius 2) has side 2 sqrt(pi)
    np.testing.assert_allclose(boxes[0], [6, 6, 10, 10])
    np.testing.assert_allclose(boxes[1], [8 - half_side, 8 - half_side, 8 + half_side, 8 + half_side], rtol=1e-6)
    np.testing.assert_allclose(boxes[2], [4.5, 3.5, 11.5, 4.5])  # ends at 5 and 11, widened by half the width


# --- multilabel (scikit-learn) ------------------------------------------------------------------


def test_multilabel_is_sklearns_generator():
    from sklearn.datasets import make_multilabel_classification

    source = make("multilabel", n_samples=50, n_features=7, n_classes=3, n_labels=1, random_state=4)
    x, y = make_multilabel_classification(n_samples=50, n_features=7, n_classes=3, n_labels=1, random_state=4)
    assert source.task == "multilabel" and source.class_names == ["label_0", "label_1", "label_2"]
    assert source.x.dtype == np.float32 and source.y.dtype == np.float32 and source.image_shape is None
    np.testing.assert_array_equal(source.x, x.astype(np.float32))
    np.testing.assert_array_equal(source.y, y.astype(np.float32))
    facts = DATASETS["multilabel"].facts_of(DATASETS["multilabel"].resolve({"n_classes": 3, "n_features": 7}))
    assert (facts.task, facts.classes, facts.features) == ("multilabel", 3, 7)
