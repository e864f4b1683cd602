"""Models. Each ends in a head the trainer sizes from the loss's input kind:
class logits, an embedding of ``embedding_dim``, or values. Implementations:
losszoo/models/nets.py."""

import math
from collections.abc import Callable
from itertools import pairwise

from losszoo.catalog import Param, Rule, model

_IMPL = "losszoo.models.nets"
_EMBEDDING = Param("embedding_dim", 64, "size of the embedding that embedding losses receive", type="int", ge=2,
                   short="d")
_ACTIVATION = Param("activation", "relu", "non-linearity between layers", type="str",
                    choices=("relu", "gelu", "tanh", "silu"))

#: Weights a model may have: 4 GB as float32, 16 GB with its gradient and Adam's two moments. More would
#: not fail at once but be killed for memory, with nothing recorded.
MAX_WEIGHTS = 10**9


def _weights(key: str, convs: Callable[[dict], int] | None = None) -> Rule:
    """A rule on the model's approximate number of weights, blamed on ``key``: dense layers from the data's
    features (or pixels) to the head, or ``convs(values)`` 3x3 convolutions per width of ``channels``."""

    def check(v: dict) -> bool | str:
        head = max(v["classes"] or 1, v.get("embedding_dim", 64))
        if convs is None:
            widths = [v["features"] or math.prod(v["image_shape"] or (1,)), *v.get("hidden", ()), head]
            weights = sum(a * b for a, b in pairwise(widths))
        else:  # a stage of width b holds b x b convolutions after the first
            widths = [v["image_shape"][0] if v["image_shape"] else 3, *v["channels"]]
            weights = 9 * convs(v) * sum(max(a, b) * b for a, b in pairwise(widths))
        return weights <= MAX_WEIGHTS or (f"gives about {weights:,} weights for this data; at most {MAX_WEIGHTS:,} "
                                          "(4 GB as float32): use narrower layers")

    return Rule(key, "", check, needs=("task",))  # known once the data is: evaluated with its facts


ENTRIES = [
    model("linear", f"{_IMPL}:Linear", family="dense", input="features",
          summary="a single linear map from features to the head", params=(_EMBEDDING,),
          rules=(_weights("embedding_dim"),)),
    model("mlp", f"{_IMPL}:MLP", family="dense", input="features",
          summary="fully connected layers with a non-linearity, optional batch norm and dropout",
          params=(
              Param("hidden", [256, 256], "width of each hidden layer", type="ints", ge=1, short="h"),
              _ACTIVATION,
              Param("dropout", 0.0, "dropout probability after each hidden layer", ge=0.0, lt=1.0),
              Param("batch_norm", False, "batch normalisation after each hidden linear layer", type="bool"),
              _EMBEDDING,
          ),
          # The trainer joins a last batch of one to the one before; a batch_size of 1 leaves nothing to join.
          rules=(Rule("batch_norm", "batch norm cannot normalise a batch of one sample: set train.batch_size >= 2, "
                      "or batch_norm: false", lambda v: not v["batch_norm"] or v["batch_size"] >= 2,
                      needs=("batch_size",)), _weights("hidden"))),
    model("cnn", f"{_IMPL}:CNN", family="conv", input="images",
          summary="3x3 conv blocks (conv, batch norm, activation, 2x2 max-pool), global average pool",
          params=(
              Param("channels", [32, 64], "output channels of each conv block", type="ints", ge=1, short="c"),
              _ACTIVATION,
              _EMBEDDING,
          ),
          rules=(_weights("channels", lambda v: 1),)),
    model("resnet", "losszoo.models.resnet:ResNet", family="conv", input="images",
          summary="small CIFAR-style ResNet: 3x3 stem, stages of basic residual blocks, global average pool",
          paper="He et al., Deep Residual Learning for Image Recognition, CVPR 2016; skip: false as in Li et al., "
                "Visualizing the Loss Landscape of Neural Nets, NeurIPS 2018",
          params=(
              Param("channels", [16, 32, 64], "output channels of each stage; later stages halve the resolution",
                    type="ints", ge=1, short="c"),
              Param("blocks", 2, "residual blocks per stage", type="int", ge=1, short="b"),
              Param("skip", True, "add the parameter-free shortcut in every block; false gives the plain network "
                    "with the same parameters", type="bool"),
              _EMBEDDING,
          ),
          rules=(_weights("channels", lambda v: 2 * v["blocks"]),)),
    model("unet", "losszoo.models.unet:UNet", family="conv", input="images", tasks=("segmentation",),
          summary="small U-Net: per-pixel class logits (N, C, H, W) from conv blocks with skip concatenation",
          paper="Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image Segmentation, MICCAI 2015",
          params=(
              Param("channels", [16, 32, 64], "channels at each resolution, full size first; depth = their number",
                    type="ints", ge=1, short="c"),
              Param("up", "transpose", "upsampling: a 2x2 transposed conv, or bilinear and a 1x1 conv", type="str",
                    choices=("transpose", "bilinear")),
          ),
          rules=(_weights("channels", lambda v: 4),)),  # two convolutions down and two up per width
]
