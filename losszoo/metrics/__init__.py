"""Evaluation metrics, one file per task: classification, regression, retrieval
(on embeddings) and segmentation.

Every metric is a pure function ``fn(output, target) -> float`` built from
torch ops, fast enough to run on the validation set every epoch. Metadata
(input kind, task, ``higher_is_better``, formula) lives in
``losszoo/catalog/metrics.py``; look a metric up through ``losszoo.METRICS``.
"""
