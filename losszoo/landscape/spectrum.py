"""The Hessian's spectrum: its top eigenvalues and its eigenvalue density.

Ghorbani, Krishnan and Xiao, An Investigation into Neural Net Optimization via
Hessian Eigenvalue Density, ICML 2019; the conventions of PyHessian (Yao,
Gholami, Keutzer and Mahoney, 2020). The Hessian is only ever touched through
Hessian-vector products (``hessian.hessian_products``).

- **Top-k eigenvalues**: implicitly restarted Lanczos (ARPACK, through
  ``scipy.sparse.linalg.eigsh`` on a ``LinearOperator`` whose ``matvec`` is one
  Hessian-vector product), the ``k`` largest algebraic eigenvalues.
- **Spectral density** by stochastic Lanczos quadrature (Golub and Meurant
  1994; Lin, Saad and Yang 2016). For a random unit vector ``v``, ``m`` steps of
  Lanczos (with full reorthogonalization, as PyHessian) give a tridiagonal
  ``T = Q diag(theta) Q^T``; the nodes ``theta_j`` with weights
  ``tau_j = Q[0, j]^2`` are the Gauss quadrature of the measure
  ``sum_i (v . u_i)^2 delta(t - lambda_i)``, exact for polynomials of degree
  ``< 2m``:  ``sum_j tau_j theta_j^p = v^T H^p v``. Over random ``v`` that measure
  averages to the spectral density ``(1/n) sum_i delta(t - lambda_i)``. The
  density is the average over probes of the quadratures, each node broadened to
  a Gaussian of width ``sigma``:

      phi(t) = (1 / n_v) sum_l sum_j tau_j^l N(t; theta_j^l, sigma^2)

  It integrates to 1 and its mean is ``(1 / n_v) sum_l v_l^T H v_l``, an
  estimate of ``tr(H) / n``.
- **Negative share**: the density's mass below ``-NEGATIVE_FRACTION * lambda_max``
  (the same threshold that flags a saddle): how much of the spectrum is clearly
  negative curvature, computed exactly from the Gaussians, not from the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from losszoo.errors import LosszooError
from losszoo.landscape import NEGATIVE_FRACTION
from losszoo.landscape.directions import ParamSpace
from losszoo.landscape.hessian import HVP

#: The broadening: sigma is this fraction of the spectrum's span (nodes' max - min).
SIGMA_FRACTION = 2.5e-3
#: Points of the density grid; the grid reaches 6 sigma beyond the extreme nodes.
GRID_POINTS = 1001


@dataclass
class TopK:
    values: list[float]  # largest first
    products: int  # Hessian-vector products it took
    converged: bool


@dataclass
class Density:
    """The stochastic Lanczos quadrature of the spectrum and its broadened density on a grid."""

    nodes: list[list[float]]  # per probe, the Ritz values theta_j
    weights: list[list[float]]  # per probe, tau_j (each probe's weights sum to 1)
    sigma: float
    grid: list[float]
    density: list[float]
    negative_share: float
    mean: float  # the density's mean, an estimate of trace / n
    mean_se: float  # its standard error over the probes
    steps: int
    probes: int
    threshold: float = 0.0  # "negative" means below this


def _as_operator(hvp: HVP, space: ParamSpace):
    """A float64 scipy LinearOperator of the Hessian, counting its products."""
    from scipy.sparse.linalg import LinearOperator

    count = [0]

    def matvec(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        vector = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1)).to(space.device, space.dtype)
        return hvp(vector).detach().to("cpu", torch.float64).numpy()

    return LinearOperator((space.dim, space.dim), matvec=matvec, dtype=np.float64), count


def top_eigenvalues(hvp: HVP, space: ParamSpace, k: int, generator: torch.Generator, tol: float = 1e-4,
                    max_products: int = 2000) -> TopK:
    """The ``k`` largest eigenvalues of the Hessian by implicitly restarted Lanczos (ARPACK)."""
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    if not 1 <= k < space.dim:
        raise LosszooError(f"--top-k must be between 1 and {space.dim - 1} (the parameters less one), got {k}")
    operator, count = _as_operator(hvp, space)
    start = space.gaussian_unit(generator).to("cpu", torch.float64).numpy()
    ncv = min(space.dim, max(2 * k + 1, 20))
    try:
        values = eigsh(operator, k=k, which="LA", v0=start, ncv=ncv, tol=tol, maxiter=max(1, max_products // ncv),
                       return_eigenvectors=False)
        converged = True
    except ArpackNoConvergence as error:  # keep what did converge
        values, converged = error.eigenvalues, False
    return TopK(sorted((float(v) for v in values), reverse=True), count[0], converged)


def lanczos(hvp: HVP, space: ParamSpace, start: torch.Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` Lanczos steps from ``start`` with full reorthogonalization; the tridiagonal's
    ``(alphas, betas)``. Stops early when the Krylov space is exhausted (beta ~ 0)."""
    basis = torch.zeros(steps, space.dim, dtype=torch.float64, device=space.device)
    v = start.to(torch.float64) / start.norm()
    alphas, betas = [], []
    for j in range(steps):
        basis[j] = v
        w = hvp(v.to(space.dtype)).to(torch.float64)
        alpha = float(w @ v)
        alphas.append(alpha)
        # Gram-Schmidt against every earlier vector, twice: float32 products lose orthogonality fast
        for _ in range(2):
            w = w - basis[:j + 1].T @ (basis[:j + 1] @ w)
        beta = float(w.norm())
        if j == steps - 1 or beta <= 1e-10 * max(1.0, abs(alpha)):
            break
        betas.append(beta)
        v = w / beta
    return np.asarray(alphas), np.asarray(betas)


