"""Permuting the hidden units of one network to match another: weight matching.

Ainsworth, Hayase and Srinivasa, Git Re-Basin: Merging Models modulo
Permutation Symmetries, ICLR 2023, section 3.2 (after Entezari et al., ICLR
2022). Reordering the hidden units of a layer -- the rows of its weight and
bias, the entries of its batch norm, and the matching input columns of the next
layer -- leaves the function a network computes unchanged. Weight matching
picks, for every hidden layer ``l``, the permutation ``P_l`` of run B's units that
maximizes the total inner product with run A's weights,

    max_P  sum_l <W_l^A, P_l W_l^B P_{l-1}^T>,

by coordinate descent: one layer at a time, the others held fixed, is a linear
assignment problem over the layer's units, with cost
``C[i, j] = sum over the tensors P_l touches of <unit i of A, unit j of B>``
(B's other axes already permuted), solved exactly by
``scipy.optimize.linear_sum_assignment``. Layers are visited in a random order
until a full pass changes no permutation.

A :class:`PermutationSpec` says which entry of the state dict each permutation
moves, along which axis. Built for the registry's ``mlp`` (hidden linear
layers, their batch norms) and ``cnn`` (conv channels, their batch norms); the
head's outputs are never permuted (they are the classes or the embedding the
loss reads), nor are those of an embedding layer between body and head.
Convention: ``perm[i] = j`` means unit ``i`` of the permuted B is unit ``j`` of B.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from losszoo.errors import LosszooError

State = dict[str, torch.Tensor]

#: Layers that act on each unit (channel) alone, so they commute with a permutation of units.
_ELEMENTWISE = (nn.ReLU, nn.GELU, nn.Tanh, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Sigmoid, nn.Dropout, nn.Identity,
                nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class PermutationSpec:
    """``axes[p]``: the ``(state key, axis)`` pairs that permutation ``p`` moves; ``sizes[p]`` its units."""

    axes: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def of_key(self) -> dict[str, dict[int, str]]:
        """For each state key, which permutation moves each of its axes."""
        out: dict[str, dict[int, str]] = {}
        for p, pairs in self.axes.items():
            for key, axis in pairs:
                out.setdefault(key, {})[axis] = p
        return out


def _no_spec(model: nn.Module, why: str) -> LosszooError:
    return LosszooError(f"--align has no permutation spec for this {type(model).__name__.lower()} model: {why} "
                        "(weight matching covers the registry's mlp and cnn)")


def permutation_spec(model: nn.Module) -> PermutationSpec:
    """The permutation spec of a registry ``mlp`` or ``cnn`` (a ``Net``: a Sequential body, a linear head).

    Walks the body in order: each linear or conv layer starts a new permutation of its outputs and takes
    the previous one on its inputs; a batch norm follows the current one; element-wise layers pass it on.
    """
    from losszoo.models.nets import CNN, MLP, Images

    if not isinstance(model, (MLP, CNN)):
        raise _no_spec(model, "not an mlp or cnn")
    state = model.state_dict()
    spec, current = PermutationSpec(), None
    layers = list(model.body)
    for i, layer in enumerate(layers):
        prefix = f"body.{i}"
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            if current is not None:
                spec.axes[current].append((f"{prefix}.weight", 1))
            current = f"P{len(spec.axes)}"
            spec.sizes[current] = layer.weight.shape[0]
            spec.axes[current] = [(k, 0) for k in (f"{prefix}.weight", f"{prefix}.bias") if k in state]
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            if current is None:
                raise _no_spec(model, f"a batch norm before any layer ({prefix})")
            spec.axes[current] += [(f"{prefix}.{name}", 0) for name in ("weight", "bias", "running_mean",
                                                                        "running_var") if f"{prefix}.{name}" in state]
        elif isinstance(layer, nn.Flatten):
            # flattening (C, H, W) mixes channels with positions unless the map is 1x1 (global pooling)
            before = layers[i - 1] if i else None
            pooled = isinstance(before, nn.AdaptiveAvgPool2d) and before.output_size in (1, (1, 1))
            if current is not None and not pooled:
                raise _no_spec(model, f"{prefix} flattens a feature map")
        elif isinstance(layer, (nn.AdaptiveAvgPool2d, *_ELEMENTWISE, Images)):
            continue
        else:
            raise _no_spec(model, f"{prefix} is a {type(layer).__name__}")
    if current is None:
        raise _no_spec(model, "it has no hidden units to permute")
    # the features feed the head, or an embedding layer (a "neck") between body and head; the neck's
    # outputs are the features retrieval reads, and are left in their order like the head's
    neck = dict(model.named_children()).get("neck")  # a registered submodule, not a class default
    if neck is not None and not isinstance(neck, nn.Linear):
        raise _no_spec(model, f"its neck is a {type(neck).__name__}")
    spec.axes[current].append(("neck.weight" if neck is not None else "head.weight", 1))
    return spec


def _permuted(value: torch.Tensor, axes: dict[int, str], perms: dict[str, torch.Tensor],
              skip_axis: int | None = None) -> torch.Tensor:
    for axis, p in axes.items():
        if axis != skip_axis:
            value = value.index_select(axis, perms[p].to(value.device))
    return value


def permute(spec: PermutationSpec, perms: dict[str, torch.Tensor], state: State) -> State:
    """``state`` with every axis in ``spec`` reordered by its permutation; other entries as they are."""
    out = dict(state)
    for key, axes in spec.of_key().items():
        out[key] = _permuted(state[key], axes, perms)
    return out


def _unit_rows(value: torch.Tensor, axis: int) -> torch.Tensor:
    return value.movedim(axis, 0).reshape(value.shape[axis], -1).to(torch.float64)


def weight_matching(spec: PermutationSpec, state_a: State, state_b: State, seed: int = 0,
                    max_passes: int = 100) -> tuple[dict[str, torch.Tensor], int]:
    """The permutations of B's units that best match A's weights, and the passes it took.

    Only parameters enter the cost (batch-norm running statistics are data, not weights); ``permute``
    then moves buffers too.
    """
    from scipy.optimize import linear_sum_assignment

    perms = {p: torch.arange(n) for p, n in spec.sizes.items()}
    names = list(spec.sizes)
    generator = torch.Generator().manual_seed(seed)
    buffers = ("running_mean", "running_var")
    axes_of = spec.of_key()
    passes = 0
    for passes in range(1, max_passes + 1):  # noqa: B007 (the count is reported)
        changed = False
        for p in (names[i] for i in torch.randperm(len(names), generator=generator).tolist()):
            cost = torch.zeros(spec.sizes[p], spec.sizes[p], dtype=torch.float64)
            for key, axis in spec.axes[p]:
                if key.endswith(buffers):
                    continue
                b = _permuted(state_b[key], axes_of[key], perms, skip_axis=axis)
                cost += _unit_rows(state_a[key], axis) @ _unit_rows(b, axis).T
            _, columns = linear_sum_assignment(cost.numpy(), maximize=True)
            new = torch.as_tensor(columns, dtype=torch.long)
            index = torch.arange(len(new))
            # keep the old permutation unless the new one is strictly better (ties would cycle forever)
            old_score, new_score = float(cost[index, perms[p]].sum()), float(cost[index, new].sum())
            if new_score > old_score + 1e-12 * max(1.0, abs(old_score)):
                perms[p], changed = new, True
        if not changed:
            break
    return perms, passes
