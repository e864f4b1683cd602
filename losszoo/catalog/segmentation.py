"""Registry metadata: segmentation."""

ENTRIES: list = []
