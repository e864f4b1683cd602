"""The built-in models. Each is a ``body`` (inputs to features) and a ``head``
(features to what the loss consumes), so retrieval metrics can read the
features of any model. Metadata: ``losszoo/catalog/models.py``.
"""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class Images(nn.Module):
    """Views flat rows (N, C*H*W) or images (N, C, H, W) as images."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), *self.shape)


class Net(nn.Module):
    """``head(body(x))``; ``features(x)`` is the body alone."""

    def __init__(self, body: nn.Module, features: int, out_dim: int):
        super().__init__()
        self.body = body
        self.neck: nn.Module | None = None
        self.head = nn.Linear(features, out_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) if self.neck is None else self.neck(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def add_neck(self, dim: int) -> None:
        """A linear embedding layer of ``dim`` between body and head, which ``features`` then returns: a loss
        on class logits retrieves with an embedding of the same size as an embedding loss does."""
        self.neck = nn.Linear(self.head.in_features, dim)
        self.head = nn.Linear(dim, self.head.out_features)


class Linear(Net):
    """A linear model: the head alone on flattened inputs."""

    def __init__(self, in_features: int, out_dim: int, embedding_dim: int = 64, **_: object):
        super().__init__(nn.Flatten(), in_features, out_dim)


class MLP(Net):
    """Fully connected layers: [linear, (batch norm), activation, (dropout)] per hidden width."""

    def __init__(
        self,
        in_features: int,
        out_dim: int,
        hidden: list[int] = (256, 256),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        embedding_dim: int = 64,
        **_: object,
    ):
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(_ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        super().__init__(nn.Sequential(*layers), width, out_dim)


class CNN(Net):
    """3x3 conv blocks with batch norm and 2x2 max-pooling, then global average pooling."""

    def __init__(
        self,
        in_features: int,
        out_dim: int,
        image_shape: tuple[int, int, int],
        channels: list[int] = (32, 64),
        activation: str = "relu",
        embedding_dim: int = 64,
        **_: object,
    ):
        layers: list[nn.Module] = [Images(image_shape)]
        width, size = image_shape[0], min(image_shape[1:])
        for out in channels:
            layers += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), _ACTIVATIONS[activation]()]
            if size >= 4:  # pool while the map is large enough to stay >= 2x2
                layers.append(nn.MaxPool2d(2))
                size //= 2
            width = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        super().__init__(nn.Sequential(*layers), width, out_dim)
