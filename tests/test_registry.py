"""The registry and ``create_loss``: natural order, wildcards, families, unknown
names with close matches, duplicates, and every hyperparameter check."""

import pytest
import torch

import losszoo
from losszoo import InvalidParameterError, LosszooError, Param, UnknownNameError, create_loss, list_losses
from losszoo.registry import LOSSES, Entry, Registry


def _entry(name: str, family: str = "toy") -> Entry:
    return Entry(kind="model", name=name, target=lambda **kw: kw, family=family)


@pytest.fixture
def toy() -> Registry:
    """A private registry with no catalogue, so the global ones stay untouched."""
    return Registry("model", "models", ())


# --- names ---------------------------------------------------------------------------------------


def test_names_sort_naturally(toy):
    for name in ("resnet10", "resnet2", "resnet1", "resnet101", "alexnet"):
        toy.add(_entry(name))
    assert toy.names() == ["alexnet", "resnet1", "resnet2", "resnet10", "resnet101"]


def test_wildcard_pattern_selects_names(toy):
    for name in ("resnet18", "resnet50", "wide_resnet50", "vit_b16"):
        toy.add(_entry(name))
    assert toy.names("resnet*") == ["resnet18", "resnet50"]
    assert toy.names("*resnet*") == ["resnet18", "resnet50", "wide_resnet50"]
    assert toy.names("*50") == ["resnet50", "wide_resnet50"]
    assert toy.names("nothing*") == []


def test_list_losses_wildcard_on_the_real_catalogue():
    face = list_losses("*face*")
    assert {"arcface", "cosface", "normface", "sphereface"} <= set(face)
    assert all("face" in name for name in face)
    assert "cross_entropy" not in face
    assert face == sorted(face)  # no digits in these names: natural order is alphabetical


def test_family_filter(toy):
    toy.add(_entry("a1", family="x"))
    toy.add(_entry("b1", family="y"))
    toy.add(_entry("a2", family="x"))
    assert toy.names(family="x") == ["a1", "a2"]
    assert toy.names("*2", family="x") == ["a2"]
    assert toy.families() == ["x", "y"]


def test_family_filter_on_losses():
    margin = list_losses(family="margin")
    assert "arcface" in margin and "cosface" in margin
    assert "cross_entropy" not in margin and "mse" not in margin
    assert all(losszoo.loss_spec(n).family == "margin" for n in margin)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError) as info:
        create_loss("arcfce", num_classes=3, embedding_dim=4)
    message = str(info.value)
    assert "arcfce" in message
    assert "did you mean" in message and "'arcface'" in message
    # One error type catches it whether the caller thinks of it as losszoo's or as a lookup.
    assert isinstance(info.value, LosszooError)
    assert isinstance(info.value, KeyError)


def test_unknown_name_in_a_private_registry(toy):
    toy.add(_entry("resnet18"))
    with pytest.raises(UnknownNameError, match="did you mean 'resnet18'"):
        toy.get("resnet19")


def test_loss_spec_gives_metadata():
    spec = losszoo.loss_spec("arcface")
    assert spec.family == "margin"
    assert spec.input == "embeddings"
    assert {p.name for p in spec.params} >= {"margin", "scale"}
    assert spec.paper


def test_registering_a_name_twice_raises(toy):
    toy.register("thing")(lambda: None)
    with pytest.raises(LosszooError, match="registered twice"):
        toy.register("thing")(lambda: None)
    assert toy.names() == ["thing"]


def test_registering_a_builtin_loss_name_again_raises():
    with pytest.raises(LosszooError, match="'cross_entropy' is registered twice"):

        @losszoo.register_loss("cross_entropy", family="mine", input="logits", target_kind="labels")
        def cross_entropy(input, target):  # pragma: no cover - never called
            return input.sum()

    # The built-in entry is still the one that answers.
    assert LOSSES.get("cross_entropy").origin == "built-in"


def test_register_decorator_names_by_snake_case(toy):
    @toy.register(family="conv")
    class TinyResNet:
        pass

    assert toy.names() == ["tiny_res_net"]
    assert toy.get("tiny_res_net").load() is TinyResNet


