"""Registry metadata: models."""

ENTRIES: list = []
