"""Models. Each ends in a head the trainer sizes from the loss's input kind:
class logits, an embedding of ``embedding_dim``, or values. Implementations:
losszoo/models/nets.py."""

from losszoo.catalog import Param, Rule, model

_IMPL = "losszoo.models.nets"
_EMBEDDING = Param("embedding_dim", 64, "size of the embedding that embedding losses receive", type="int", ge=2,
                   short="d")
_ACTIVATION = Param("activation", "relu", "non-linearity between layers", type="str",
                    choices=("relu", "gelu", "tanh", "silu"))

ENTRIES = [
    model("linear", f"{_IMPL}:Linear", family="dense", input="features",
          summary="a single linear map from features to the head", params=(_EMBEDDING,)),
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
                      needs=("batch_size",)),)),
    model("cnn", f"{_IMPL}:CNN", family="conv", input="images",
          summary="3x3 conv blocks (conv, batch norm, activation, 2x2 max-pool), global average pool",
          params=(
              Param("channels", [32, 64], "output channels of each conv block", type="ints", ge=1, short="c"),
              _ACTIVATION,
              _EMBEDDING,
          )),
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
          )),
    model("unet", "losszoo.models.unet:UNet", family="conv", input="images", tasks=("segmentation",),
          summary="small U-Net: per-pixel class logits (N, C, H, W) from conv blocks with skip concatenation",
          paper="Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image Segmentation, MICCAI 2015",
          params=(
              Param("channels", [16, 32, 64], "channels at each resolution, full size first; depth = their number",
                    type="ints", ge=1, short="c"),
              Param("up", "transpose", "upsampling: a 2x2 transposed conv, or bilinear and a 1x1 conv", type="str",
                    choices=("transpose", "bilinear")),
          )),
]
