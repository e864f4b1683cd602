"""The geometry of trained minima: ``losszoo landscape``.

- ``directions.py``: the parameters as one flat vector; filter-normalized directions (Li et al. 2018).
- ``surface.py``: a loss as a function of the parameters; 1-D and 2-D slices.
- ``hessian.py``: Hessian-vector products; extreme eigenvalues (power iteration); Hutchinson's trace.
- ``flatness.py``: the flatness radius; SAM sharpness.
- ``runs.py``: finding finished runs and rebuilding them with their probe batch.
- ``measure.py``: the budget plan, one run's measurement, ``landscape.json`` and result.json.
- ``between.py``: the straight line between two runs and its barrier (Frankle et al. 2020).
- ``plots.py``: the PNGs.

Nothing here is imported by the CLI until the command runs (it imports torch).
"""