# --- Param checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "words"),
    [
        (Param("epochs", 3, "doc", type="int", ge=1), "3", "must be an integer, got '3'"),
        (Param("epochs", 3, "doc", type="int", ge=1), 3.0, "must be an integer"),
        (Param("epochs", 3, "doc", type="int", ge=1), True, "must be an integer, got true"),
        (Param("gamma", 2.0, "doc", ge=0.0), "many", "must be a number, got 'many'"),
        (Param("gamma", 2.0, "doc", ge=0.0), "3", "must be a number, got '3'"),
        (Param("gamma", 2.0, "doc", ge=0.0), True, "must be a number, got true"),
        (Param("gamma", 2.0, "doc", ge=0.0), -0.5, "must be >= 0, got -0.5"),
        (Param("gamma", 2.0, "doc", ge=0.0), float("nan"), "must be a finite number >= 0, got nan"),
        (Param("m", 0.5, "doc", gt=0.0, lt=1.0), 0.0, "must be in (0, 1), got 0"),
        (Param("m", 0.5, "doc", gt=0.0, lt=1.0), 1.0, "must be in (0, 1), got 1"),
        (Param("q", 0.5, "doc", ge=0.0, le=1.0), 1.5, "must be in [0, 1], got 1.5"),
        (Param("flag", False, "doc", type="bool"), 1, "must be true or false, got 1"),
        (Param("flag", False, "doc", type="bool"), "yes", "must be true or false"),
        (Param("kind", "a", "doc", type="str", choices=("alpha", "beta")), "alpah", "did you mean 'alpha'"),
        (Param("sizes", [1], "doc", type="ints", ge=1), [1, "2"], "must be a list of integers"),
        (Param("sizes", [1], "doc", type="ints", ge=1), [4, 0], "must be >= 1, got 0"),
        (Param("w", None, "doc", type="floats", ge=0.0), [1.0, False], "must be a list of numbers"),
        (Param("w", 1.0, "doc"), None, "must not be null"),
    ],
)
def test_param_rejects(param, value, words):
    problem = param.problem(value)
    assert problem is not None
    assert words in problem


@pytest.mark.parametrize(
    ("param", "value"),
    [
        (Param("gamma", 2.0, "doc", ge=0.0), 0),
        (Param("gamma", 2.0, "doc", ge=0.0), 2.5),
        (Param("m", 0.5, "doc", gt=0.0, lt=1.0), 0.999),
        (Param("n", 1, "doc", type="int", ge=1), 1),
        (Param("w", None, "doc", type="floats", nullable=True), None),
        (Param("w", None, "doc", type="float_or_floats", ge=0.0), [0.5, 1]),
        (Param("kind", "a", "doc", type="str", choices=("alpha", "beta")), "beta"),
    ],
)
def test_param_accepts(param, value):
    assert param.problem(value) is None


def test_param_rejects_an_unknown_type():
    with pytest.raises(ValueError, match="type must be one of"):
        Param("x", 1, "doc", type="number")


@pytest.mark.parametrize(
    ("bounds", "text"),
    [({"gt": 0.0}, "> 0"), ({"ge": 0.0}, ">= 0"), ({"lt": 1.0}, "< 1"), ({"le": 1.0}, "<= 1"),
     ({"gt": 0.0, "le": 1.0}, "in (0, 1]"), ({}, "")],
)
def test_param_bounds_in_words(bounds, text):
    assert Param("x", 0.5, "doc", **bounds).bounds() == text


# --- create_loss ---------------------------------------------------------------------------------


def test_create_loss_fills_defaults_and_takes_hyperparameters():
    loss = create_loss("focal", num_classes=3, gamma=1.0)
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    assert loss(logits, labels).shape == ()


@pytest.mark.parametrize("value", ["3", "many", True, None, [1.0]])
def test_create_loss_no_silent_conversion(value):
    with pytest.raises(InvalidParameterError) as info:
        create_loss("focal", num_classes=3, gamma=value)
    assert info.value.parameter == "gamma"
    assert "gamma" in str(info.value)


def test_create_loss_out_of_bounds_names_parameter_and_bound():
    with pytest.raises(InvalidParameterError) as info:
        create_loss("arcface", num_classes=3, embedding_dim=4, margin=-0.1)
    assert info.value.parameter == "margin"
    assert "arcface.margin" in str(info.value)
    assert "must be in (0" in str(info.value) and "-0.1" in str(info.value)


def test_create_loss_unknown_hyperparameter_suggests_the_right_one():
    with pytest.raises(InvalidParameterError) as info:
        create_loss("focal", num_classes=3, gama=2.0)
    assert info.value.parameter == "gama"
    message = str(info.value)
    assert "unknown hyperparameter" in message and "did you mean 'gamma'" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, LosszooError)


