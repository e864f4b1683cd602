"""The shared properties, parametrized over the whole loss registry: a loss
added to the catalogue is tested here the day it lands."""

import pytest

from losszoo import list_losses
from losszoo.registry import LOSSES
from losszoo.testing import CHECKS


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", list_losses())
def test_conformance(name: str, check: str) -> None:
    CHECKS[check](LOSSES.get(name))


@pytest.mark.parametrize("name", list_losses())
def test_metadata_is_complete(name: str) -> None:
    entry = LOSSES.get(name)
    assert entry.family and entry.summary and entry.paper and entry.formula and entry.reference
    assert entry.input in ("logits", "embeddings", "values", "mean_var", "pixel_logits")
    assert entry.target_kind in ("labels", "values", "masks")
    for param in entry.params:
        assert param.doc, f"{name}.{param.name} has no meaning"
        assert param.problem(param.default) is None, f"{name}.{param.name}: default is out of its own bounds"
