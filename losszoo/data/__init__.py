"""Datasets as in-memory tensors: sources (sklearn, synthetic, user files), the
seeded stratified split, and the modifiers that make losses worth comparing."""
