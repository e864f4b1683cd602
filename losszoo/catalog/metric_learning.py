"""Registry metadata: metric_learning."""

ENTRIES: list = []
