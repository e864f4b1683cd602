"""Regression losses on predicted values. Implementations: losszoo/losses/regression.py."""

from losszoo.catalog import Param, loss

_IMPL = "losszoo.losses.regression"

ENTRIES = [
    loss(
        "mse",
        f"{_IMPL}:MSELoss",
        family="regression",
        summary="mean squared error",
        input="values",
        target_kind="values",
        elementwise=True,
        paper="Gauss, Theoria motus corporum coelestium, 1809",
        formula="(x - y)^2",
        reference="torch.nn.functional.mse_loss",
    ),
    loss(
        "huber",
        f"{_IMPL}:HuberLoss",
        family="regression",
        summary="quadratic near zero, linear beyond delta",
        input="values",
        target_kind="values",
        elementwise=True,
        params=(Param("delta", 1.0, "where the loss turns linear", gt=0.0, short="d"),),
        paper="Huber, Robust Estimation of a Location Parameter, 1964",
        formula="r^2 / 2 if |r| <= delta else delta (|r| - delta / 2)",
        reference="torch.nn.functional.huber_loss",
    ),
]
