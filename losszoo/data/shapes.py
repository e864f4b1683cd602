"""``shapes``: seeded synthetic images with per-pixel masks, for segmentation,
and its two variants: ``shapes_multilabel`` (which kinds are in the image) and
``shapes_boxes`` (one object per image; predict its bounding box).

Each image is a flat background with ``shapes`` objects drawn on it in a random
order (a later object covers an earlier one, in the image and in the mask),
plus Gaussian pixel noise. The mask holds one class per pixel:

    0 background, 1 circle, 2 square, 3 triangle, 4 line

Circles, squares and triangles are drawn with the same area, so the class is
told by the outline, not the size; squares and triangles are rotated at random.
Colour (RGB) or intensity (grey) is random per object and carries no class
information. Lines are ``line_width`` pixels wide and ``thin_fraction`` is the
chance that an object is a line, so lines can be made rare as well as thin: the
class imbalance that Dice, Tversky and focal losses are meant for.

Everything is vectorised over images; the only Python loops are over the
object slots and the four kinds (1,000 images of 32x32 in a few milliseconds).
The three generators draw the same random numbers in the same order, so
``shapes_multilabel(**kw)`` shows the very images of ``shapes(**kw)``.
Metadata: ``losszoo/catalog/datasets.py`` (shapes), ``losszoo/catalog/multilabel.py``
and ``losszoo/catalog/boxes.py`` (the variants).

>>> source = shapes(n_samples=4, size=16)
>>> source.x.shape, source.y.shape, source.x.dtype, source.y.dtype
((4, 1, 16, 16), (4, 16, 16), dtype('float32'), dtype('int64'))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from losszoo.data.sources import Source

CLASS_NAMES = ["background", "circle", "square", "triangle", "line"]
CIRCLE, SQUARE, TRIANGLE, LINE = 1, 2, 3, 4
KIND_NAMES = CLASS_NAMES[1:]  # the labels of shapes_multilabel, in this order
BOX_NAMES = ["x1", "y1", "x2", "y2"]

_CHUNK_PIXELS = 1 << 22  # images rendered per step: bounds the temporaries to ~16 MB each
_SQUARE_HALF_SIDE = math.sqrt(math.pi) / 2  # half-side of the square with the area of the unit circle
_TRIANGLE_RADIUS = math.sqrt(4 * math.pi / (3 * math.sqrt(3)))  # circumradius of the same-area triangle


@dataclass
class Objects:
    """What is drawn: every array is (n, slots) or (n, slots, 2), in pixel units (pixel i spans [i, i+1))."""

    kinds: np.ndarray  # 1..4
    centre: np.ndarray  # (x, y): x along the width (columns), y down the rows
    radius: np.ndarray  # of the circle with the object's area
    angle: np.ndarray  # rotation of squares and triangles, direction of lines
    length: np.ndarray  # of lines


def kind_probabilities(thin_fraction: float) -> np.ndarray:
    """Chance of circle, square, triangle, line: lines get ``thin_fraction``, the others share the rest."""
    rest = (1.0 - thin_fraction) / 3.0
    return np.array([rest, rest, rest, thin_fraction])


def _inside(kind: int, dx: np.ndarray, dy: np.ndarray, radius: np.ndarray, angle: np.ndarray,
            length: np.ndarray, line_width: float) -> np.ndarray:
    """Which pixels of (n, H, W) offsets from each object's centre lie inside it; parameters are (n, 1, 1)."""
    if kind == CIRCLE:
        return dx * dx + dy * dy <= radius * radius
    cos, sin = np.cos(angle), np.sin(angle)
    if kind == SQUARE:  # rotate into the square's frame
        half = _SQUARE_HALF_SIDE * radius
        return (np.abs(cos * dx + sin * dy) <= half) & (np.abs(-sin * dx + cos * dy) <= half)
    if kind == TRIANGLE:  # equilateral: inside every edge, each at the inradius (half the circumradius)
        inradius = 0.5 * _TRIANGLE_RADIUS * radius
        inside = np.ones(np.broadcast_shapes(dx.shape, dy.shape), dtype=bool)
        for k in range(3):  # the outward normal of the edge facing the vertex at angle + 2 pi (k - 1) / 3
            normal = angle + math.pi / 3 + 2 * math.pi * k / 3
            inside &= np.cos(normal) * dx + np.sin(normal) * dy <= inradius
        return inside
    # line: the segment through the centre along `angle`; distance to it within half the width
    along = np.clip(cos * dx + sin * dy, -0.5 * length, 0.5 * length)
    ex, ey = dx - along * cos, dy - along * sin
    return ex * ex + ey * ey <= (0.5 * line_width) ** 2


