"""A small ResNet for small images (digits 1x8x8, shapes 32x32), with or without skips.

He, Zhang, Ren and Sun, Deep Residual Learning for Image Recognition, CVPR 2016,
in its CIFAR form: a 3x3 stem, one stage per entry of ``channels`` with
``blocks`` basic blocks each (3x3 conv-BN-ReLU, 3x3 conv-BN, add the shortcut,
ReLU), the first block of every later stage halving the resolution, then global
average pooling and the linear head of :class:`~losszoo.models.nets.Net`.
Metadata: ``losszoo/catalog/models.py``.

The shortcuts hold no parameters (the paper's option A: the identity, or the
input subsampled by the stride and zero-padded to the new channel count), so
``skip=False`` -- every shortcut removed, the "no skip connections" network of
Li et al., Visualizing the Loss Landscape of Neural Nets, NeurIPS 2018 -- has
exactly the same parameters as ``skip=True`` and differs only in the additions.

>>> import torch
>>> net = ResNet(in_features=64, out_dim=10, image_shape=(1, 8, 8))
>>> net(torch.zeros(2, 64)).shape, net.features(torch.zeros(2, 64)).shape
(torch.Size([2, 10]), torch.Size([2, 64]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.models.nets import Images, Net


def shortcut(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    """Parameter-free shortcut: subsample by ``stride``, zero-pad (or drop) channels to ``out_channels``."""
    if stride > 1:
        x = x[:, :, ::stride, ::stride]
    extra = out_channels - x.shape[1]
    if extra > 0:
        x = F.pad(x, (0, 0, 0, 0, 0, extra))
    elif extra < 0:
        x = x[:, :out_channels]
    return x


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``; without ``skip`` the ``+ shortcut(x)`` is gone."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, skip: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.out_channels, self.stride, self.skip = out_channels, stride, skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.skip:
            y = y + shortcut(x, self.out_channels, self.stride)
        return F.relu(y)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, skip={self.skip}"


class ResNet(Net):
    """Stem, ``len(channels)`` stages of ``blocks`` basic blocks, global average pool, linear head."""

    def __init__(
        self,
        in_features: int,
        out_dim: int,
        image_shape: tuple[int, int, int],
        channels: list[int] = (16, 32, 64),
        blocks: int = 2,
        skip: bool = True,
        embedding_dim: int = 64,
        **_: object,
    ):
        width, size = channels[0], min(image_shape[1:])
        layers: list[nn.Module] = [
            Images(image_shape),
            nn.Conv2d(image_shape[0], width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for stage, out in enumerate(channels):
            for block in range(blocks):
                # halve the resolution entering each later stage, while the map stays >= 2x2
                stride = 2 if stage > 0 and block == 0 and size >= 4 else 1
                size = -(-size // stride)
                layers.append(BasicBlock(width, out, stride, skip))
                width = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        super().__init__(nn.Sequential(*layers), width, out_dim)
