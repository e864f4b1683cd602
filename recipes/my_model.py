"""A user's own model for losszoo: copy this file and change the network.

recipes/custom-data.yaml names this file under `plugins:`; the decorator below
then makes `tiny_convnet` usable like the built-in `cnn`. The contract, in
full, is in docs/your-data.md:

- the class is built as ``cls(in_features=int, out_dim=int, image_shape=(C, H, W)
  or None, **params)``: the data's size, the head's width (the trainer sizes it
  from the loss: one logit per class, an embedding, or a value), and the
  declared hyperparameters;
- ``forward(x)`` returns (N, out_dim) (a segmentation model: (N, out_dim, H, W)).
  ``x`` arrives as the dataset gave it, flat (N, F) or (N, C, H, W) images,
  scaled: reshape it to ``image_shape`` yourself;
- give it ``features(x)`` (the vector before the head) and ``head`` (the last
  layer) and retrieval metrics (precision_at_1, map_at_r) read its features,
  as with every built-in model.
"""

import torch
from torch import nn

import losszoo
from losszoo import Param


@losszoo.register_model(
    "tiny_convnet",
    input="images",  # needs image_shape: a recipe that pairs it with a table is an error at its line
    family="custom",
    summary="two 3x3 conv blocks with batch norm, global average pool, linear head",
    params=[
        Param("width", 16, "channels of the first conv block; the second has twice as many", type="int", ge=1),
        Param("dropout", 0.0, "dropout before the head", ge=0.0, lt=1.0),
    ],
)
class TinyConvNet(nn.Module):
    def __init__(self, in_features: int, out_dim: int, image_shape: tuple[int, int, int] | None = None,
                 width: int = 16, dropout: float = 0.0, **_):
        super().__init__()
        if image_shape is None:
            raise losszoo.LosszooError("tiny_convnet needs images; this dataset is a table of features")
        self.image_shape = tuple(image_shape)
        channels = image_shape[0]
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
        )
        self.head = nn.Linear(2 * width, out_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(len(x), *self.image_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
