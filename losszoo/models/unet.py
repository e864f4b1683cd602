"""A small U-Net: per-pixel class logits for segmentation.

Ronneberger, Fischer and Brox, U-Net: Convolutional Networks for Biomedical
Image Segmentation, MICCAI 2015, at a size that trains on a laptop CPU: one
resolution per entry of ``channels``, two 3x3 conv-BN-ReLU per resolution,
2x2 max-pooling down, a 2x2 transposed conv (or bilinear upsampling and a 1x1
conv) up, the encoder's map concatenated at each resolution on the way up, and
a 1x1 conv to ``out_dim`` classes. Metadata: ``losszoo/catalog/models.py``.

Unlike the other models it has no linear ``head``: ``forward`` returns
``(N, out_dim, H, W)`` logits. ``features`` returns the bottleneck averaged
over its pixels, ``(N, channels[-1])``, for anything that wants one vector per
image.

>>> import torch
>>> net = UNet(in_features=1024, out_dim=5, image_shape=(1, 32, 32))
>>> net(torch.zeros(2, 1, 32, 32)).shape, net.features(torch.zeros(2, 1, 32, 32)).shape
(torch.Size([2, 5, 32, 32]), torch.Size([2, 64]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.models.nets import Images


class ConvBlock(nn.Sequential):
    """Two 3x3 conv -> batch norm -> ReLU, size-preserving."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def _up(in_channels: int, out_channels: int, mode: str) -> nn.Module:
    """Double the resolution and map ``in_channels`` to ``out_channels``."""
    if mode == "bilinear":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                             nn.Conv2d(in_channels, out_channels, 1))
    return nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)


class UNet(nn.Module):
    """Encoder-decoder with skip concatenation; ``forward(x)`` is ``(N, out_dim, H, W)`` logits.

    ``x`` is ``(N, C, H, W)`` or flat rows ``(N, C*H*W)`` of ``image_shape``.
    ``H`` and ``W`` need not divide by ``2 ** (len(channels) - 1)``: the input is
    padded (replicating its edge) up to the next multiple and the logits are
    cropped back to ``H x W``.
    """

    def __init__(
        self,
        in_features: int,
        out_dim: int,
        image_shape: tuple[int, int, int],
        channels: list[int] = (16, 32, 64),
        up: str = "transpose",
        **_: object,
    ):
        super().__init__()
        if not channels:
            raise ValueError("UNet needs at least one entry in channels")
        channels = list(channels)
        self.images = Images(image_shape)
        self.multiple = 2 ** (len(channels) - 1)  # the bottleneck is this many times smaller
        widths = [image_shape[0], *channels]
        self.down = nn.ModuleList(ConvBlock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.pool = nn.MaxPool2d(2)
        # up[i] and decode[i] bring resolution i + 1 back to resolution i
        self.up = nn.ModuleList(_up(channels[i + 1], channels[i], up) for i in range(len(channels) - 1))
        self.decode = nn.ModuleList(ConvBlock(2 * channels[i], channels[i]) for i in range(len(channels) - 1))
        # not called `head`: the trainer reads a `head` as a linear map from `features`
        self.classifier = nn.Conv2d(channels[0], out_dim, 1)
        self.num_features = channels[-1]

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The map at every resolution, full size first, bottleneck last."""
        x = self.images(x)
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        maps = [self.down[0](x)]
        for block in self.down[1:]:
            maps.append(block(self.pool(maps[-1])))
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck averaged over its pixels, ``(N, channels[-1])``."""
        return self._encode(x)[-1].mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.images(x).shape[-2:]
        maps = self._encode(x)
        y = maps[-1]
        for i in reversed(range(len(self.up))):
            y = self.decode[i](torch.cat([maps[i], self.up[i](y)], dim=1))
        return self.classifier(y)[..., :height, :width]
