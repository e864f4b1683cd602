"""Registry metadata: metrics."""

ENTRIES: list = []
