"""Comparison of finished runs: aggregation over seeds and the statistics that
say which losses are not significantly worse than the best."""
