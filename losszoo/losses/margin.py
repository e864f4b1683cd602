"""Angular-margin losses on embeddings ``(N, D)`` against learnable class centres.

Every loss here holds its centres as ``weight`` of shape ``(num_classes,
embedding_dim)``, compares L2-normalised embeddings and centres by cosine, puts
a margin on the target class and applies softmax cross-entropy to the scaled
result. Margins are in radians. Metadata and bounds: ``losszoo/catalog/margin.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.losses._common import check_labels

# Keeps sin(theta) = sqrt(1 - cos^2) differentiable at cosines of exactly +-1.
_SIN_EPS = 1e-12


def cosine_logits(embeddings: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Cosine between every embedding and every class centre, ``(N, C)``.

    Zero-norm embeddings give cosines of 0 (F.normalize divides by max(norm, eps)).
    """
    return F.linear(F.normalize(embeddings, dim=1), F.normalize(weight, dim=1))


def _target_mask(cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.one_hot(labels, cosine.shape[1]).to(torch.bool)


def cosface_loss(cosine: torch.Tensor, labels: torch.Tensor, margin: float = 0.35, scale: float = 64.0) -> torch.Tensor:
    """CosFace: ``CE(s * (cos theta_j - m [j = y]))`` from cosines ``(N, C)``."""
    logits = torch.where(_target_mask(cosine, labels), cosine - margin, cosine)
    return F.cross_entropy(scale * logits, labels)


def arcface_loss(
    cosine: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.5,
    scale: float = 64.0,
    easy_margin: bool = False,
) -> torch.Tensor:
    """ArcFace: ``CE(s * cos(theta_j + m [j = y]))`` from cosines ``(N, C)``.

    cos(theta + m) is expanded as cos(theta)cos(m) - sin(theta)sin(m), which has
    a finite gradient at cos(theta) = +-1 where acos has none. Where theta + m
    would pass pi the target logit would rise again with the angle; there we
    use the monotonic fallback cos(theta) - m sin(m) of InsightFace (or, with
    ``easy_margin``, no margin where cos(theta) <= 0).
    """
    cos_t = cosine.gather(1, labels[:, None]).squeeze(1)
    sin_t = (1.0 - cos_t * cos_t).clamp_min(_SIN_EPS).sqrt()
    with_margin = cos_t * math.cos(margin) - sin_t * math.sin(margin)
    if easy_margin:
        with_margin = torch.where(cos_t > 0, with_margin, cos_t)
    else:
        with_margin = torch.where(cos_t > math.cos(math.pi - margin), with_margin, cos_t - margin * math.sin(margin))
    logits = cosine.scatter(1, labels[:, None], with_margin[:, None].to(cosine.dtype))
    return F.cross_entropy(scale * logits, labels)


class CentreLoss(nn.Module):
    """Base for losses that hold one learnable centre per class as ``weight``."""

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 1.0):
        super().__init__()
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_normal_(self.weight)

    def cosine(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is not None:
            check_labels(labels, self.num_classes)
        return cosine_logits(embeddings, self.weight.to(embeddings.dtype))

    def class_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Scaled cosines to the centres: what accuracy and nll are measured on."""
        return self.scale * self.cosine(embeddings)


class CosFaceLoss(CentreLoss):
    """CosFace (Wang et al. 2018) with centres ``weight`` of shape (C, D)."""

    def __init__(self, num_classes: int, embedding_dim: int, margin: float = 0.35, scale: float = 64.0):
        super().__init__(num_classes, embedding_dim, scale)
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cosface_loss(self.cosine(embeddings, labels), labels, self.margin, self.scale)


class ArcFaceLoss(CentreLoss):
    """ArcFace (Deng et al. 2019) with centres ``weight`` of shape (C, D)."""

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: float = 0.5,
        scale: float = 64.0,
        easy_margin: bool = False,
    ):
        super().__init__(num_classes, embedding_dim, scale)
        self.margin = margin
        self.easy_margin = easy_margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return arcface_loss(self.cosine(embeddings, labels), labels, self.margin, self.scale, self.easy_margin)
