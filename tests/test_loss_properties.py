"""The shared properties, parametrized over the whole registry: a loss added to
the catalogue is tested here the day it lands."""

import inspect

import pytest

from losszoo import list_losses
from losszoo.inputs import INPUT_KINDS
from losszoo.registry import CONTEXT_KEYS, LOSSES, REGISTRIES
from losszoo.testing import CHECKS


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", list_losses())
def test_conformance(name: str, check: str) -> None:
    CHECKS[check](LOSSES.get(name))


@pytest.mark.parametrize("name", list_losses())
def test_metadata_is_complete(name: str) -> None:
    entry = LOSSES.get(name)
    assert entry.family and entry.summary and entry.paper and entry.formula and entry.reference
    assert entry.input in INPUT_KINDS
    assert entry.target_kind in INPUT_KINDS[entry.input].targets
    for param in entry.params:
        assert param.doc, f"{name}.{param.name} has no meaning"
        assert param.problem(param.default) is None, f"{name}.{param.name}: default is out of its own bounds"


EVERY_ENTRY = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry.names()
               if registry.get(name).origin == "built-in"]


def _implementations(kind: str, entry) -> list:
    """What a recipe's values reach: the entry's target, and for a loss class its pure ``<name>_loss``
    function beside it, when there is one."""
    target = entry.load()
    found = [target]
    if kind == "loss" and inspect.isclass(target):
        function = getattr(inspect.getmodule(target), f"{entry.name}_loss", None)
        found += [function] if function is not None else []
    return found


@pytest.mark.parametrize(("kind", "name"), EVERY_ENTRY)
def test_declared_parameters_match_the_implementation(kind: str, name: str) -> None:
    """Every hyperparameter the catalogue declares is a parameter of the implementation with the same
    default (a class's __init__, a function's signature, and a loss class's ``<name>_loss`` function),
    and the implementation takes nothing else a recipe could not set."""
    entry = REGISTRIES[kind].get(name)
    for i, target in enumerate(_implementations(kind, entry)):
        _check_parameters(kind, name, entry, target, pure_function=i > 0)


def _check_parameters(kind: str, name: str, entry, target, pure_function: bool) -> None:
    signature = inspect.signature(target.__init__ if inspect.isclass(target) else target)
    accepted = {p.name: p for p in signature.parameters.values() if p.name != "self"}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    for param in entry.params:
        assert param.name in accepted or takes_any, f"{name}: declares {param.name!r}, the code does not take it"
        if param.name in accepted and accepted[param.name].default is not inspect.Parameter.empty:
            assert accepted[param.name].default == param.default or (
                isinstance(param.default, list) and list(accepted[param.name].default) == param.default), (
                f"{name}.{param.name}: the code's default {accepted[param.name].default!r} is not the "
                f"catalogue's {param.default!r}")
    if kind == "loss" and not pure_function:  # the function also takes the input and the target
        declared = {p.name for p in entry.params} | set(CONTEXT_KEYS) | {"reduction"}
        required = [n for n, p in accepted.items() if p.default is inspect.Parameter.empty
                    and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
        assert set(required) <= declared, f"{name}: the code requires {set(required) - declared} undeclared"


@pytest.mark.parametrize(("kind", "name"), EVERY_ENTRY)
def test_tuning_ranges_lie_within_the_bounds(kind: str, name: str) -> None:
    for param in REGISTRIES[kind].get(name).params:
        if param.tune is not None:
            for end in (param.tune.low, param.tune.high):
                assert param.problem(int(end) if param.type == "int" else end) is None, (
                    f"{name}.{param.name}: tune range end {end} is outside its bounds {param.bounds()}")
