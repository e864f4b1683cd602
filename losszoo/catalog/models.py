"""Models. Each ends in a head the trainer sizes from the loss's input kind:
class logits, an embedding of ``embedding_dim``, or values. Implementations:
losszoo/models/nets.py."""

from losszoo.catalog import Param, model

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
          )),
    model("cnn", f"{_IMPL}:CNN", family="conv", input="images",
          summary="3x3 conv blocks (conv, batch norm, activation, 2x2 max-pool), global average pool",
          params=(
              Param("channels", [32, 64], "output channels of each conv block", type="ints", ge=1, short="c"),
              _ACTIVATION,
              _EMBEDDING,
          )),
]
