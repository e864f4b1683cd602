"""Training: one run (trainer, evaluate), runs stacked in one pass (stacked, stack_rules), the run folder on
disk (store, claims), a grid of runs on a backend (grid, runner, backends: in process, worker processes,
Dask), tuning studies (tune), trackers (trackers) and telling a real Ctrl-C apart (interrupts)."""
