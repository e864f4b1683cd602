"""Datasets: scikit-learn's bundled sets, synthetic generators and user files.
Implementations: losszoo/data/sources.py. Nothing is downloaded."""

from losszoo.catalog import Param, dataset

_IMPL = "losszoo.data.sources"

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
    Param("n_samples", 1000, "number of samples generated", type="int", ge=20),
    Param("noise", 0.2, "standard deviation of the noise added to the features", ge=0.0),
    Param("random_state", 0, "seed of the generator (the run seed fixes the split, not the data)", type="int",
          ge=0),
)
_SKLEARN = "scikit-learn's bundled copy of the UCI data"

ENTRIES = [
    dataset("digits", f"{_IMPL}:digits", family="sklearn", task="classification", params=CLASSIFICATION,
            extra={"images": True}, summary="1,797 8x8 grey images of handwritten digits, 10 classes", paper=_SKLEARN),
    dataset("iris", f"{_IMPL}:iris", family="sklearn", task="classification", params=CLASSIFICATION,
            summary="150 flowers, 4 features, 3 classes", paper="Fisher 1936; " + _SKLEARN),
    dataset("wine", f"{_IMPL}:wine", family="sklearn", task="classification", params=CLASSIFICATION,
            summary="178 wines, 13 features, 3 classes", paper=_SKLEARN),
    dataset("breast_cancer", f"{_IMPL}:breast_cancer", family="sklearn", task="classification",
            params=CLASSIFICATION, summary="569 tumours, 30 features, 2 classes", paper=_SKLEARN),
    dataset("diabetes", f"{_IMPL}:diabetes", family="sklearn", task="regression", params=REGRESSION,
            summary="442 patients, 10 features, disease progression after a year", paper="Efron et al. 2004"),
    dataset("moons", f"{_IMPL}:moons", family="synthetic", task="classification",
            params=CLASSIFICATION + SYNTHETIC, summary="two interleaving half circles, 2 features"),
    dataset("circles", f"{_IMPL}:circles", family="synthetic", task="classification",
            params=CLASSIFICATION + SYNTHETIC, summary="a small circle inside a large one, 2 features"),
    dataset("spirals", f"{_IMPL}:spirals", family="synthetic", task="classification",
            params=CLASSIFICATION + SYNTHETIC + (Param("classes", 3, "number of spiral arms", type="int", ge=2),),
            summary="interleaved spiral arms, 2 features"),
    dataset("blobs", f"{_IMPL}:blobs", family="synthetic", task="classification",
            params=CLASSIFICATION + SYNTHETIC + (
                Param("classes", 4, "number of Gaussian blobs", type="int", ge=2),
                Param("features", 8, "number of features", type="int", ge=1),
            ), summary="isotropic Gaussian blobs"),
    dataset("classification", f"{_IMPL}:classification", family="synthetic", task="classification",
            params=CLASSIFICATION + SYNTHETIC + (
                Param("classes", 5, "number of classes", type="int", ge=2),
                Param("features", 20, "number of features", type="int", ge=2),
            ), summary="scikit-learn's make_classification (Guyon's hypercube design)"),
    dataset("regression", f"{_IMPL}:regression", family="synthetic", task="regression",
            params=REGRESSION + SYNTHETIC, summary="Friedman #1: 10 features, 5 of them informative",
            paper="Friedman, Multivariate Adaptive Regression Splines, 1991"),
    dataset("outliers", f"{_IMPL}:regression", family="synthetic", task="regression",
            params=tuple(Param("outliers", 0.2, p.doc, ge=0.0, lt=1.0, short="out") if p.name == "outliers"
                         else p for p in REGRESSION + SYNTHETIC),
            summary="Friedman #1 with 20% of train targets hit by heavy-tailed noise; val and test clean"),
    dataset("shapes", "losszoo.data.shapes:shapes", family="synthetic", task="segmentation", extra={"images": True},
            params=SPLIT + (
                Param("n_samples", 1000, "number of images generated", type="int", ge=20),
                Param("size", 32, "side of the square images, in pixels", type="int", ge=8),
                Param("shapes", 3, "objects drawn on each image (later ones cover earlier ones)", type="int", ge=1),
                Param("channels", 1, "1: grey images; 3: RGB, a random colour per object", type="int",
                      choices=(1, 3)),
                Param("noise", 0.1, "standard deviation of the Gaussian pixel noise", ge=0.0),
                Param("line_width", 1.0, "width of the thin lines, in pixels", gt=0.0, short="lw"),
                Param("thin_fraction", 0.25, "chance that an object is a thin line (the other kinds share the "
                      "rest); small values make the line class rare", ge=0.0, le=1.0, short="thin"),
                Param("random_state", 0, "seed of the generator (the run seed fixes the split, not the data)",
                      type="int", ge=0),
            ),
            summary="seeded synthetic images with per-pixel masks: background, circle, square, triangle, line"),
]
