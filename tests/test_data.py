"""Datasets: the seeded stratified split, the train-only modifiers (label
noise, long-tail imbalance, open set) and user files with clear errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from losszoo import DataError
from losszoo.data.splits import load_data
from losszoo.registry import DATASETS


def params(name: str, **given) -> dict:
    return DATASETS.get(name).resolve(given)


def load(name: str, seed: int = 0, base_dir: Path | None = None, **given):
    return load_data(name, params(name, **given), seed, base_dir=base_dir)


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def digits_source():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data / 16.0, data.target


# --- splits --------------------------------------------------------------------------------------


def test_split_sizes(digits):
    n = 1797
    n_test = len(digits.test)
    n_val = len(digits.val)
    assert len(digits.train) + n_val + n_test == n
    assert n_test == pytest.approx(0.2 * n, abs=1)
    assert n_val == pytest.approx(0.2 * (n - n_test), abs=1)
    assert digits.num_classes == 10
    assert digits.in_features == 64
    assert digits.task == "classification"
    assert digits.train.y.dtype == torch.int64 and digits.train.x.dtype == torch.float32


def test_split_fractions_are_honoured():
    data = load("iris", test_fraction=0.4, val_fraction=0.5)
    assert (len(data.train), len(data.val), len(data.test)) == (45, 45, 60)


def test_splits_are_stratified(digits, digits_source):
    overall = np.bincount(digits_source[1], minlength=10) / len(digits_source[1])
    for split in (digits.train, digits.val, digits.test):
        share = np.bincount(split.y.numpy(), minlength=10) / len(split)
        # Stratified: every class within about one sample of its overall share.
        assert np.abs(share - overall).max() * len(split) <= 1.0 + 1e-9


def test_splits_do_not_overlap_and_cover_the_data(digits, digits_source):
    # digits are images, so they are not standardised: rows can be matched back to the source.
    rows = [tuple(r) for s in (digits.train, digits.val, digits.test) for r in s.x.numpy().round(6)]
    source = sorted(tuple(r) for r in digits_source[0].astype(np.float32).round(6))
    assert sorted(rows) == source


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = load("iris", seed=0), load("iris", seed=0), load("iris", seed=1)
    for split in ("train", "val", "test"):
        torch.testing.assert_close(getattr(a, split).x, getattr(b, split).x)
        assert torch.equal(getattr(a, split).y, getattr(b, split).y)
    assert not torch.equal(a.test.x, c.test.x)


def test_features_are_standardised_on_train():
    data = load("wine")
    torch.testing.assert_close(data.train.x.mean(0), torch.zeros(13), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.train.x.std(0, unbiased=False), torch.ones(13), atol=1e-4, rtol=0)
    assert data.val.x.mean(0).abs().max() > 1e-3  # val is scaled with train's statistics, not its own


def test_synthetic_sizes():
    data = load("moons", n_samples=200)
    assert len(data.train) + len(data.val) + len(data.test) == 200
    assert data.num_classes == 2 and data.in_features == 2


def test_regression_targets_are_standardised_and_remembered():
    data = load("diabetes")
    assert data.task == "regression" and data.num_classes is None
    assert data.train.y.dtype == torch.float32
    assert float(data.train.y.mean()) == pytest.approx(0.0, abs=1e-5)
    assert 100 < data.target_mean < 200 and 50 < data.target_std < 100  # diabetes progression, in its units


# --- modifiers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symmetric", "pairwise"])
@pytest.mark.parametrize("fraction", [0.1, 0.4])
def test_label_noise_flips_train_labels_only(digits, kind, fraction):
    noisy = load("digits", label_noise=fraction, noise_kind=kind)
    flipped = noisy.train.y != digits.train.y
    assert float(flipped.float().mean()) == pytest.approx(fraction, abs=0.01)
    torch.testing.assert_close(noisy.train.x, digits.train.x)
    assert torch.equal(noisy.val.y, digits.val.y)
    assert torch.equal(noisy.test.y, digits.test.y)
    if kind == "pairwise":
        assert torch.equal(noisy.train.y[flipped], (digits.train.y[flipped] + 1) % 10)
    assert int(noisy.train.y.min()) >= 0 and int(noisy.train.y.max()) < 10


def test_label_noise_is_fixed_by_the_seed():
    a = load("digits", seed=0, label_noise=0.3)
    b = load("digits", seed=0, label_noise=0.3)
    c = load("digits", seed=1, label_noise=0.3)
    assert torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.train.y, c.train.y)


@pytest.mark.parametrize("ratio", [0.1, 0.25])
def test_imbalance_gives_the_long_tail_ratio(digits, ratio):
    data = load("digits", imbalance=ratio)
    counts = np.bincount(data.train.y.numpy(), minlength=10)
    assert data.class_counts == counts.tolist()
    assert counts.min() / counts.max() == pytest.approx(ratio, rel=0.15)
    assert counts.max() >= max(digits.class_counts) - 5  # the head class keeps (about) all its samples
    assert len(data.train) < len(digits.train)
    # Only train shrinks: val and test stay balanced and identical.
    assert torch.equal(data.val.y, digits.val.y) and torch.equal(data.test.y, digits.test.y)


def test_balanced_counts_without_imbalance(digits):
    counts = np.array(digits.class_counts)
    assert counts.sum() == len(digits.train)
    assert counts.min() / counts.max() > 0.9


def test_open_set_puts_unseen_classes_in_test(digits_source):
    x, y = digits_source
    data = load("digits", open_set=True)
    assert data.open_set
    assert data.num_classes == 5
    assert set(data.train.y.unique().tolist()) <= set(range(5))
    assert set(data.val.y.unique().tolist()) <= set(range(5))
    unseen = y >= 5
    assert len(data.test) == int(unseen.sum())
    unseen_rows = {tuple(r) for r in x[unseen].astype(np.float32).round(6)}
    seen_rows = {tuple(r) for r in x[~unseen].astype(np.float32).round(6)}
    test_rows = {tuple(r) for r in data.test.x.numpy().round(6)}
    assert test_rows <= unseen_rows
    assert not (test_rows & seen_rows - unseen_rows)
    train_rows = {tuple(r) for r in data.train.x.numpy().round(6)}
    assert train_rows <= seen_rows
    assert len(data.test.y.unique()) == 5


def test_open_set_needs_enough_classes():
    with pytest.raises(DataError, match="open_set"):
        load("iris", open_set=True)


# --- user files ----------------------------------------------------------------------------------


def _csv(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _table(n: int = 40, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = ["height,weight,label"]
    for i in range(n):
        lines.append(f"{rng.normal():.4f},{rng.normal():.4f},{i % 2}")
    return "\n".join(lines) + "\n"


def test_csv_loads(tmp_path):
    _csv(tmp_path, _table())
    data = load("csv", base_dir=tmp_path, path="table.csv", target="label")
    assert data.num_classes == 2 and data.in_features == 2
    assert len(data.train) + len(data.val) + len(data.test) == 40


def test_csv_regression(tmp_path):
    _csv(tmp_path, "a,b,y\n" + "".join(f"{i},{i % 3},{2.5 * i}\n" for i in range(30)))
    data = load("csv", base_dir=tmp_path, path="table.csv", target="y", task="regression")
    assert data.task == "regression" and data.in_features == 2
    assert data.target_mean == pytest.approx(float(np.mean(2.5 * np.arange(30))), rel=0.3)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        load("csv", base_dir=tmp_path, path="nope.csv", target="label")
    assert "nope.csv" in str(info.value) and "no such file" in str(info.value)


def test_csv_empty_file(tmp_path):
    path = _csv(tmp_path, "")
    with pytest.raises(DataError) as info:
        load("csv", base_dir=tmp_path, path="table.csv", target="label")
    assert str(path) in str(info.value) and "empty" in str(info.value)


def test_csv_header_only(tmp_path):
    path = _csv(tmp_path, "a,b,label\n")
    with pytest.raises(DataError) as info:
        load("csv", base_dir=tmp_path, path="table.csv", target="label")
    assert str(path) in str(info.value) and "no rows" in str(info.value)


def test_csv_missing_target_column_suggests_one(tmp_path):
    path = _csv(tmp_path, _table())
    with pytest.raises(DataError) as info:
        load("csv", base_dir=tmp_path, path="table.csv", target="lable")
    message = str(info.value)
    assert str(path) in message
    assert "no column 'lable'" in message and "did you mean 'label'" in message
    assert "height" in message  # the columns it has


def test_csv_non_numeric_cell_names_line_and_column(tmp_path):
    path = _csv(tmp_path, "a,b,label\n1,2,0\n3,tall,1\n5,6,0\n")
    with pytest.raises(DataError) as info:
        load("csv", base_dir=tmp_path, path="table.csv", target="label")
    message = str(info.value)
    assert f"{path}:3" in message
    assert "'b'" in message and "'tall'" in message and "not a number" in message


def test_csv_missing_value_names_line_and_column(tmp_path):
    path = _csv(tmp_path, "a,b,label\n1,2,0\n3,4,1\n5,,0\n")
    with pytest.raises(DataError) as info:
        load("csv", base_dir=tmp_path, path="table.csv", target="label")
    message = str(info.value)
    assert f"{path}:4" in message and "'b'" in message and "missing a value" in message


def test_csv_ragged_row(tmp_path):
    path = _csv(tmp_path, "a,b,label\n1,2,0\n3,4\n")
    with pytest.raises(DataError, match=f"{path}:3"):
        load("csv", base_dir=tmp_path, path="table.csv", target="label")


def test_csv_non_integer_classification_target(tmp_path):
    path = _csv(tmp_path, "a,y\n1,0.5\n2,1.5\n3,0.5\n")
    with pytest.raises(DataError) as info:
        load("csv", base_dir=tmp_path, path="table.csv", target="y")
    assert str(path) in str(info.value) and "task: regression" in str(info.value)


def test_npz_loads_features(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = np.repeat(np.array([3, 7, 9]), 20)  # labels need not start at 0
    np.savez(tmp_path / "arrays.npz", x=x, y=y)
    data = load("npz", base_dir=tmp_path, path="arrays.npz")
    assert data.num_classes == 3 and data.in_features == 5
    assert len(data.train) + len(data.val) + len(data.test) == 60
    assert set(data.train.y.unique().tolist()) == {0, 1, 2}


def test_npz_loads_images(tmp_path):
    x = np.random.default_rng(0).random((40, 1, 4, 4)).astype(np.float32)
    y = np.arange(40) % 2
    np.savez(tmp_path / "images.npz", x=x, y=y)
    data = load("npz", base_dir=tmp_path, path="images.npz")
    assert data.image_shape == (1, 4, 4) and data.in_features == 16


def test_npz_without_the_right_arrays(tmp_path):
    np.savez(tmp_path / "bad.npz", features=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(DataError) as info:
        load("npz", base_dir=tmp_path, path="bad.npz")
    assert "bad.npz" in str(info.value) and "x and y" in str(info.value)


def test_npz_not_an_npz(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match="text.npz"):
        load("npz", base_dir=tmp_path, path="text.npz")
