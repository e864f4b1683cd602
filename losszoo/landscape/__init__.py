"""The geometry of trained minima: ``losszoo landscape``.

- ``directions.py``: the parameters as one flat vector; filter-normalized directions (Li et al. 2018).
- ``surface.py``: a loss as a function of the parameters; 1-D and 2-D slices.
- ``hessian.py``: Hessian-vector products; extreme eigenvalues (power iteration); Hutchinson's trace.
- ``spectrum.py``: top-k eigenvalues (Lanczos) and the spectral density (stochastic Lanczos quadrature).
- ``flatness.py``: the flatness radius; SAM sharpness.
- ``runs.py``: finding finished runs, checking their files, and rebuilding them with their probe batch.
- ``measure.py``: the budget plan, one run's measurement, ``landscape.json`` and result.json.
- ``between.py``: paths between two runs (the straight line, any curve) and their barriers.
- ``curve.py``: training a Bezier curve between two minima (Garipov et al. 2018).
- ``align.py``: permuting hidden units of one network to match another (Ainsworth et al. 2023).
- ``trajectory.py``: the saved checkpoints of a run, measured and projected on their principal directions.
- ``correlate.py``: Kendall's tau with a bootstrap interval (numpy only).
- ``command.py``: what ``losszoo landscape`` does, step by step, for the CLI to render.
- ``plots.py``: the PNGs.

Only this file is imported by the CLI before the command runs: it imports no torch.
"""

#: A Hessian eigenvalue counts as negative curvature when it is below -NEGATIVE_FRACTION * lambda_max:
#: a lambda_min this negative flags a saddle, and the spectrum's mass below it is the negative share.
#: (Float32 products put tiny negative values near zero on any network; 1% of lambda_max is well clear.)
NEGATIVE_FRACTION = 0.01


def is_saddle(lambda_min: float, lambda_max: float) -> bool:
    """Whether ``lambda_min`` is clearly negative: below ``-NEGATIVE_FRACTION * |lambda_max|``. Power
    iteration's estimate is a Rayleigh quotient, never below the true smallest eigenvalue, so a clearly
    negative one proves a direction of negative curvature."""
    return lambda_min < -NEGATIVE_FRACTION * abs(lambda_max)
