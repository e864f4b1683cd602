"""Regression losses on predicted values ``(N,)`` against targets ``(N,)``.

Each loss is a pure function of ``(input, target)`` (the math) and a module that
holds its hyperparameters. ``gaussian_nll`` is the one loss whose model output is
``(N, 2)``: a mean and a raw variance. Every module offers ``predict(output)``,
the point prediction the trainer measures mae, rmse and r2 on.

Half-precision inputs (bf16 autocast) are evaluated in float32. Metadata and
bounds: ``losszoo/catalog/regression.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from losszoo.errors import InvalidParameterError
from losszoo.losses._common import check_reduction, reduce, upcast

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _pair(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and targets of one shape, in a common dtype of at least float32 precision.

    A shape mismatch is an error rather than a broadcast: ``(N, 1)`` against
    ``(N,)`` would silently compare every prediction with every target.
    """
    if input.shape != target.shape:
        raise ValueError(f"input {tuple(input.shape)} and target {tuple(target.shape)} must have the same shape")
    if input.dtype == target.dtype and input.dtype in (torch.float32, torch.float64):
        return input, target  # the common case: nothing to convert
    dtype = torch.promote_types(input.dtype, target.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    elif dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return input.to(dtype), target.to(dtype)


def _squared_residual(input: torch.Tensor, target: torch.Tensor, scale: float) -> torch.Tensor:
    """``((x - y) / c)^2``, without the division at the default scale (it costs a kernel each way).

    ``r * r`` rather than ``r ** 2``: pow's backward costs a kernel more.
    """
    residual = input - target if scale == 1.0 else (input - target) / scale
    return residual * residual


# ----------------------------------------------------------------------------- squared, absolute and Huber-like


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared error ``(x - y)^2``; exactly ``torch.nn.functional.mse_loss``.

    >>> mse_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])).item()
    5.0
    """
    input, target = _pair(input, target)
    return F.mse_loss(input, target, reduction=reduction)


def mae_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Absolute error ``|x - y|``; exactly ``torch.nn.functional.l1_loss`` (the same two kernels, without its wrapper).

    >>> mae_loss(torch.tensor([1.0, -3.0]), torch.tensor([0.0, 0.0])).item()
    2.0
    """
    input, target = _pair(input, target)
    return reduce((input - target).abs(), reduction)


