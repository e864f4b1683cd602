"""The parameters as one flat vector, and filter-normalized directions in it.

Li, Xu, Taylor, Studer and Goldstein, Visualizing the Loss Landscape of Neural
Nets, NeurIPS 2018, section 4: a random Gaussian direction ``d`` is rescaled
filter by filter to the norm of the weight's filter,

    d_ij <- d_ij / ||d_ij|| * ||w_ij||

where ``i`` is a parameter tensor and ``j`` one of its output filters (a row of
a linear weight, an output channel of a conv kernel). Biases and norm-layer
parameters (every tensor with fewer than 2 dimensions) get a zero direction.
Steps along such a direction are then fractions of the weights' own scale, so
they mean the same in networks of any width and any weight scale (a ReLU
network with batch norm computes the same function when a filter is scaled).

Every filter of every tensor is handled at once: each entry of the flat vector
carries the index of its filter, and the norms are one ``index_add_``.

>>> import torch
>>> net = torch.nn.Linear(3, 2)
>>> space = ParamSpace(list(net.parameters()))
>>> d = space.random_direction(torch.Generator().manual_seed(0))
>>> torch.allclose(space.filter_norms(d), space.filter_norms(space.get()))
True
>>> bool((space.split(d)[1] == 0).all())  # the bias gets no direction
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class ParamSpace:
    """A list of parameters seen as one flat vector of ``dim`` entries.

    ``filter_of[k]`` is the filter that entry ``k`` belongs to, or -1 for an
    entry of a bias or norm-layer parameter, which directions leave alone.
    """

    def __init__(self, params: list[nn.Parameter]):
        if not params:
            raise ValueError("no parameters to measure")
        self.params = list(params)
        self.sizes = [p.numel() for p in self.params]
        self.dim = sum(self.sizes)
        device = self.params[0].device
        ids, offset = [], 0
        for p in self.params:
            if p.ndim >= 2:
                filters = p.shape[0]
                ids.append(torch.arange(offset, offset + filters, device=device).repeat_interleave(p[0].numel()))
                offset += filters
            else:
                ids.append(torch.full((p.numel(),), -1, dtype=torch.long, device=device))
        self.filter_of = torch.cat(ids)
        self.n_filters = offset
        self.in_filter = self.filter_of >= 0
        self._filter_index = self.filter_of[self.in_filter]

    @property
    def device(self) -> torch.device:
        return self.params[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.params[0].dtype

    def get(self) -> torch.Tensor:
        """A detached copy of the current parameters, flat."""
        return torch.cat([p.detach().reshape(-1) for p in self.params]).clone()

    @torch.no_grad()
    def set(self, vector: torch.Tensor) -> None:
        """Write ``vector`` into the parameters, in place."""
        for p, piece in zip(self.params, self.split(vector), strict=True):
            p.copy_(piece)

    def split(self, vector: torch.Tensor) -> list[torch.Tensor]:
        """Views of ``vector`` shaped like each parameter."""
        return [piece.view_as(p) for p, piece in zip(self.params, vector.split(self.sizes), strict=True)]

    def flatten(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in tensors])

    def filter_norms(self, vector: torch.Tensor) -> torch.Tensor:
        """The Euclidean norm of each filter of ``vector``, shape ``(n_filters,)``."""
        squares = vector[self.in_filter].square()
        return torch.zeros(self.n_filters, dtype=vector.dtype, device=vector.device).index_add_(
            0, self._filter_index, squares).sqrt()

    def filter_normalize(self, direction: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``direction`` with each filter rescaled to the norm of that filter of ``weights``;
        zero on biases and norm-layer parameters (and on a filter whose weights are all zero)."""
        d_norms, w_norms = self.filter_norms(direction), self.filter_norms(weights)
        scale = torch.where(d_norms > 0, w_norms / d_norms.clamp_min(torch.finfo(direction.dtype).tiny), 0.0)
        out = torch.zeros_like(direction)
        out[self.in_filter] = direction[self.in_filter] * scale[self._filter_index]
        return out

    def random_direction(self, generator: torch.Generator) -> torch.Tensor:
        """A Gaussian direction, filter-normalized to the current weights. The draw is made on the
        CPU with ``generator``, so a seed gives the same direction on any device."""
        gaussian = torch.randn(self.dim, generator=generator, dtype=torch.float64).to(self.device, self.dtype)
        return self.filter_normalize(gaussian, self.get())

    def rademacher(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` random sign vectors, shape ``(count, dim)``, drawn on the CPU with ``generator``."""
        signs = torch.randint(0, 2, (count, self.dim), generator=generator, dtype=torch.int8)
        return (signs.to(self.device, self.dtype) * 2 - 1)

    def gaussian_unit(self, generator: torch.Generator) -> torch.Tensor:
        """A random unit vector (the start of a power iteration)."""
        v = torch.randn(self.dim, generator=generator, dtype=torch.float64).to(self.device, self.dtype)
        return v / v.norm()

    @contextmanager
    def kept(self) -> Iterator[torch.Tensor]:
        """Yield the current parameters as a flat copy; whatever happens inside, put the very same
        values back on the way out (nothing a measurement does to the weights survives it)."""
        saved = [p.detach().clone() for p in self.params]
        try:
            yield self.flatten(saved)
        finally:
            with torch.no_grad():
                for p, value in zip(self.params, saved, strict=True):
                    p.copy_(value)
