"""Registry metadata: datasets."""

ENTRIES: list = []
