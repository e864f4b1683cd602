"""A user's tables and arrays as people have them: text labels, columns to pick or
one-hot encode, parquet, the encodings Excel writes, and every fault with the
recipe key to fix. Also the plugin contract (check_source) and fingerprints."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from losszoo import DataError
from losszoo.data import sources
from losszoo.data.fingerprint import fingerprint
from losszoo.data.sources import Source, check_source
from losszoo.registry import DATASETS


def csv(tmp_path: Path, text: str | bytes, **params) -> Source:
    file = tmp_path / "table.csv"
    file.write_bytes(text if isinstance(text, bytes) else text.encode())
    params.setdefault("target", "label")
    params.setdefault("task", "classification")
    return sources.csv(path="table.csv", base_dir=tmp_path, **params)


def fails(function, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        function(*args, **kwargs)
    return info.value


PEOPLE = ("id,height,colour,label\n"
          "1,1.5,red,cat\n"
          "2,1.7,blue,dog\n"
          "3,1.6,red,bird\n"
          "4,1.8,green,dog\n")


# --- csv -----------------------------------------------------------------------------------------


def test_text_labels_become_classes_in_sorted_order(tmp_path):
    source = csv(tmp_path, PEOPLE, drop=["colour"])
    assert source.class_names == ["bird", "cat", "dog"]
    assert source.y.tolist() == [1, 2, 0, 2]
    assert source.y.dtype == np.int64 and source.x.dtype == np.float32


def test_numeric_labels_keep_their_names(tmp_path):
    source = csv(tmp_path, "a,label\n1,3\n2,7\n3,3\n")
    assert source.class_names == ["3", "7"] and source.y.tolist() == [0, 1, 0]


def test_large_numeric_labels_keep_exact_names_and_stay_apart(tmp_path):
    source = csv(tmp_path, "a,label\n1,1234567\n2,1234568\n3,1234567\n")
    assert source.class_names == ["1234567", "1234568"] and source.y.tolist() == [0, 1, 0]
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    big = 2**53
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "label": pa.array([big, big + 1, big], pa.int64())}),
                   tmp_path / "t.parquet")
    source = sources.parquet(path="t.parquet", target="label", task="classification", base_dir=tmp_path)
    assert source.class_names == [str(big), str(big + 1)] and source.y.tolist() == [0, 1, 0]


def test_features_picks_columns_in_the_order_given(tmp_path):
    source = csv(tmp_path, PEOPLE, features=["height", "id"])
    np.testing.assert_allclose(source.x, [[1.5, 1], [1.7, 2], [1.6, 3], [1.8, 4]])


def test_drop_leaves_columns_out(tmp_path):
    source = csv(tmp_path, PEOPLE, drop=["id", "colour"])
    np.testing.assert_allclose(source.x[:, 0], [1.5, 1.7, 1.6, 1.8])
    assert source.x.shape == (4, 1)


def test_categorical_columns_are_one_hot(tmp_path):
    source = csv(tmp_path, PEOPLE, features=["colour", "height"], categorical=["colour"])
    # blue, green, red (sorted), then height
    np.testing.assert_allclose(source.x, [[0, 0, 1, 1.5], [1, 0, 0, 1.7], [0, 0, 1, 1.6], [0, 1, 0, 1.8]])


def test_a_text_column_not_listed_says_categorical_or_drop(tmp_path):
    error = fails(csv, tmp_path, PEOPLE)
    message = str(error)
    assert error.key == "categorical"
    assert "'colour'" in message and "categorical:" in message and "drop:" in message
    assert "'blue'" in message  # what the column holds


def test_a_stray_word_in_a_numeric_column_names_its_line(tmp_path):
    error = fails(csv, tmp_path, "a,b,label\n1,2,0\n3,tall,1\n5,6,0\n")
    assert error.key == "path"
    assert f"{tmp_path / 'table.csv'}:3:" in str(error) and "'tall'" in str(error) and "not a number" in str(error)


@pytest.mark.parametrize("params, key, words", [
    ({"features": ["heigth"]}, "features", "did you mean 'height'"),
    ({"drop": ["colour", "nope"]}, "drop", "no column 'nope'"),
    ({"categorical": ["color"]}, "categorical", "did you mean 'colour'"),
    ({"features": ["height"], "drop": ["id"]}, "drop", "not both"),
    ({"features": ["height", "label"]}, "features", "cannot predict itself"),
    ({"drop": ["colour"], "categorical": ["label"]}, "categorical", "not a feature"),
    ({"features": ["height"], "categorical": ["colour"]}, "categorical", "not in `features:`"),
    ({"drop": ["id", "height", "colour"]}, "drop", "no feature columns"),
    ({"drop": ["colour", "colour"]}, "drop", "twice"),
])
def test_column_choices_that_cannot_work(tmp_path, params, key, words):
    error = fails(csv, tmp_path, PEOPLE, **params)
    assert error.key == key and words in str(error)


def test_utf8_bom_is_read_not_a_column_name(tmp_path):
    source = csv(tmp_path, b"\xef\xbb\xbflabel,a\n0,1\n1,2\n")
    assert source.x.tolist() == [[1], [2]]


def test_latin1_bytes_name_the_line_and_the_byte(tmp_path):
    error = fails(csv, tmp_path, "city,a,label\nParis,1,0\nZürich,2,1\n".encode("latin-1"))
    message = str(error)
    assert f"{tmp_path / 'table.csv'}:3:" in message
    assert "not UTF-8" in message and "0xfc" in message and "Latin-1" in message
    assert error.key == "path"


def test_utf16_is_named(tmp_path):
    error = fails(csv, tmp_path, "a,label\n1,0\n".encode("utf-16"))
    assert "UTF-16" in str(error)


@pytest.mark.parametrize("magic, words", [(b"PK\x03\x04", "xlsx"), (b"PAR1", "name: parquet")])
def test_a_file_that_is_not_csv_says_what_it_is(tmp_path, magic, words):
    assert words in str(fails(csv, tmp_path, magic + b"\x00\x01rest"))


def test_semicolons_and_tabs_are_read(tmp_path):
    assert csv(tmp_path, "a;b;label\n1;2;0\n3;4;1\n").x.tolist() == [[1, 2], [3, 4]]
    assert csv(tmp_path, "a\tb\tlabel\n1\t2\t0\n3\t4\t1\n").x.tolist() == [[1, 2], [3, 4]]


def test_blank_lines_are_skipped_and_lines_still_counted(tmp_path):
    error = fails(csv, tmp_path, "a,label\n1,0\n\n2,1\nx,1\n")
    assert f"{tmp_path / 'table.csv'}:5:" in str(error)


def test_a_single_class_is_named(tmp_path):
    error = fails(csv, tmp_path, "a,label\n1,yes\n2,yes\n3,yes\n")
    assert error.key == "target" and "single class" in str(error) and "'yes'" in str(error)


def test_non_integer_labels_point_at_task(tmp_path):
    error = fails(csv, tmp_path, "a,label\n1,0\n2,0.5\n")
    assert error.key == "task" and "task: regression" in str(error) and ":3:" in str(error)


def test_text_target_for_regression_points_at_task(tmp_path):
    error = fails(csv, tmp_path, PEOPLE, task="regression", drop=["colour"])
    assert error.key == "task" and "'cat'" in str(error) and "task: classification" in str(error)


def test_nan_and_missing_cells_name_their_line(tmp_path):
    assert ":3:" in str(fails(csv, tmp_path, "a,label\n1,0\nnan,1\n"))
    assert "missing a value" in str(fails(csv, tmp_path, "a,label\n1,0\n2,\n"))


def test_duplicate_column_names(tmp_path):
    assert "two columns are named 'a'" in str(fails(csv, tmp_path, "a,a,label\n1,2,0\n"))


def test_missing_target_and_path(tmp_path):
    assert fails(csv, tmp_path, PEOPLE, target="").key == "target"
    assert fails(csv, tmp_path, PEOPLE, target="lable").key == "target"
    error = fails(sources.csv, path="", target="y", task="classification", base_dir=tmp_path)
    assert "needs `path:`" in str(error)
    (tmp_path / "folder.csv").mkdir()
    assert "a folder" in str(fails(sources.csv, path="folder.csv", target="y", task="classification",
                                   base_dir=tmp_path))


# --- parquet: the same code path -----------------------------------------------------------------


def test_parquet_reads_like_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"id": [1, 2, 3, 4], "height": [1.5, 1.7, 1.6, 1.8], "colour": ["red", "blue", "red", "green"],
                      "label": ["cat", "dog", "bird", "dog"]})
    pq.write_table(table, tmp_path / "people.parquet")
    source = sources.parquet(path="people.parquet", target="label", task="classification", drop=["id"],
                             categorical=["colour"], base_dir=tmp_path)
    expected = csv(tmp_path, PEOPLE, drop=["id"], categorical=["colour"])
    np.testing.assert_array_equal(source.x, expected.x)
    assert source.y.tolist() == expected.y.tolist() and source.class_names == expected.class_names


def test_parquet_faults_name_the_row_and_the_key(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1.0, None, 3.0], "label": [0, 1, 0]}), tmp_path / "t.parquet")
    error = fails(sources.parquet, path="t.parquet", target="label", task="classification", base_dir=tmp_path)
    assert f"{tmp_path / 't.parquet'} row 2:" in str(error) and "missing a value" in str(error)
    error = fails(sources.parquet, path="t.parquet", target="lable", task="classification", base_dir=tmp_path)
    assert error.key == "target" and "did you mean 'label'" in str(error)
    pq.write_table(pa.table({"a": ["x", "y", "x"], "label": [0, 1, 0]}), tmp_path / "t.parquet")
    error = fails(sources.parquet, path="t.parquet", target="label", task="classification", base_dir=tmp_path)
    assert error.key == "categorical"
    (tmp_path / "bad.parquet").write_text("not parquet")
    assert "not a readable parquet" in str(fails(sources.parquet, path="bad.parquet", target="label",
                                                 task="classification", base_dir=tmp_path))


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    error = fails(sources.parquet, path="t.parquet", target="y", task="classification", base_dir=tmp_path)
    assert "losszoo[parquet]" in str(error) and error.key == "name"


# --- npz faults ----------------------------------------------------------------------------------


def npz(tmp_path: Path, task: str = "classification", **arrays) -> Source:
    np.savez(tmp_path / "a.npz", **arrays)
    return sources.npz(path="a.npz", task=task, base_dir=tmp_path)


Y = np.arange(10) % 2


@pytest.mark.parametrize("x, y, task, key, words", [
    (np.arange(10.0), Y, "classification", "path", "x[:, None]"),
    (np.array(["a"] * 10).reshape(10, 1), Y, "classification", "path", "not numbers"),
    (np.float32(3.0), Y, "classification", "path", "0-d"),
    (np.zeros((10, 2)), np.int64(1), "classification", "path", "0-d"),
    (np.zeros((10, 2)), np.eye(2)[Y], "classification", "path", "y.argmax(1)"),
    (np.zeros((10, 2)), np.zeros((10, 3)), "regression", "path", "one value per sample"),
    (np.zeros((10, 2)), np.where(Y, np.nan, 1.0), "classification", "path", "nan"),
    (np.zeros((10, 2)), np.where(Y, np.nan, 1.0), "regression", "path", "nan"),
    (np.zeros((10, 2)), Y * 0.5, "classification", "task", "task: regression"),
    (np.zeros((10, 2)), np.zeros(10), "classification", "path", "single class"),
    (np.zeros((10, 2)), np.array(["a", "b"] * 5), "regression", "task", "task: classification"),
    (np.zeros((10, 4, 4)), Y, "classification", "path", "channel axis"),
    (np.zeros((10, 2)), np.arange(9) % 2, "classification", "path", "must match"),
    (np.zeros((10, 0)), Y, "classification", "path", "no features"),
])
def test_npz_faults_name_the_key_to_fix(tmp_path, x, y, task, key, words):
    error = fails(npz, tmp_path, task, x=x, y=y)
    assert error.key == key and words in str(error), str(error)
    assert "a.npz" in str(error)


def test_npz_pickled_objects(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
    assert "pickled" in str(fails(sources.npz, path="a.npz", task="classification", base_dir=tmp_path))


def test_npz_string_labels_and_uint8_images(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (6, 1, 4, 4), dtype=np.uint8)
    source = npz(tmp_path, x=x, y=np.array(["b", "a", "c"] * 2))
    assert source.class_names == ["a", "b", "c"] and source.y.tolist() == [1, 0, 2, 1, 0, 2]
    assert source.x.dtype == np.uint8 and source.image_shape == (1, 4, 4)  # pixels, for the trainer to scale


# --- the plugin contract -------------------------------------------------------------------------


def good(**changes) -> Source:
    fields = dict(x=np.zeros((6, 3), np.float32), y=np.array([0, 1, 2] * 2), task="classification")
    return Source(**{**fields, **changes})


@pytest.mark.parametrize("returned, words", [
    ((np.zeros((4, 2)), np.arange(4)), "returned a tuple, not a losszoo.Dataset; return losszoo.Dataset("),
    (None, "returned a NoneType"),
    (good(task="multiclass"), "task='multiclass'"),
    (good(x=np.zeros(6)), "x[:, None]"),
    (good(x=[[0.0]] * 6), "not a numpy array"),
    (good(y=np.array([0, 1, 2, 0, 1])), "must match"),
    (good(y=np.array([0.0, 1, 2] * 2)), "y.astype(np.int64)"),
    (good(y=np.array([-1, 0, 1] * 2)), "0..K-1"),
    (good(class_names=["a", "b"]), "class_names names 2 classes"),
    (good(image_shape=(1, 2, 2)), "image_shape"),
    (good(x=np.zeros((6, 1, 2, 2)), image_shape=(2, 1, 2)), "differs"),
    (good(split=np.array([1, 2] * 3)), "some 0s"),
    (good(split=[0] * 6), "split must be an int array"),
    (good(warnings="careful"), "warnings must be a list"),
    (good(task="segmentation"), "segmentation needs x (N, C, H, W)"),
])
def test_check_source_says_what_a_plugin_returned_wrong(returned, words):
    error = fails(check_source, returned, "mine")
    assert str(error).startswith("dataset 'mine'") and words in str(error), str(error)
    assert error.key == "name"


def test_check_source_passes_a_good_one_and_fills_image_shape():
    assert check_source(good(), "mine").task == "classification"
    images = check_source(good(x=np.zeros((6, 1, 2, 2), np.uint8)), "mine")
    assert images.image_shape == (1, 2, 2)
    regression = check_source(Source(np.zeros((4, 2)), np.array([0.5, 1.5, 2, 3]), "regression"), "mine")
    assert regression.task == "regression"


@pytest.mark.parametrize("name", [e.name for e in DATASETS.entries() if e.family != "file"])
def test_every_built_in_source_keeps_the_contract(name):
    entry = DATASETS.get(name)
    check_source(entry.load()(**entry.defaults(), base_dir=None), name)


@pytest.mark.parametrize("y, task, words", [
    (np.ones((6, 3)), "multilabel", None),
    (np.ones(6), "multilabel", "(N, L)"),
    (np.full((6, 2), 0.5), "multilabel", "0 or 1"),
    (np.tile([0.1, 0.2, 0.5, 0.6], (6, 1)), "boxes", None),
    (np.tile([0.1, 0.2, 0.5], (6, 1)), "boxes", "(N, 4)"),
    (np.tile([0.5, 0.2, 0.1, 0.6], (6, 1)), "boxes", "x1 <= x2"),
])
def test_check_source_multilabel_and_boxes(y, task, words):
    source = Source(np.zeros((6, 3), np.float32), y.astype(np.float32), task)
    if words is None:
        assert check_source(source, "mine") is source
    else:
        assert words in str(fails(check_source, source, "mine"))


# --- fingerprints --------------------------------------------------------------------------------


def test_a_file_hashes_to_its_sha256(tmp_path):
    file = tmp_path / "t.csv"
    file.write_bytes(b"a,b\n1,2\n" * 100_000)
    assert fingerprint(file) == hashlib.sha256(file.read_bytes()).hexdigest()


def test_a_folder_hash_follows_names_and_bytes_not_hidden_files(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "1.png").write_bytes(b"one")
    (tmp_path / "2.png").write_bytes(b"two")
    first = fingerprint(tmp_path)
    (tmp_path / ".losszoo-cache-abc.npz").write_bytes(b"cache")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_bytes(b"x")
    assert fingerprint(tmp_path) == first
    (tmp_path / "cat" / "1.png").write_bytes(b"One")
    second = fingerprint(tmp_path)
    assert second != first
    (tmp_path / "cat" / "1.png").rename(tmp_path / "cat" / "3.png")
    assert fingerprint(tmp_path) not in (first, second)


def test_a_folder_hash_does_not_depend_on_where_it_lies(tmp_path):
    for place in ("a", "b"):
        (tmp_path / place / "x").mkdir(parents=True)
        (tmp_path / place / "x" / "f.txt").write_text("same")
    assert fingerprint(tmp_path / "a") == fingerprint(tmp_path / "b")


def test_an_edit_that_keeps_the_size_changes_the_hash(tmp_path):
    file = tmp_path / "f.bin"
    file.write_bytes(b"aaaa")
    before = fingerprint(tmp_path)
    file.write_bytes(b"bbbb")
    os.utime(file, ns=(1, 1))  # a new mtime, as any write gives
    assert fingerprint(tmp_path) != before


# --- the example plugins -------------------------------------------------------------------------


@pytest.fixture
def example_plugins(monkeypatch):
    import losszoo
    from losszoo import plugins
    from losszoo.registry import MODELS

    monkeypatch.setattr(losszoo, "Dataset", Source, raising=False)  # until losszoo/__init__.py exports it
    recipes = Path(__file__).resolve().parents[1] / "recipes"
    plugins.load_plugins(["my_dataset.py", "my_model.py"], recipes)
    yield recipes
    DATASETS.remove("bars")
    MODELS.remove("tiny_convnet")
    for name in ("my_dataset.py", "my_model.py"):
        plugins._loaded.pop(f"file {(recipes / name).resolve()}", None)


def test_the_example_plugins_keep_the_contract(example_plugins):
    torch = pytest.importorskip("torch")
    from losszoo.registry import MODELS

    entry = DATASETS.get("bars")
    source = check_source(entry.load()(**entry.defaults(), base_dir=example_plugins), "bars")
    assert source.x.dtype == np.uint8 and source.image_shape == (1, 16, 16)
    assert source.class_names == ["horizontal", "vertical", "diagonal", "anti_diagonal"]
    model = MODELS.get("tiny_convnet").load()(in_features=256, out_dim=4, image_shape=source.image_shape,
                                              **MODELS.get("tiny_convnet").defaults())
    x = torch.as_tensor(source.x[:8]).float() / 255
    assert model(x).shape == (8, 4)
    torch.testing.assert_close(model.head(model.features(x.flatten(1))), model(x))


def test_a_recipe_names_the_key_of_a_table_fault(tmp_path):
    from losszoo.errors import RecipeError
    from losszoo.recipe.load import load_recipe

    header, *rows = PEOPLE.splitlines(keepends=True)
    (tmp_path / "people.csv").write_text(header + "".join(rows * 5))  # enough of each class to split
    recipe = tmp_path / "r.yaml"
    recipe.write_text("loss: cross_entropy\ndataset:\n  name: csv\n  path: people.csv\n  target: label\n"
                      "  drop: [id]\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe)
    (problem,) = info.value.problems
    assert "dataset.categorical:" in problem and "'colour'" in problem
    recipe.write_text(recipe.read_text() + "  categorical: [colour]\n")
    assert load_recipe(recipe).runs[0].config["dataset"]["categorical"] == ["colour"]


def test_a_class_too_rare_for_one_seed_s_split_is_a_recipe_error_naming_the_seed(tmp_path):
    """Ten rows of x and two of y: seed 0's stratified splits work, seed 1's test split takes a y and leaves one
    for the val split. Found before any run (issue 11: nothing that can be checked first fails mid-grid)."""
    from losszoo.data.splits import _split
    from losszoo.errors import RecipeError
    from losszoo.recipe.load import load_recipe

    rows = [f"{i / 10},x" for i in range(10)] + ["0.05,y", "0.95,y"]
    (tmp_path / "rare.csv").write_text("a,label\n" + "\n".join(rows) + "\n")
    y = np.array([0] * 10 + [1] * 2)
    params = {"test_fraction": 0.2, "val_fraction": 0.2}
    _split(y, None, params, 0, True)  # the reference: the split a run makes
    with pytest.raises(DataError, match="val_fraction"):
        _split(y, None, params, 1, True)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("loss: cross_entropy\ndataset: {name: csv, path: rare.csv, target: label}\nseeds: [0]\n")
    assert len(load_recipe(recipe).runs) == 1
    recipe.write_text(recipe.read_text().replace("seeds: [0]", "seeds: [0, 1]"))
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe)
    (problem,) = info.value.problems
    assert "r.yaml:2 dataset.val_fraction:" in problem and "(seed 1)" in problem


def test_open_set_on_a_regression_table_is_a_recipe_error(tmp_path):
    from losszoo.errors import RecipeError
    from losszoo.recipe.load import load_recipe

    (tmp_path / "reg.csv").write_text("a,y\n" + "\n".join(f"{i},{i / 2}" for i in range(30)) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("loss: mse\ndataset: {name: csv, path: reg.csv, target: y, task: regression, open_set: true}\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe)
    (problem,) = info.value.problems
    assert "r.yaml:2 dataset:" in problem and "open_set needs a classification task" in problem


def test_npz_masks_become_classes_named_by_their_values(tmp_path):
    """0/255 masks are two classes, as an image folder's; 0/100000 must not make 100,001 (memory)."""
    x = np.zeros((4, 1, 3, 3), np.float32)
    y = np.zeros((4, 3, 3), np.int64)
    y[:, 1, 1] = 100_000
    y[0, 0, 0] = 255
    source = npz(tmp_path, "segmentation", x=x, y=y)
    assert source.class_names == ["0", "255", "100000"]
    assert source.y.shape == (4, 3, 3) and source.y.max() == 2 and source.y[0, 0, 0] == 1
    assert (source.y[:, 1, 1] == 2).all()


def test_npz_integer_images_are_read_as_8_bit_pixels(tmp_path):
    """uint16 pixels are scaled to 0..255; other integers must already be 0..255, else an error: never raw
    0..65535 values that the trainer would not scale (it scales uint8 images only)."""
    wide = np.array([0, 257, 65535, 30000], np.uint16).reshape(4, 1, 1, 1) * np.ones((1, 1, 2, 2), np.uint16)
    source = npz(tmp_path, x=wide, y=Y[:4])
    assert source.x.dtype == np.uint8 and source.x[:, 0, 0, 0].tolist() == [0, 1, 255, round(30000 / 257)]
    small = npz(tmp_path, x=np.full((4, 1, 2, 2), 200, np.int64), y=Y[:4])
    assert small.x.dtype == np.uint8 and (small.x == 200).all()
    error = fails(npz, tmp_path, x=np.full((4, 1, 2, 2), 300, np.int64), y=Y[:4])
    assert "300..300" in str(error) and "uint16" in str(error)