def _draw(n: int, size: int, slots: int, channels: int, noise: float, line_width: float, thin_fraction: float,
          random_state: int, fit: bool = False) -> tuple[np.ndarray, np.ndarray, Objects]:
    """Images (n, channels, size, size), masks (n, size, size) and the objects drawn on them.

    Every random draw comes from ``numpy.random.default_rng(random_state)`` in a
    fixed order, so the same arguments give the same arrays on every machine.
    With ``fit`` every object is moved wholly inside the image (:func:`_fit_inside`).
    """
    rng = np.random.default_rng(random_state)
    kinds = rng.choice(np.arange(1, 5), size=(n, slots), p=kind_probabilities(thin_fraction))
    centre = rng.uniform(0.15 * size, 0.85 * size, size=(n, slots, 2)).astype(np.float32)
    # radius of the equal-area circle; at least 1.5 pixels so a tiny image still shows every kind
    radius = rng.uniform(max(1.5, 0.1 * size), max(2.5, 0.2 * size), size=(n, slots)).astype(np.float32)
    angle = rng.uniform(0.0, 2 * math.pi, size=(n, slots)).astype(np.float32)
    length = rng.uniform(0.4 * size, 0.8 * size, size=(n, slots)).astype(np.float32)
    background = rng.uniform(0.0, 0.3, size=(n, channels)).astype(np.float32)
    colour = rng.uniform(0.5, 1.0, size=(n, slots, channels)).astype(np.float32)
    pixel_noise = rng.standard_normal((n, channels, size, size), dtype=np.float32)
    objects = Objects(kinds, centre, radius, angle, length)
    if fit:
        _fit_inside(objects, size, line_width)

    images = np.empty((n, channels, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.int64)
    grid = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    chunk = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        image, mask = images[rows], masks[rows]  # views: written in place
        image[:] = background[rows, :, None, None]
        inside = np.empty(mask.shape, dtype=bool)
        for slot in range(slots):
            for kind in (CIRCLE, SQUARE, TRIANGLE, LINE):
                hit = np.flatnonzero(kinds[rows, slot] == kind)
                if len(hit):
                    cx, cy, r, a, ell = (v[hit + start, slot, None, None] for v in (
                        centre[..., 0], centre[..., 1], radius, angle, length))
                    inside[hit] = _inside(kind, grid[None, None, :] - cx, grid[None, :, None] - cy, r, a, ell,
                                          line_width)
            np.copyto(mask, kinds[rows, slot, None, None], where=inside)
            np.copyto(image, colour[rows, slot, :, None, None], where=inside[:, None])
    images += noise * pixel_noise
    return images, masks, objects


def shapes(
    n_samples: int = 1000,
    size: int = 32,
    shapes: int = 3,
    channels: int = 1,
    noise: float = 0.1,
    line_width: float = 1.0,
    thin_fraction: float = 0.25,
    random_state: int = 0,
    **_: Any,
) -> Source:
    """``n_samples`` images (N, channels, size, size) float32 and masks (N, size, size) int64."""
    images, masks, _objects = _draw(n_samples, size, shapes, channels, noise, line_width, thin_fraction,
                                    random_state)
    return Source(images, masks, "segmentation", image_shape=(channels, size, size), class_names=list(CLASS_NAMES))


# --------------------------------------------------------------------------- variants


def shapes_multilabel(
    n_samples: int = 1000,
    size: int = 32,
    shapes: int = 3,
    channels: int = 1,
    noise: float = 0.1,
    line_width: float = 1.0,
    thin_fraction: float = 0.25,
    random_state: int = 0,
    **_: Any,
) -> Source:
    """The images of :func:`shapes` with, per image, which kinds can be seen: y (N, 4) float32 of 0/1.

    Label ``k`` (circle, square, triangle, line) is 1 when at least one pixel of
    the mask shows kind ``k``; an object wholly covered by later ones does not count.

    >>> source = shapes_multilabel(n_samples=3, size=16)
    >>> source.y.shape, source.y.dtype, source.task, source.class_names
    ((3, 4), dtype('float32'), 'multilabel', ['circle', 'square', 'triangle', 'line'])
    """
    images, masks, _objects = _draw(n_samples, size, shapes, channels, noise, line_width, thin_fraction,
                                    random_state)
    flat = masks.reshape(len(masks), -1)
    present = np.stack([(flat == kind).any(axis=1) for kind in (CIRCLE, SQUARE, TRIANGLE, LINE)], axis=1)
    return Source(images, present.astype(np.float32), "multilabel", image_shape=(channels, size, size),
                  class_names=list(KIND_NAMES))


def _box_offsets(kinds: np.ndarray, radius: np.ndarray, angle: np.ndarray, length: np.ndarray,
                 line_width: float) -> np.ndarray:
    """Each object's exact bounding box relative to its centre, (..., 4) as (x1, y1, x2, y2) in pixels.

    A circle spans its centre +- radius; a rotated square and a triangle span
    their corners; a line spans its end points widened by half the line width
    (the set drawn is every point within half the width of the segment).
    """
    r, a = radius.astype(np.float64), angle.astype(np.float64)
    cos, sin = np.abs(np.cos(a)), np.abs(np.sin(a))
    half_x = np.where(kinds == CIRCLE, r, 0.0)
    half_y = half_x.copy()
    square = kinds == SQUARE
    half_x = np.where(square, _SQUARE_HALF_SIDE * r * (cos + sin), half_x)
    half_y = np.where(square, _SQUARE_HALF_SIDE * r * (cos + sin), half_y)
    line = kinds == LINE
    half_length = 0.5 * length.astype(np.float64)
    half_x = np.where(line, half_length * cos + 0.5 * line_width, half_x)
    half_y = np.where(line, half_length * sin + 0.5 * line_width, half_y)
    offsets = np.stack([-half_x, -half_y, half_x, half_y], axis=-1)
    vertex = a[..., None] + 2 * math.pi * np.arange(3) / 3  # triangle corners, on the circumradius
    vx = _TRIANGLE_RADIUS * r[..., None] * np.cos(vertex)
    vy = _TRIANGLE_RADIUS * r[..., None] * np.sin(vertex)
    corners = np.stack([vx.min(-1), vy.min(-1), vx.max(-1), vy.max(-1)], axis=-1)
    return np.where((kinds == TRIANGLE)[..., None], corners, offsets)


def bounding_boxes(objects: Objects, size: int, line_width: float) -> np.ndarray:
    """The exact bounding box of every object, (n, slots, 4) as (x1, y1, x2, y2) divided by the image side.

    (0, 0) is the top-left corner of the image and (1, 1) the bottom-right; x
    runs along the width. Clipped to [0, 1], which is exact for an object wholly
    inside the image (``shapes_boxes`` places them so) and for a circle.
    """
    offsets = _box_offsets(objects.kinds, objects.radius, objects.angle, objects.length, line_width)
    centre = np.concatenate([objects.centre, objects.centre], axis=-1).astype(np.float64)
    return np.clip((centre + offsets) / size, 0.0, 1.0)


def _fit_inside(objects: Objects, size: int, line_width: float) -> None:
    """Move each centre so that the whole object lies inside the image, keeping its relative position.

    The centre drawn uniformly in [0.15, 0.85] of the side is mapped linearly
    onto the range of centres that keep the object's box inside; an object
    larger than the image is centred.
    """
    offsets = _box_offsets(objects.kinds, objects.radius, objects.angle, objects.length, line_width)
    for axis in (0, 1):
        low, high = -offsets[..., axis], size - offsets[..., axis + 2]  # admissible centres
        share = (objects.centre[..., axis] - 0.15 * size) / (0.7 * size)
        fitted = np.where(high >= low, low + share * (high - low), 0.5 * (low + high))
        objects.centre[..., axis] = fitted.astype(np.float32)


def shapes_boxes(
    n_samples: int = 1000,
    size: int = 32,
    channels: int = 1,
    noise: float = 0.1,
    line_width: float = 1.0,
    thin_fraction: float = 0.25,
    random_state: int = 0,
    **_: Any,
) -> Source:
    """Images with one object each and its bounding box: y (N, 4) float32 (x1, y1, x2, y2) in [0, 1].

    Each object lies wholly inside its image and the box is its exact extent
    (:func:`bounding_boxes`): sub-pixel, and never empty, even for a line too
    thin to cover a pixel centre. The drawn pixels lie inside the box and reach
    to within about a pixel of its edges (a thin line's ends, a little more).

    >>> source = shapes_boxes(n_samples=3, size=16)
    >>> source.y.shape, source.y.dtype, source.task
    ((3, 4), dtype('float32'), 'boxes')
    >>> bool((source.y[:, :2] < source.y[:, 2:]).all() and (source.y >= 0).all() and (source.y <= 1).all())
    True
    """
    images, _masks, objects = _draw(n_samples, size, 1, channels, noise, line_width, thin_fraction, random_state,
                                    fit=True)
    boxes = bounding_boxes(objects, size, line_width)[:, 0].astype(np.float32)
    return Source(images, boxes, "boxes", image_shape=(channels, size, size), class_names=list(BOX_NAMES))


# --------------------------------------------------------------------------- not images


def multilabel(n_samples: int = 1000, n_features: int = 20, n_classes: int = 5, n_labels: int = 2,
               random_state: int = 0, **_: Any) -> Source:
    """scikit-learn's ``make_multilabel_classification``: x (N, n_features) word counts, y (N, n_classes) 0/1.

    Each sample draws a number of labels from a Poisson of mean ``n_labels`` and
    words from those labels' distributions (McCallum's multi-label model); a
    sample may have no label. (Not an image set: it lives here until
    ``data/sources.py`` takes it.)

    >>> source = multilabel(n_samples=6, n_classes=3)
    >>> source.x.shape, source.y.shape, source.y.dtype, source.task
    ((6, 20), (6, 3), dtype('float32'), 'multilabel')
    """
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=n_samples, n_features=n_features, n_classes=n_classes,
                                          n_labels=n_labels, random_state=random_state)
    return Source(x.astype(np.float32), y.astype(np.float32), "multilabel",
                  class_names=[f"label_{k}" for k in range(n_classes)])
