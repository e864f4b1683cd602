"""Batches for pair and triplet losses: ``m`` samples of each of several
classes per batch, so every anchor has positives in its batch."""

from __future__ import annotations

import torch


def m_per_class_order(labels: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
    """A permutation of sample indices in shuffled groups of ``m`` same-class samples.

    Slicing it into batches of ``k * m`` gives batches of ``k`` class groups.
    Classes with fewer than ``m`` samples repeat some (sampling with
    replacement inside the group); leftover samples of a class beyond a whole
    number of groups wait for the next epoch's permutation.
    """
    groups = []
    for c in torch.unique(labels):
        members = torch.nonzero(labels == c).squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        if len(members) < m:
            extra = members[torch.randint(len(members), (m - len(members),), generator=generator)]
            members = torch.cat([members, extra])
        whole = len(members) // m * m
        groups.append(members[:whole].view(-1, m))
    groups = torch.cat(groups)
    return groups[torch.randperm(len(groups), generator=generator)].reshape(-1)