def huber_loss(input: torch.Tensor, target: torch.Tensor, delta: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Huber (1964): ``r^2/2`` for ``|r| <= delta``, else ``delta (|r| - delta/2)``; exactly F.huber_loss."""
    input, target = _pair(input, target)
    return F.huber_loss(input, target, reduction=reduction, delta=delta)


def smooth_l1_loss(
    input: torch.Tensor, target: torch.Tensor, beta: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Smooth L1 (Girshick, Fast R-CNN 2015): ``r^2 / (2 beta)`` for ``|r| < beta``, else ``|r| - beta/2``.

    Huber divided by ``beta``; ``beta = 0`` is the absolute error. Exactly
    ``torch.nn.functional.smooth_l1_loss``.
    """
    input, target = _pair(input, target)
    return F.smooth_l1_loss(input, target, reduction=reduction, beta=beta)


def log_cosh_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``log cosh(x - y)``: quadratic near zero, ``|r| - log 2`` far away; its gradient is ``tanh(r)``.

    Evaluated as ``r + softplus(-2r) - log 2``, which equals ``log cosh r``
    exactly and never forms ``cosh r`` (that overflows for ``|r| > 89`` in float32).
    Softplus turns linear above its threshold, which is raised from 20 to 40 so
    that the term it drops, ``log1p(e^-40)``, is below float64's precision.

    >>> round(log_cosh_loss(torch.tensor([1e4]), torch.tensor([0.0])).item(), 3)
    9999.307
    """
    input, target = _pair(input, target)
    r = input - target
    return reduce(r + F.softplus(-2.0 * r, threshold=40.0) - _LOG_2, reduction)


def quantile_loss(input: torch.Tensor, target: torch.Tensor, q: float = 0.5, reduction: str = "mean") -> torch.Tensor:
    """Pinball loss of the ``q``-quantile (Koenker & Bassett 1978): ``max(q r, (q - 1) r)``, ``r = y - x``.

    Under-prediction costs ``q`` per unit, over-prediction ``1 - q``; ``q = 0.5``
    is half the absolute error.

    >>> [round(v, 6) for v in quantile_loss(torch.zeros(2), torch.tensor([1.0, -1.0]), 0.9, "none").tolist()]
    [0.9, 0.1]
    """
    input, target = _pair(input, target)
    r = target - input
    return reduce(torch.maximum(q * r, (q - 1.0) * r), reduction)


# ----------------------------------------------------------------------------- relative errors and likelihoods

#: Below ``-1 + _MSLE_DELTA`` a prediction is outside log1p's domain; log1p continues along its tangent there.
_MSLE_DELTA = 1e-6


def _log1p_extended(x: torch.Tensor) -> torch.Tensor:
    """``log1p(x)`` for ``x >= -1 + delta``, and its tangent line at that point below it.

    Keeps the value finite and the gradient pointing back into the domain for a
    prediction at or below -1, where log1p is undefined.
    """
    x0 = -1.0 + _MSLE_DELTA
    inside = x >= x0
    safe = torch.where(inside, x, torch.full_like(x, x0))
    tangent = math.log1p(x0) + (x - x0) / (1.0 + x0)
    return torch.where(inside, torch.log1p(safe), tangent)


def msle_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared logarithmic error ``(log(1 + x) - log(1 + y))^2`` for values ``> -1``.

    Equal to ``sklearn.metrics.mean_squared_log_error`` with reduction "mean".
    Targets ``<= -1`` raise ValueError (a data error). A prediction ``<= -1``
    has no log; there ``log1p`` continues along its tangent at ``-1 + 1e-6``, so
    the loss stays finite and its gradient pushes the prediction back up.
    """
    input, target = _pair(input, target)
    # One sync point, like check_labels, where every value is inside the domain: then neither a target
    # error nor the tangent (a handful of kernels each way) is needed.
    inside = not target.numel() or torch.minimum(input.detach(), target).min().item() >= -1.0 + _MSLE_DELTA
    if not inside:
        low = target.min().item()
        if not low > -1:
            raise ValueError(f"msle needs targets > -1, got {low:g}")
        inside = input.detach().min().item() >= -1.0 + _MSLE_DELTA
    log_input = torch.log1p(input) if inside else _log1p_extended(input)
    difference = log_input - torch.log1p(target)
    return reduce(difference * difference, reduction)


def mape_loss(
    input: torch.Tensor, target: torch.Tensor, eps: float = 2.220446049250313e-16, reduction: str = "mean"
) -> torch.Tensor:
    """Absolute percentage error ``|x - y| / max(|y|, eps)`` as a fraction (not times 100).

    Equal to ``sklearn.metrics.mean_absolute_percentage_error`` (whose eps is
    float64's machine epsilon) with reduction "mean".
    """
    input, target = _pair(input, target)
    return reduce((input - target).abs() / target.abs().clamp_min(eps), reduction)


def poisson_nll_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> torch.Tensor:
    """Poisson negative log-likelihood of counts ``y`` with rate ``lambda``, without ``log y!``.

    ``log_input=True``: ``input`` is ``log lambda`` and the loss is ``exp(x) - y x``;
    ``log_input=False``: ``input`` is ``lambda >= 0`` and the loss is ``x - y log(x + eps)``.
    ``full`` adds Stirling's ``y log y - y + log(2 pi y) / 2`` where ``y > 1``.
    Equal to ``torch.nn.functional.poisson_nll_loss`` wherever ``exp(x)`` is
    below ``sqrt(finfo.max)`` (``x < 44`` in float32, ``x < 354`` in float64);
    beyond, ``exp`` continues along its tangent so that a log-rate of 1e4 gives a
    finite loss and gradient instead of inf.
    """
    input, target = _pair(input, target)
    if log_input:
        if not full and reduction != "none":  # torch's fused kernel, kept unless exp overflowed
            fused = F.poisson_nll_loss(input, target, log_input=True, full=False, eps=eps, reduction=reduction)
            if math.isfinite(fused.item()):
                return fused
        cap = 0.5 * math.log(torch.finfo(input.dtype).max)
        rate = torch.where(input <= cap, input.clamp_max(cap).exp(), math.exp(cap) * (1.0 + (input - cap)))
        values = rate - target * input
    else:
        values = input - target * torch.log(input + eps)
    if full:
        big = target > 1
        y = torch.where(big, target, torch.ones_like(target))
        stirling = y * torch.log(y) - y + 0.5 * torch.log(2.0 * math.pi * y)
        values = values + torch.where(big, stirling, torch.zeros_like(stirling))
    return reduce(values, reduction)


def gaussian_nll_loss(
    mean: torch.Tensor,
    target: torch.Tensor,
    var: torch.Tensor,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> torch.Tensor:
    """Gaussian negative log-likelihood ``(log v + (mu - y)^2 / v) / 2`` (+ ``log(2 pi) / 2`` if ``full``).

    Nix & Weigend, Estimating the mean and variance of the target probability
    distribution, 1994. ``mean``, ``target`` and ``var`` are ``(N,)``; ``v`` is
    ``var`` clamped at ``eps`` with the gradient passed straight through the
    clamp, exactly as ``torch.nn.functional.gaussian_nll_loss``.
    """
    mean, target = _pair(mean, target)
    if var.shape != mean.shape:
        raise ValueError(f"var {tuple(var.shape)} must have the shape of mean {tuple(mean.shape)}")
    var = var.to(mean.dtype)
    return _gaussian_nll(mean, target, var + (var.clamp_min(eps) - var).detach(), full, reduction)


def _gaussian_nll(
    mean: torch.Tensor, target: torch.Tensor, var: torch.Tensor, full: bool, reduction: str
) -> torch.Tensor:
    """:func:`gaussian_nll_loss` for a variance already at least ``eps`` (the module's ``softplus + eps``)."""
    residual = mean - target
    values = 0.5 * (torch.log(var) + residual * residual / var)
    if full:
        values = values + _HALF_LOG_2PI
    return reduce(values, reduction)


# ----------------------------------------------------------------------------- robust losses (Barron 2019 family)


def charbonnier_loss(
    input: torch.Tensor, target: torch.Tensor, scale: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Charbonnier (pseudo-Huber, L1-L2): ``sqrt((r/c)^2 + 1) - 1``; Barron's rho at alpha = 1.

    Evaluated as ``expm1(log1p(z) / 2)`` with ``z = (r/c)^2``, which does not
    cancel for small residuals (and is one kernel shorter than
    ``z / (sqrt(z + 1) + 1)``). With ``scale = 1`` equal to
    ``kornia.losses.charbonnier_loss``.
    """
    input, target = _pair(input, target)
    return reduce(torch.expm1(0.5 * torch.log1p(_squared_residual(input, target, scale))), reduction)


def cauchy_loss(input: torch.Tensor, target: torch.Tensor, scale: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Cauchy (Lorentzian): ``log(1 + (r/c)^2 / 2)``; Barron's rho at alpha = 0.

    With ``scale = 1`` equal to ``kornia.losses.cauchy_loss``.
    """
    input, target = _pair(input, target)
    return reduce(torch.log1p(0.5 * _squared_residual(input, target, scale)), reduction)


def welsch_loss(input: torch.Tensor, target: torch.Tensor, scale: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Welsch (Leclerc): ``1 - exp(-(r/c)^2 / 2)``; Barron's rho as alpha -> -inf.

    With ``scale = 1`` equal to ``kornia.losses.welsch_loss``.
    """
    input, target = _pair(input, target)
    return reduce(-torch.expm1(-0.5 * _squared_residual(input, target, scale)), reduction)


def geman_mcclure_loss(
    input: torch.Tensor, target: torch.Tensor, scale: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Geman-McClure: ``2 (r/c)^2 / ((r/c)^2 + 4)``; Barron's rho at alpha = -2.

    With ``scale = 1`` equal to ``kornia.losses.geman_mcclure_loss``.
    """
    input, target = _pair(input, target)
    z = _squared_residual(input, target, scale)
    return reduce(2.0 * z / (z + 4.0), reduction)


def tukey_loss(input: torch.Tensor, target: torch.Tensor, c: float = 4.685, reduction: str = "mean") -> torch.Tensor:
    """Tukey's biweight (Beaton & Tukey 1974): ``c^2/6 (1 - (1 - (r/c)^2)^3)`` for ``|r| <= c``, else ``c^2/6``.

    Residuals beyond ``c`` have zero gradient: they are rejected as outliers.
    The default ``c = 4.685`` gives 95% efficiency on Gaussian noise.
    """
    input, target = _pair(input, target)
    u = (((input - target) / c) ** 2).clamp_max(1.0)
    return reduce(c * c / 6.0 * (1.0 - (1.0 - u) ** 3), reduction)


def _barron_rho(z: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """Barron's ``rho`` as a function of ``z = (x / c)^2``.

    ``|a - 2| / a * (((z / |a - 2|) + 1)^(a/2) - 1)`` is written as
    ``b / a * expm1(a/2 * log1p(z / b))``, ``b = |a - 2|``: no overflow for
    ``a <= 2`` and accurate as ``a`` approaches 0. A fixed ``alpha`` of 2, 0 or
    -inf takes the limit exactly; a tensor ``alpha`` (the adaptive loss) keeps
    ``|a|`` and ``b`` at least ``eps`` so the removable singularities at 0 and 2
    stay finite and differentiable.
    """
    if not isinstance(alpha, torch.Tensor):
        if alpha == 2.0:
            return 0.5 * z
        if alpha == 0.0:
            return torch.log1p(0.5 * z)
        if alpha == -math.inf:
            return -torch.expm1(-0.5 * z)
        b = abs(alpha - 2.0)
        rho = torch.expm1(0.5 * alpha * torch.log1p(z if b == 1.0 else z / b))
        return rho if b == alpha else (b / alpha) * rho  # alpha = 1: b = 1, no kernel for either factor
    eps = torch.finfo(z.dtype).eps
    alpha = alpha.to(z.dtype)
    b = (alpha - 2.0).abs().clamp_min(eps)
    a = torch.where(alpha >= 0, alpha.clamp_min(eps), alpha.clamp_max(-eps))
    return (b / a) * torch.expm1(0.5 * a * torch.log1p(z / b))


# Trapezoid rule for Z(alpha) on x = sinh(s): the integrand is even and analytic in s, so the rule
# converges geometrically in 1/h, and its tails decay at least like exp(-|s|) for alpha >= 0.
_PARTITION_STEP = 0.02
_PARTITION_HALF_WIDTH = 48.0


def barron_log_partition(alpha: torch.Tensor) -> torch.Tensor:
    """``log Z(alpha)``, ``Z(alpha) = integral over R of exp(-rho(x, alpha, 1)) dx``, for ``alpha >= 0``.

    The normaliser of Barron's probability density ``exp(-rho(x / c)) / (c Z)``;
    finite only for ``alpha >= 0``. Z(0) = pi sqrt(2), Z(1) = 2 e K_1(1),
    Z(2) = sqrt(2 pi). Computed in float64 by quadrature, differentiable in
    ``alpha`` (Barron tabulates it with a spline instead).
    """
    s = torch.arange(
        -_PARTITION_HALF_WIDTH, _PARTITION_HALF_WIDTH + _PARTITION_STEP / 2, _PARTITION_STEP,
        dtype=torch.float64, device=alpha.device,
    )
    log_integrand = -_barron_rho(torch.sinh(s) ** 2, alpha.double()) + torch.log(torch.cosh(s))
    return (torch.logsumexp(log_integrand, dim=0) + math.log(_PARTITION_STEP)).to(alpha.dtype)


def barron_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float | torch.Tensor = 1.0,
    scale: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Barron's general robust loss ``rho(r, alpha, c) = |a-2|/a (((r/c)^2/|a-2| + 1)^(a/2) - 1)``.

    Barron, A General and Adaptive Robust Loss Function, CVPR 2019. ``alpha`` is
    the shape (a float, or a 0-d tensor when learned), ``c = scale`` the width
    of the quadratic bowl. At ``c = 1``: alpha = 2 is ``r^2 / 2``, 1 Charbonnier
    ``sqrt(r^2 + 1) - 1``, 0 Cauchy ``log(r^2/2 + 1)``, -2 Geman-McClure
    ``2 r^2 / (r^2 + 4)``, -inf Welsch ``1 - exp(-r^2/2)``. These are
    kornia's charbonnier, cauchy, geman_mcclure and welsch losses exactly:
    kornia writes them in Barron's scaling.

    >>> round(barron_loss(torch.tensor([2.0]), torch.tensor([0.0]), alpha=-2.0).item(), 6)
    1.0
    """
    input, target = _pair(input, target)
    return reduce(_barron_rho(_squared_residual(input, target, scale), alpha), reduction)


# ----------------------------------------------------------------------------- modules


class ElementwiseLoss(nn.Module):
    """Base for losses that compare predictions and targets element by element."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The point prediction ``(N,)`` that regression metrics are measured on."""
        return output


class MSELoss(ElementwiseLoss):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mse_loss(input, target, self.reduction)


class MAELoss(ElementwiseLoss):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mae_loss(input, target, self.reduction)


class HuberLoss(ElementwiseLoss):
    def __init__(self, delta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return huber_loss(input, target, self.delta, self.reduction)


class SmoothL1Loss(ElementwiseLoss):
    def __init__(self, beta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return smooth_l1_loss(input, target, self.beta, self.reduction)


class LogCoshLoss(ElementwiseLoss):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return log_cosh_loss(input, target, self.reduction)


class QuantileLoss(ElementwiseLoss):
    def __init__(self, q: float = 0.5, reduction: str = "mean"):
        super().__init__(reduction)
        self.q = q

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return quantile_loss(input, target, self.q, self.reduction)


class MSLELoss(ElementwiseLoss):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return msle_loss(input, target, self.reduction)


class MAPELoss(ElementwiseLoss):
    def __init__(self, eps: float = 2.220446049250313e-16, reduction: str = "mean"):
        super().__init__(reduction)
        self.eps = eps

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mape_loss(input, target, self.eps, self.reduction)


class PoissonNLLLoss(ElementwiseLoss):
    def __init__(self, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: str = "mean"):
        super().__init__(reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return poisson_nll_loss(input, target, self.log_input, self.full, self.eps, self.reduction)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The predicted rate: ``exp(output)`` when the model outputs log-rates."""
        return upcast(output).exp() if self.log_input else output


class GaussianNLLLoss(ElementwiseLoss):
    """Gaussian NLL on a model output ``(N, 2)``: a mean and a raw variance.

    The variance is ``softplus(raw) + eps``, positive for every raw value.
    """

    def __init__(self, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(reduction)
        self.full = full
        self.eps = eps

    def _split(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if output.ndim != 2 or output.shape[1] != 2:
            raise ValueError(
                f"gaussian_nll takes a model output (N, 2) of mean and raw variance, got {tuple(output.shape)}"
            )
        output = upcast(output)
        return output[:, 0], F.softplus(output[:, 1]) + self.eps

    def variance(self, output: torch.Tensor) -> torch.Tensor:
        """The predicted variance ``(N,)``."""
        return self._split(output)[1]

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The predicted mean ``(N,)``."""
        return self._split(output)[0]

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mean, var = self._split(output)
        mean, target = _pair(mean, target)
        # softplus(raw) + eps is never below eps: the clamp of gaussian_nll_loss would change nothing
        return _gaussian_nll(mean, target, var, self.full, self.reduction)


class _ScaledRobustLoss(ElementwiseLoss):
    def __init__(self, scale: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.scale = scale


class CharbonnierLoss(_ScaledRobustLoss):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return charbonnier_loss(input, target, self.scale, self.reduction)


class CauchyLoss(_ScaledRobustLoss):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cauchy_loss(input, target, self.scale, self.reduction)


class WelschLoss(_ScaledRobustLoss):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return welsch_loss(input, target, self.scale, self.reduction)


class GemanMcClureLoss(_ScaledRobustLoss):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return geman_mcclure_loss(input, target, self.scale, self.reduction)


class TukeyLoss(ElementwiseLoss):
    def __init__(self, c: float = 4.685, reduction: str = "mean"):
        super().__init__(reduction)
        self.c = c

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return tukey_loss(input, target, self.c, self.reduction)


class BarronLoss(ElementwiseLoss):
    """Barron's general robust loss with a fixed or learned shape ``alpha``.

    Fixed (``adaptive=False``): ``rho(r, alpha, scale)``. Adaptive: ``alpha =
    lo + (hi - lo) sigmoid(latent_alpha)`` with ``latent_alpha`` an
    ``nn.Parameter`` started at the given ``alpha``, and the loss is the
    negative log-likelihood ``rho(r, alpha, c) + log(c Z(alpha))`` as in the
    paper: without ``log Z`` the loss alone would drive alpha to its lower bound.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        scale: float = 1.0,
        adaptive: bool = False,
        alpha_lo: float = 0.001,
        alpha_hi: float = 1.999,
        reduction: str = "mean",
    ):
        super().__init__(reduction)
        self.scale = scale
        self.adaptive = adaptive
        self.alpha_lo = alpha_lo
        self.alpha_hi = alpha_hi
        if adaptive:
            if not alpha_lo < alpha_hi:
                raise InvalidParameterError(
                    f"alpha_lo ({alpha_lo:g}) must be below alpha_hi ({alpha_hi:g})", "alpha_lo"
                )
            if not alpha_lo < alpha < alpha_hi:
                raise InvalidParameterError(
                    f"an adaptive alpha must start inside (alpha_lo, alpha_hi) = ({alpha_lo:g}, {alpha_hi:g}), "
                    f"got {alpha:g}",
                    "alpha",
                )
            u = (alpha - alpha_lo) / (alpha_hi - alpha_lo)
            self.latent_alpha = nn.Parameter(torch.tensor(math.log(u / (1.0 - u))))
        else:
            self.fixed_alpha = alpha

    @property
    def alpha(self) -> torch.Tensor | float:
        """The current shape: a float when fixed, a 0-d tensor when learned."""
        if not self.adaptive:
            return self.fixed_alpha
        alpha = self.alpha_lo + (self.alpha_hi - self.alpha_lo) * torch.sigmoid(self.latent_alpha)
        return alpha.clamp(self.alpha_lo, self.alpha_hi)  # rounding could step past a bound by one ulp

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not self.adaptive:
            return barron_loss(input, target, self.fixed_alpha, self.scale, self.reduction)
        alpha = self.alpha
        values = barron_loss(input, target, alpha, self.scale, "none")
        values = values + (math.log(self.scale) + barron_log_partition(alpha)).to(values.dtype)
        return reduce(values, self.reduction)
