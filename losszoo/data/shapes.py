"""``shapes``: seeded synthetic images with per-pixel masks, for segmentation.

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
Metadata: ``losszoo/catalog/datasets.py``.

>>> source = shapes(n_samples=4, size=16)
>>> source.x.shape, source.y.shape, source.x.dtype, source.y.dtype
((4, 1, 16, 16), (4, 16, 16), dtype('float32'), dtype('int64'))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losszoo.data.sources import Source

CLASS_NAMES = ["background", "circle", "square", "triangle", "line"]
CIRCLE, SQUARE, TRIANGLE, LINE = 1, 2, 3, 4

_CHUNK_PIXELS = 1 << 22  # images rendered per step: bounds the temporaries to ~16 MB each
_SQUARE_HALF_SIDE = math.sqrt(math.pi) / 2  # half-side of the square with the area of the unit circle
_TRIANGLE_RADIUS = math.sqrt(4 * math.pi / (3 * math.sqrt(3)))  # circumradius of the same-area triangle


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
    """``n_samples`` images (N, channels, size, size) float32 and masks (N, size, size) int64.

    Every random draw comes from ``numpy.random.default_rng(random_state)`` in a
    fixed order, so the same arguments give the same arrays on every machine.
    """
    rng = np.random.default_rng(random_state)
    n, s = n_samples, shapes
    kinds = rng.choice(np.arange(1, 5), size=(n, s), p=kind_probabilities(thin_fraction))
    centre = rng.uniform(0.15 * size, 0.85 * size, size=(n, s, 2)).astype(np.float32)
    # radius of the equal-area circle; at least 1.5 pixels so a tiny image still shows every kind
    radius = rng.uniform(max(1.5, 0.1 * size), max(2.5, 0.2 * size), size=(n, s)).astype(np.float32)
    angle = rng.uniform(0.0, 2 * math.pi, size=(n, s)).astype(np.float32)
    length = rng.uniform(0.4 * size, 0.8 * size, size=(n, s)).astype(np.float32)
    background = rng.uniform(0.0, 0.3, size=(n, channels)).astype(np.float32)
    colour = rng.uniform(0.5, 1.0, size=(n, s, channels)).astype(np.float32)
    pixel_noise = rng.standard_normal((n, channels, size, size), dtype=np.float32)

    images = np.empty((n, channels, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.int64)
    grid = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    chunk = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        image, mask = images[rows], masks[rows]  # views: written in place
        image[:] = background[rows, :, None, None]
        inside = np.empty(mask.shape, dtype=bool)
        for slot in range(s):
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
    return Source(images, masks, "segmentation", image_shape=(channels, size, size), class_names=list(CLASS_NAMES))