@pytest.mark.parametrize(("name", "given", "missing"), [
    ("ldam", {"class_counts": [3, 2]}, "num_classes"),
    ("arcface", {"num_classes": 3}, "embedding_dim"),
    ("arcface", {"embedding_dim": 8}, "num_classes"),
])
def test_create_loss_missing_context(name, given, missing):
    with pytest.raises(InvalidParameterError) as info:
        create_loss(name, **given)
    assert info.value.parameter == missing
    assert f"needs {missing}" in str(info.value) or missing in str(info.value)
    assert name in str(info.value)


def test_context_a_loss_does_not_need_is_ignored():
    loss = create_loss("mse", num_classes=3, embedding_dim=4, class_counts=[1, 2, 3])
    assert float(loss(torch.zeros(3), torch.ones(3))) == pytest.approx(1.0)


def test_reduction_on_a_non_elementwise_loss_is_rejected():
    with pytest.raises(InvalidParameterError) as info:
        create_loss("arcface", num_classes=3, embedding_dim=4, reduction="none")
    assert info.value.parameter == "reduction"
    assert "arcface" in str(info.value) and "no reduction" in str(info.value)


def test_unknown_reduction_is_rejected():
    with pytest.raises(InvalidParameterError, match="'mean', 'sum' or 'none'"):
        create_loss("mse", reduction="avg")


def test_reduction_on_an_elementwise_loss_works():
    pred, target = torch.tensor([0.0, 1.0, 3.0]), torch.tensor([1.0, 1.0, 1.0])
    per_sample = create_loss("mse", reduction="none")(pred, target)
    torch.testing.assert_close(per_sample, torch.tensor([1.0, 0.0, 4.0]))
    assert float(create_loss("mse", reduction="sum")(pred, target)) == pytest.approx(5.0)


@pytest.mark.parametrize("bad", [3, -1, 7])
@pytest.mark.parametrize(
    ("name", "kwargs", "make_input"),
    [
        ("cross_entropy", {}, lambda: torch.randn(4, 3)),
        ("focal", {}, lambda: torch.randn(4, 3)),
        ("arcface", {"embedding_dim": 5}, lambda: torch.randn(4, 5)),
        ("cosface", {"embedding_dim": 5}, lambda: torch.randn(4, 5)),
    ],
)
def test_labels_outside_the_classes_raise_value_error(name, kwargs, make_input, bad):
    loss = create_loss(name, num_classes=3, **kwargs)
    labels = torch.tensor([0, 1, bad, 2])
    with pytest.raises(ValueError, match=str(bad)):
        loss(make_input(), labels)


@pytest.mark.parametrize("name", ["focal", "cross_entropy", "poly1", "triplet", "contrastive", "supcon", "dice",
                                  "tversky", "bce", "asymmetric", "multi_margin", "squared_hinge"])
def test_a_loss_without_class_sized_parameters_needs_no_num_classes(name):
    """As in torch and pytorch-metric-learning: the label check reads the class count off the input."""
    import torch

    from losszoo.testing import example

    loss = losszoo.create_loss(name)
    x, y = example(losszoo.loss_spec(name), dtype=torch.float32)
    assert torch.isfinite(loss(x, y))


@pytest.mark.parametrize("name", ["arcface", "proxy_anchor", "ldam", "center_loss"])
def test_a_loss_with_class_sized_parameters_asks_for_them(name):
    with pytest.raises(losszoo.InvalidParameterError, match="needs num_classes"):
        losszoo.create_loss(name)


def test_an_optional_num_classes_is_checked_against_the_logits():
    import torch

    loss = losszoo.create_loss("focal", num_classes=3)
    with pytest.raises(ValueError, match="num_classes=3"):
        loss(torch.randn(4, 5), torch.tensor([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="label 7 is outside"):
        losszoo.create_loss("focal")(torch.randn(4, 5), torch.tensor([0, 1, 2, 7]))


@pytest.mark.parametrize("param", [Param("x", 1.0, "d"), Param("x", 1.0, "d", gt=0.0),
                                   Param("x", 1.0, "d", finite=False)])
def test_nan_is_never_admissible_and_the_message_says_what_is(param):
    assert param.problem(float("nan")).startswith("must be a finite number")
