"""Loss implementations, one file per family: pure functions hold the math, the
``nn.Module`` classes wrap them with hyperparameters and learnable weights.
Their metadata lives in ``losszoo/catalog``; build them with ``losszoo.create_loss``."""
