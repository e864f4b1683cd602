"""Regression losses on predicted values. Implementations: losszoo/losses/regression.py.

``input_range`` and ``target_range`` are open intervals the shared
tests draw valid examples from, for losses whose formula has a restricted domain.
Tuning ranges of widths (delta, beta, scale, c) are in units of the target's
standard deviation: the trainer standardises regression targets.
"""

from losszoo.catalog import Param, Rule, loss

_IMPL = "losszoo.losses.regression"
_BARRON = "Barron, A General and Adaptive Robust Loss Function, CVPR 2019"
#: A width in standard deviations of the target: a decade either side of 1.
_WIDTH = (0.1, 10.0, "log")


def _regression(name: str, target: str, **metadata):
    """A regression loss entry: predicted values against target values, element-wise."""
    metadata.setdefault("input", "values")
    return loss(name, f"{_IMPL}:{target}", family="regression", target_kind="values", elementwise=True,
                stackable=True, **metadata)


def _scale(doc: str = "width of the quadratic bowl, in units of the target; kornia's is 1") -> Param:
    return Param("scale", 1.0, doc, gt=0.0, short="c", tune=_WIDTH)


ENTRIES = [
    _regression(
        "mse",
        "MSELoss",
        summary="mean squared error",
        paper="Gauss, Theoria motus corporum coelestium, 1809",
        formula="(x - y)^2",
        reference="torch.nn.functional.mse_loss",
    ),
    _regression(
        "mae",
        "MAELoss",
        summary="mean absolute error (L1)",
        paper="Laplace, Traité de mécanique céleste, 1799",
        formula="|x - y|",
        reference="torch.nn.functional.l1_loss",
    ),
    _regression(
        "huber",
        "HuberLoss",
        summary="quadratic near zero, linear beyond delta",
        params=(Param("delta", 1.0, "where the loss turns linear", gt=0.0, short="d", tune=_WIDTH),),  # Huber: 1.345
        paper="Huber, Robust Estimation of a Location Parameter, 1964",
        formula="r^2 / 2 if |r| <= delta else delta (|r| - delta / 2)",
        reference="torch.nn.functional.huber_loss",
    ),
    _regression(
        "smooth_l1",
        "SmoothL1Loss",
        summary="Huber divided by beta: slope 1 beyond beta",
        params=(Param("beta", 1.0, "where the loss turns linear; 0 is mae", ge=0.0, short="b", tune=_WIDTH),),
        paper="Girshick, Fast R-CNN, ICCV 2015",
        formula="r^2 / (2 beta) if |r| < beta else |r| - beta / 2",
        reference="torch.nn.functional.smooth_l1_loss",
    ),
    _regression(
        "log_cosh",
        "LogCoshLoss",
        summary="log cosh of the residual: squared near zero, absolute far away",
        paper="Chen et al., Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder, 2019",
        formula="log cosh(x - y) = |r| + softplus(-2 |r|) - log 2",
        reference="formula",
    ),
    _regression(
        "quantile",
        "QuantileLoss",
        summary="pinball loss; its minimiser is the q-quantile",
        # No range for q: it names the statistic predicted (the task), not a knob to fit a metric with.
        params=(Param("q", 0.5, "the quantile predicted; 0.5 is the median", gt=0.0, lt=1.0, short="q"),),
        paper="Koenker & Bassett, Regression Quantiles, Econometrica 1978",
        formula="max(q r, (q - 1) r),  r = y - x",
        reference="formula",
    ),
    _regression(
        "msle",
        "MSLELoss",
        summary="squared error of log(1 + value), for non-negative targets",
        paper="no single paper: squared error on log(1 + y), standard for targets spanning orders of magnitude",
        formula="(log(1 + x) - log(1 + y))^2,  x, y > -1",
        reference="formula; equals sklearn.metrics.mean_squared_log_error",
        input_range=(0.0, 10.0), target_range=(0.0, 10.0),
    ),
    _regression(
        "mape",
        "MAPELoss",
        summary="absolute error relative to the target (a fraction, not percent)",
        params=(Param("eps", 2.220446049250313e-16, "floor on |y| in the denominator", gt=0.0, short="eps"),),
        paper="de Myttenaere et al., Mean Absolute Percentage Error for regression models, Neurocomputing 2016",
        formula="|x - y| / max(|y|, eps)",
        reference="formula; equals sklearn.metrics.mean_absolute_percentage_error",
        target_range=(1.0, 10.0),
    ),
    _regression(
        "poisson_nll",
        "PoissonNLLLoss",
        summary="Poisson negative log-likelihood of counts",
        params=(
            Param("log_input", True, "the model outputs log-rates (else rates >= 0)", type="bool", short="log"),
            Param("full", False, "add Stirling's approximation of log(y!)", type="bool", short="full"),
            Param("eps", 1e-8, "added to the rate inside log when log_input is false", gt=0.0, short="eps"),
        ),
        paper="Nelder & Wedderburn, Generalized Linear Models, JRSS A 1972",
        formula="exp(x) - y x  (log_input)  or  x - y log(x + eps)",
        reference="torch.nn.functional.poisson_nll_loss",
        target_range=(0.0, 10.0),
    ),
    _regression(
        "gaussian_nll",
        "GaussianNLLLoss",
        summary="Gaussian negative log-likelihood of a predicted mean and variance",
        input="mean_var",
        params=(
            Param("full", False, "add the constant log(2 pi) / 2", type="bool", short="full"),
            Param("eps", 1e-6, "added to softplus(raw variance); floor on the variance", gt=0.0, short="eps"),
        ),
        paper="Nix & Weigend, Estimating the Mean and Variance of the Target Probability Distribution, 1994",
        formula="(log v + (mu - y)^2 / v) / 2,  v = softplus(raw) + eps",
        reference="torch.nn.functional.gaussian_nll_loss",
    ),
    _regression(
        "charbonnier",
        "CharbonnierLoss",
        summary="pseudo-Huber: smooth L1-L2 (Barron alpha = 1)",
        params=(_scale(),),
        paper="Charbonnier et al., Two deterministic half-quadratic regularization algorithms, ICIP 1994",
        formula="sqrt((r/c)^2 + 1) - 1",
        reference="kornia.losses.charbonnier_loss (scale 1)",
    ),
    _regression(
        "cauchy",
        "CauchyLoss",
        summary="Cauchy / Lorentzian: logarithmic growth (Barron alpha = 0)",
        params=(_scale(),),
        paper="Black & Anandan, The robust estimation of multiple motions, CVIU 1996",
        formula="log(1 + (r/c)^2 / 2)",
        reference="kornia.losses.cauchy_loss (scale 1)",
    ),
    _regression(
        "welsch",
        "WelschLoss",
        summary="Welsch / Leclerc: saturates at 1 (Barron alpha = -inf)",
        params=(_scale(),),
        paper="Dennis & Welsch, Techniques for nonlinear least squares and robust regression, 1978",
        formula="1 - exp(-(r/c)^2 / 2)",
        reference="kornia.losses.welsch_loss (scale 1)",
    ),
    _regression(
        "geman_mcclure",
        "GemanMcClureLoss",
        summary="Geman-McClure: saturates at 2 (Barron alpha = -2)",
        params=(_scale(),),
        paper="Geman & McClure, Bayesian image analysis: an application to single photon emission tomography, 1985",
        formula="2 (r/c)^2 / ((r/c)^2 + 4)",
        reference="kornia.losses.geman_mcclure_loss (scale 1)",
    ),
    _regression(
        "tukey",
        "TukeyLoss",
        summary="Tukey's biweight: constant, zero gradient, beyond c",
        params=(Param("c", 4.685, "residual beyond which a sample is ignored", gt=0.0, short="c",
                      tune=(1.0, 10.0, "log")),),  # 4.685 sd: 95% efficiency under Gaussian noise
        paper="Beaton & Tukey, The fitting of power series, meaning polynomials, Technometrics 1974",
        formula="c^2/6 (1 - (1 - (r/c)^2)^3) if |r| <= c else c^2/6",
        reference="formula",
    ),
    _regression(
        "barron",
        "BarronLoss",
        summary="general robust loss; shape alpha fixed or learned",
        params=(
            Param(
                "alpha", 1.0, "shape: 2 squared, 1 Charbonnier, 0 Cauchy, -2 Geman-McClure, -inf Welsch",
                le=2.0, short="a", finite=False,
                tune=(-2.0, 2.0),  # Geman-McClure (-2) to L2 (2), the shapes the paper names, Welsch's -inf aside
            ),
            _scale("width of the quadratic bowl, in units of the target"),
            Param("adaptive", False, "learn alpha; the loss becomes the negative log-likelihood", type="bool",
                  short="adapt"),
            Param("alpha_lo", 0.001, "lower bound of a learned alpha", ge=0.0, lt=2.0, short="lo"),
            Param("alpha_hi", 1.999, "upper bound of a learned alpha", gt=0.0, le=2.0, short="hi"),
        ),
        rules=(
            Rule("alpha_lo", "must be below alpha_hi = {alpha_hi:g}, got {alpha_lo:g}",
                 lambda v: not v["adaptive"] or v["alpha_lo"] < v["alpha_hi"]),
            Rule("alpha", "an adaptive alpha must start inside (alpha_lo, alpha_hi) = ({alpha_lo:g}, {alpha_hi:g}), "
                 "got {alpha:g}", lambda v: not v["adaptive"] or v["alpha_lo"] < v["alpha"] < v["alpha_hi"]),
        ),
        paper=_BARRON,
        formula="|a-2|/a (((r/c)^2/|a-2| + 1)^(a/2) - 1); adaptive: + log(c Z(a))",
        reference="formula (Barron's rho); kornia's robust losses at alpha = 1, 0, -2, -inf",
    ),
]