def quadrature(alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature nodes and weights of a Lanczos tridiagonal: its eigenvalues and the squared
    first components of its eigenvectors."""
    from scipy.linalg import eigh_tridiagonal

    nodes, vectors = eigh_tridiagonal(alphas, betas)
    return nodes, vectors[0] ** 2


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(z)


def spectral_density(hvp: HVP, space: ParamSpace, generator: torch.Generator, probes: int = 10, steps: int = 80,
                     lambda_max: float | None = None) -> Density:
    """The stochastic Lanczos quadrature of the spectrum, over ``probes`` Gaussian unit vectors.

    ``lambda_max`` sets the negative threshold (``-NEGATIVE_FRACTION * lambda_max``); without it the
    largest node is used.
    """
    steps = min(steps, space.dim)
    nodes, weights = [], []
    for _ in range(probes):
        theta, tau = quadrature(*lanczos(hvp, space, space.gaussian_unit(generator), steps))
        nodes.append(theta)
        weights.append(tau / tau.sum())  # the sum is 1 up to rounding
    all_nodes, all_weights = np.concatenate(nodes), np.concatenate(weights) / probes
    low, high = float(all_nodes.min()), float(all_nodes.max())
    sigma = SIGMA_FRACTION * max(high - low, 1e-12 * max(1.0, abs(high)))
    grid = np.linspace(low - 6 * sigma, high + 6 * sigma, GRID_POINTS)
    # sum of weighted Gaussians, node by node (nodes x grid stays small: probes * steps * 1001)
    z = (grid[None, :] - all_nodes[:, None]) / sigma
    density = (all_weights[:, None] * np.exp(-0.5 * z * z)).sum(0) / (sigma * math.sqrt(2 * math.pi))
    top = high if lambda_max is None else lambda_max
    threshold = -NEGATIVE_FRACTION * abs(top)
    negative = float((all_weights * _normal_cdf((threshold - all_nodes) / sigma)).sum())
    means = np.array([float(t @ w) for t, w in zip(nodes, weights, strict=True)])  # v^T H v per probe
    se = float(means.std(ddof=1) / math.sqrt(probes)) if probes > 1 else math.nan
    return Density([t.tolist() for t in nodes], [w.tolist() for w in weights], sigma, grid.tolist(),
                   density.tolist(), negative, float(means.mean()), se, steps, probes, threshold)
