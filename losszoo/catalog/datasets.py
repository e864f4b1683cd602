"""Datasets: scikit-learn's bundled sets and synthetic generators (a user's files:
catalog/files.py). Implementations: losszoo/data/sources.py. Nothing is downloaded.

Each entry declares its :class:`Facts` (task, sizes, classes) so that the
recipe checks below -- split sizes, open set, the generators' own limits --
run before any data is loaded. A dataset whose facts depend on its parameters
declares a function of them.
"""

import math

from losszoo.catalog import Facts, Param, Rule, dataset

_IMPL = "losszoo.data.sources"


def _first_split(v: dict) -> bool | str:
    """``test_fraction`` must leave a test and a train part sklearn can split (stratified: a sample of
    every class in each, and two of the rarest class)."""
    n, k = _samples_and_strata(v)
    if k > 1 and (v["smallest_class"] or 0) < 2:
        return f"the rarest class has {v['smallest_class']} sample; a stratified split needs 2 of every class"
    return _parts(n, k, v["test_fraction"], "test")


def _second_split(v: dict) -> bool | str:
    """``val_fraction`` must leave a val and a train part of what the test split left."""
    if _first_split(v) is not True:
        return True  # the test split's rule says what is wrong; what it would leave cannot be judged
    n, k = _samples_and_strata(v)
    rest = n - math.ceil(v["test_fraction"] * n)
    return _parts(rest, k, v["val_fraction"], "val")


