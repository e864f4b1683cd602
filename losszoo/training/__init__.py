"""Training: one run (trainer), the run folder on disk (store), a grid of runs (runner)."""
