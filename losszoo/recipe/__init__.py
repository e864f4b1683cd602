"""Recipes: YAML read with the line of every node, validated against the
registry, expanded into runs (datasets x losses x seeds)."""