def _samples_and_strata(v: dict) -> tuple[int, int]:
    stratified = v["task"] == "classification"
    n, classes = v["samples"], v["classes"] or 1
    if v.get("open_set") and stratified:  # train, val and test of the seen half of the classes
        n, classes = n * (classes // 2) // classes, classes // 2
    return n, classes if stratified else 1


def _parts(n: int, k: int, fraction: float, name: str) -> bool | str:
    held = math.ceil(fraction * n)
    if held >= k and n - held >= k:
        return True
    low, high = k / n, 1 - k / n
    each = " (one of every class)" if k > 1 else ""
    if low > high:
        return f"{n} samples are too few to split into {name} and train parts of {k} samples each{each}"
    return (f"leaves {held} of {n} samples for {name} and {n - held} for the rest; each needs at least {k}{each}: "
            f"use a value in [{math.ceil(low * 1000) / 1000:g}, {math.floor(high * 1000) / 1000:g}]")


SPLIT_RULES = (
    Rule("test_fraction", "", _first_split, needs=("samples",)),
    Rule("val_fraction", "", _second_split, needs=("samples",)),
)

#: Values a generator may make (samples x features, or x pixels): 4 GB as float32. More would not fail at
#: once but be killed for memory half-way through a run, with nothing recorded.
MAX_VALUES = 10**9


def _generated_size(v: dict) -> bool | str:
    each = v["features"] or math.prod(v["image_shape"] or (1,))
    values = v["samples"] * each
    return values <= MAX_VALUES or (f"would generate {values:,} values ({v['samples']:,} samples of {each:,}); "
                                    f"at most {MAX_VALUES:,} (4 GB as float32)")


GENERATED = (Rule("n_samples", "", _generated_size, needs=("samples",)),)
CLASSIFICATION_RULES = SPLIT_RULES + (
    Rule("open_set", "needs at least 4 classes (it trains on the first half and retrieves on the rest); "
         "this dataset has {classes}", lambda v: not v["open_set"] or v["classes"] >= 4, needs=("classes",)),
)

SPLIT = (
    Param("test_fraction", 0.2, "share of samples held out for the test split", gt=0.0, lt=1.0),
    Param("val_fraction", 0.2, "share of the remaining samples used to choose the best epoch", gt=0.0, lt=1.0),
)
CLASSIFICATION = SPLIT + (
    Param("label_noise", 0.0, "fraction of train labels flipped (val and test stay clean)", ge=0.0, lt=1.0,
          short="noise"),
    Param("noise_kind", "symmetric", "symmetric: to a random other class; pairwise: to the next class",
          type="str", choices=("symmetric", "pairwise")),
    Param("imbalance", 1.0, "long-tail ratio of the smallest to the largest train class (1 = balanced)",
          gt=0.0, le=1.0, short="imb"),
    Param("open_set", False, "train on the first half of the classes, evaluate retrieval on the rest",
          type="bool", short="open"),
)
REGRESSION = SPLIT + (
    Param("outliers", 0.0, "fraction of train targets hit by heavy-tailed (Cauchy) noise", ge=0.0, lt=1.0,
          short="out"),
    Param("outlier_scale", 5.0, "scale of that noise, in target standard deviations", gt=0.0),
)
SYNTHETIC = (
    Param("n_samples", 1000, "number of samples generated", type="int", ge=20, le=10_000_000),
    Param("noise", 0.2, "standard deviation of the noise added to the features", ge=0.0),
    Param("random_state", 0, "seed of the generator (the run seed fixes the split, not the data)", type="int",
          ge=0, lt=2**32),
)


def _balanced(classes: int | None = None, features: int | None = None):
    """Facts of a generator with ``n_samples`` shared evenly by ``classes`` (or the ``classes`` parameter)."""
    def facts(p: dict) -> Facts:
        k = classes or p["classes"]
        return Facts("classification", p["n_samples"], k, p["n_samples"] // k, features or p["features"])
    return facts


_SKLEARN = "scikit-learn's bundled copy of the UCI data"

_C, _R = dict(task="classification", params=CLASSIFICATION, rules=CLASSIFICATION_RULES), dict(
    task="regression", params=REGRESSION, rules=SPLIT_RULES)
_SYNTHETIC_C = dict(task="classification", rules=CLASSIFICATION_RULES + GENERATED)


def _make_classification_limits(v: dict) -> bool | str:
    """scikit-learn's make_classification, as losszoo calls it (max(2, features // 2) informative features and
    2 redundant ones), needs classes <= 2 ** informative and informative + 2 <= features."""
    informative = max(2, v["features"] // 2)
    if informative + 2 > v["features"]:
        return f"needs at least 4 features ({informative} informative + 2 redundant), got {v['features']}"
    return v["classes"] <= 2**informative or (
        f"{v['classes']} classes need at least {2 * math.ceil(math.log2(v['classes']))} features "
        f"(classes <= 2 ** (features // 2)), got {v['features']}")


ENTRIES = [
    dataset("digits", f"{_IMPL}:digits", family="sklearn", **_C, images=True,
            facts=Facts("classification", 1797, 10, 174, 64, (1, 8, 8)),
            summary="1,797 8x8 grey images of handwritten digits, 10 classes", paper=_SKLEARN),
    dataset("iris", f"{_IMPL}:iris", family="sklearn", **_C, facts=Facts("classification", 150, 3, 50, 4),
            summary="150 flowers, 4 features, 3 classes", paper="Fisher 1936; " + _SKLEARN),
    dataset("wine", f"{_IMPL}:wine", family="sklearn", **_C, facts=Facts("classification", 178, 3, 48, 13),
            summary="178 wines, 13 features, 3 classes", paper=_SKLEARN),
    dataset("breast_cancer", f"{_IMPL}:breast_cancer", family="sklearn", **_C,
            facts=Facts("classification", 569, 2, 212, 30),
            summary="569 tumours, 30 features, 2 classes", paper=_SKLEARN),
    dataset("diabetes", f"{_IMPL}:diabetes", family="sklearn", **_R, facts=Facts("regression", 442, features=10),
            summary="442 patients, 10 features, disease progression after a year", paper="Efron et al. 2004"),
    dataset("moons", f"{_IMPL}:moons", family="synthetic", **_SYNTHETIC_C, params=CLASSIFICATION + SYNTHETIC,
            facts=_balanced(2, 2), summary="two interleaving half circles, 2 features"),
    dataset("circles", f"{_IMPL}:circles", family="synthetic", **_SYNTHETIC_C, params=CLASSIFICATION + SYNTHETIC,
            facts=_balanced(2, 2), summary="a small circle inside a large one, 2 features"),
    dataset("spirals", f"{_IMPL}:spirals", family="synthetic", **_SYNTHETIC_C,
            params=CLASSIFICATION + SYNTHETIC + (
                Param("classes", 3, "number of spiral arms", type="int", ge=2, le=1000),),
            facts=_balanced(features=2), summary="interleaved spiral arms, 2 features"),
    dataset("blobs", f"{_IMPL}:blobs", family="synthetic", **_SYNTHETIC_C,
            params=CLASSIFICATION + SYNTHETIC + (
                Param("classes", 4, "number of Gaussian blobs", type="int", ge=2, le=1000),
                Param("features", 8, "number of features", type="int", ge=1, le=100_000),
            ), facts=_balanced(), summary="isotropic Gaussian blobs"),
    dataset("classification", f"{_IMPL}:classification", family="synthetic", task="classification",
            params=CLASSIFICATION + SYNTHETIC + (
                Param("classes", 5, "number of classes", type="int", ge=2, le=1000),
                Param("features", 20, "number of features", type="int", ge=4, le=100_000),
            ), rules=CLASSIFICATION_RULES + GENERATED + (Rule("classes", "", _make_classification_limits),),
            facts=_balanced(), summary="scikit-learn's make_classification (Guyon's hypercube design)"),
    dataset("regression", f"{_IMPL}:regression", family="synthetic", task="regression",
            params=REGRESSION + SYNTHETIC, rules=SPLIT_RULES + GENERATED,
            facts=lambda p: Facts("regression", p["n_samples"], features=10),
            summary="Friedman #1: 10 features, 5 of them informative",
            paper="Friedman, Multivariate Adaptive Regression Splines, 1991"),
    dataset("outliers", f"{_IMPL}:regression", family="synthetic", task="regression",
            params=tuple(Param("outliers", 0.2, p.doc, ge=0.0, lt=1.0, short="out") if p.name == "outliers"
                         else p for p in REGRESSION + SYNTHETIC), rules=SPLIT_RULES + GENERATED,
            facts=lambda p: Facts("regression", p["n_samples"], features=10),
            summary="Friedman #1 with 20% of train targets hit by heavy-tailed noise; val and test clean"),
    dataset("shapes", "losszoo.data.shapes:shapes", family="synthetic", task="segmentation", images=True,
            params=SPLIT + (
                Param("n_samples", 1000, "number of images generated", type="int", ge=20, le=1_000_000),
                Param("size", 32, "side of the square images, in pixels", type="int", ge=8, le=1024),
                Param("shapes", 3, "objects drawn on each image (later ones cover earlier ones)", type="int", ge=1,
                      le=100),
                Param("channels", 1, "1: grey images; 3: RGB, a random colour per object", type="int",
                      choices=(1, 3)),
                Param("noise", 0.1, "standard deviation of the Gaussian pixel noise", ge=0.0),
                Param("line_width", 1.0, "width of the thin lines, in pixels", gt=0.0, short="lw"),
                Param("thin_fraction", 0.25, "chance that an object is a thin line (the other kinds share the "
                      "rest); small values make the line class rare", ge=0.0, le=1.0, short="thin"),
                Param("random_state", 0, "seed of the generator (the run seed fixes the split, not the data)",
                      type="int", ge=0, lt=2**32),
            ), rules=SPLIT_RULES + GENERATED,
            facts=lambda p: Facts("segmentation", p["n_samples"], 5, image_shape=(p["channels"], p["size"], p["size"])),
            summary="seeded synthetic images with per-pixel masks: background, circle, square, triangle, line"),
]
