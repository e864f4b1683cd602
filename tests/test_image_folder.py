"""Image folders: the layouts, files that are not images, the predefined split,
the cache beside the data, and images that the conv models take as they come."""

import tempfile
from pathlib import Path

import numpy as np
import pytest

from losszoo import DataError
from losszoo.data import images
from losszoo.data.sources import check_source, image_folder

PIL = pytest.importorskip("PIL.Image")


def picture(file: Path, colour: tuple[int, int, int], size: tuple[int, int] = (20, 30), mode: str = "RGB") -> None:
    """A ``size`` (width, height) image of one colour with a white top-left quarter."""
    file.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size[1], size[0], 3), np.uint8) + np.array(colour, np.uint8)
    pixels[: size[1] // 2, : size[0] // 2] = 255
    PIL.fromarray(pixels).convert(mode).save(file)


def classes(root: Path, per_class: int = 4, names=("cat", "dog", "fox")) -> Path:
    colours = {"cat": (200, 0, 0), "dog": (0, 200, 0), "fox": (0, 0, 200)}
    for name in names:
        for i in range(per_class):
            picture(root / name / f"{i}.{'png' if i % 2 else 'jpg'}", colours[name])
    return root


def read(root: Path, **params):
    params.setdefault("size", [8, 8])
    params.setdefault("channels", 3)
    return image_folder(path=str(root), **params)


def fails(root: Path, **params) -> DataError:
    with pytest.raises(DataError) as info:
        read(root, **params)
    return info.value


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """The fallback cache lives in the test's own folder, never the real home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))


# --- layouts -------------------------------------------------------------------------------------


def test_one_sub_folder_per_class(tmp_path):
    source = read(classes(tmp_path / "photos"))
    assert source.x.shape == (12, 3, 8, 8) and source.x.dtype == np.uint8
    assert source.image_shape == (3, 8, 8)
    assert source.class_names == ["cat", "dog", "fox"]
    assert source.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert source.split is None and source.warnings == []
    assert source.task == "classification"
    check_source(source, "image_folder")


def test_pixels_are_resized_and_in_channel_order(tmp_path):
    picture(tmp_path / "p" / "red" / "a.png", (255, 0, 0), size=(40, 40))
    picture(tmp_path / "p" / "blue" / "a.png", (0, 0, 255), size=(40, 40))
    source = read(tmp_path / "p", size=[4, 6])
    assert source.x.shape == (2, 3, 4, 6)
    blue, red = source.x  # classes in sorted order
    assert red[:, -1, -1].tolist() == [255, 0, 0] and blue[:, -1, -1].tolist() == [0, 0, 255]
    assert (red[:, 0, 0] == 255).all()  # the white corner, still top left


def test_grey_images(tmp_path):
    source = read(classes(tmp_path / "p"), channels=1)
    assert source.x.shape == (12, 1, 8, 8) and source.image_shape == (1, 8, 8)


def test_images_of_any_mode_become_the_channels_asked(tmp_path):
    for i, mode in enumerate(["L", "RGBA", "P", "LA", "1", "CMYK"]):
        picture(tmp_path / "p" / "a" / f"{i}.{'jpg' if mode == 'CMYK' else 'png'}", (10, 20, 30), mode=mode)
        picture(tmp_path / "p" / "b" / f"{i}.png", (10, 20, 30), mode=mode if mode != "CMYK" else "RGB")
    for channels in (1, 3):
        source = read(tmp_path / "p", channels=channels)
        assert source.x.shape == (12, channels, 8, 8) and source.warnings == []


def test_nested_folders_inside_a_class_count_for_it(tmp_path):
    root = classes(tmp_path / "p", names=("cat", "dog"))
    picture(root / "cat" / "2024" / "july" / "x.png", (1, 2, 3))
    assert read(root).y.tolist().count(0) == 5


def test_corrupt_and_non_image_files_are_skipped_in_one_warning(tmp_path):
    root = classes(tmp_path / "p")
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (root / "dog" / "notes.txt").write_text("a note")
    (root / "dog" / "half.png").write_bytes((root / "dog" / "1.png").read_bytes()[:40])
    (root / "labels.csv").write_text("a,b\n")
    (root / ".DS_Store").write_bytes(b"\0\1")
    source = read(root)
    assert len(source.y) == 12
    (warning,) = source.warnings
    for name in ("cat/broken.jpg", "dog/notes.txt", "dog/half.png", "labels.csv"):
        assert name in warning
    assert ".DS_Store" not in warning and "3 not readable" in warning


def test_an_empty_class_folder_is_an_error(tmp_path):
    root = classes(tmp_path / "p")
    (root / "owl").mkdir()
    error = fails(root)
    assert "owl" in str(error) and "no files" in str(error) and error.key == "path"


def test_a_class_of_unreadable_files_is_an_error(tmp_path):
    root = classes(tmp_path / "p")
    (root / "owl").mkdir()
    (root / "owl" / "a.txt").write_text("words")
    error = fails(root)
    assert "'owl'" in str(error) and "owl/a.txt" in str(error)


@pytest.mark.parametrize("make, words", [
    (lambda root: root.mkdir(), "empty"),
    (lambda root: picture(root / "a.png", (1, 2, 3)), "sub-folder named after the class"),
    (lambda root: classes(root, names=("cat",)), "single class"),
    (lambda root: (root / "cat").mkdir(parents=True) or (root / "cat" / "a.txt").write_text("x")
     or (root / "dog").mkdir() or (root / "dog" / "b.txt").write_text("y"), "no image Pillow can read"),
])
def test_folders_without_classes_of_images(tmp_path, make, words):
    make(tmp_path / "p")
    assert words in str(fails(tmp_path / "p"))


def test_path_mistakes(tmp_path):
    assert "no such folder" in str(fails(tmp_path / "nope"))
    (tmp_path / "file.png").write_bytes(b"x")
    assert "a file, not a folder" in str(fails(tmp_path / "file.png"))
    with pytest.raises(DataError, match="needs `path:`"):
        image_folder(path="", size=[8, 8], channels=3)
    assert fails(classes(tmp_path / "p"), size=[8]).key == "size"


def test_paths_are_relative_to_the_recipe(tmp_path):
    classes(tmp_path / "project" / "photos")
    source = image_folder(path="photos", size=[8, 8], channels=3, base_dir=tmp_path / "project")
    assert len(source.y) == 12


# --- the folders' own split ----------------------------------------------------------------------


def test_train_val_test_folders_fix_the_split(tmp_path):
    root = tmp_path / "p"
    classes(root / "train", per_class=4)
    classes(root / "val", per_class=2)
    classes(root / "test", per_class=1, names=("cat", "dog"))
    source = read(root)
    assert source.class_names == ["cat", "dog", "fox"]
    assert np.bincount(source.split).tolist() == [12, 6, 2]
    test = source.split == 2
    assert source.y[test].tolist() == [0, 1]
    check_source(source, "image_folder")


def test_validation_may_be_spelt_out_and_may_be_missing(tmp_path):
    root = tmp_path / "p"
    classes(root / "train")
    classes(root / "validation", per_class=1)
    assert set(read(root).split.tolist()) == {0, 1}
    (root / "validation").rename(root / "test")
    assert set(read(root).split.tolist()) == {0, 2}


@pytest.mark.parametrize("extra, words", [
    ("cat", "holds train/ and also cat"),
    ("valid", "more than one validation folder"),
])
def test_split_folders_mixed_with_others(tmp_path, extra, words):
    root = tmp_path / "p"
    classes(root / "train")
    classes(root / "val", per_class=1)
    picture(root / extra / "x" / "a.png", (1, 2, 3))
    assert words in str(fails(root))


def test_a_class_only_in_test_is_an_error(tmp_path):
    root = tmp_path / "p"
    classes(root / "train", names=("cat", "dog"))
    classes(root / "test", per_class=1, names=("cat", "fox"))
    assert "fox is not in" in str(fails(root))


def test_split_folders_without_train(tmp_path):
    classes(tmp_path / "p" / "val")
    assert "no train/" in str(fails(tmp_path / "p"))


# --- segmentation --------------------------------------------------------------------------------


def test_images_and_masks(tmp_path):
    root = tmp_path / "scans"
    (root / "masks").mkdir(parents=True)
    for i in range(3):
        picture(root / "images" / f"{i}.jpg", (50, 60, 70))
        mask = np.zeros((30, 20), np.uint8)
        mask[:15, :10] = 255  # a binary mask saved as white: classes 0 and 1
        PIL.fromarray(mask).save(root / "masks" / f"{i}.png")
    picture(root / "images" / "lonely.png", (1, 2, 3))
    source = read(root, task="segmentation")
    assert source.task == "segmentation" and source.x.shape == (3, 3, 8, 8)
    assert source.y.shape == (3, 8, 8) and source.class_names == ["0", "255"]
    assert set(np.unique(source.y).tolist()) == {0, 1}
    assert (source.y[:, :4, :4] == 1).all() and (source.y[:, 4:, :] == 0).all()
    assert "images/lonely.png" in source.warnings[0]
    check_source(source, "image_folder")


def test_segmentation_needs_images_and_masks(tmp_path):
    classes(tmp_path / "p")
    assert "images/ and masks/" in str(fails(tmp_path / "p", task="segmentation"))


def test_colour_masks_are_refused(tmp_path):
    picture(tmp_path / "p" / "images" / "a.png", (1, 2, 3))
    picture(tmp_path / "p" / "masks" / "a.png", (200, 10, 10))
    assert "colour mask" in str(fails(tmp_path / "p", task="segmentation"))


# --- the cache -----------------------------------------------------------------------------------


def caches(folder: Path) -> list[Path]:
    return sorted(folder.glob(".losszoo-cache-*.npz"))


def test_the_second_read_comes_from_the_cache(tmp_path, monkeypatch):
    root = classes(tmp_path / "p")
    (root / "dog" / "notes.txt").write_text("a note")
    first = read(root)
    (cache,) = caches(root)
    monkeypatch.setattr(images, "_read_folder", lambda *a: pytest.fail("read the images again"))
    again = read(root)
    np.testing.assert_array_equal(again.x, first.x)
    np.testing.assert_array_equal(again.y, first.y)
    assert again.class_names == first.class_names and again.warnings == first.warnings
    assert again.image_shape == first.image_shape and again.split is None


def test_a_changed_folder_rebuilds_the_cache_and_drops_the_old_one(tmp_path):
    root = classes(tmp_path / "p")
    read(root)
    (old,) = caches(root)
    picture(root / "cat" / "new.png", (9, 9, 9))
    assert len(read(root).y) == 13
    (new,) = caches(root)
    assert new != old


def test_other_sizes_have_their_own_cache(tmp_path):
    root = classes(tmp_path / "p")
    read(root)
    read(root, size=[4, 4])
    read(root, channels=1)
    assert len(caches(root)) == 3
    assert read(root, size=[4, 4]).x.shape[-2:] == (4, 4)


def test_a_cache_keeps_the_split(tmp_path):
    root = tmp_path / "p"
    classes(root / "train")
    classes(root / "test", per_class=1)
    first = read(root)
    np.testing.assert_array_equal(read(root).split, first.split)


def test_a_read_only_folder_caches_under_the_users_cache(tmp_path, monkeypatch):
    root = classes(tmp_path / "p")
    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if Path(dir) == root:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    first = read(root)
    assert caches(root) == []
    (cache,) = caches(tmp_path / "home-cache" / "losszoo" / "images")
    monkeypatch.setattr(images, "_read_folder", lambda *a: pytest.fail("read the images again"))
    np.testing.assert_array_equal(read(root).x, first.x)


def test_no_writable_place_means_no_cache(tmp_path, monkeypatch):
    root = classes(tmp_path / "p")
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "no")))
    assert len(read(root).y) == 12


def test_a_damaged_cache_is_rebuilt(tmp_path):
    root = classes(tmp_path / "p")
    read(root)
    (cache,) = caches(root)
    cache.write_bytes(cache.read_bytes()[:100])
    assert len(read(root).y) == 12
    assert len(caches(root)) == 1


# --- the models take the images ------------------------------------------------------------------


@pytest.mark.parametrize("model", ["cnn", "resnet", "unet"])
def test_conv_models_take_the_images(tmp_path, model):
    torch = pytest.importorskip("torch")
    from losszoo.registry import MODELS

    source = read(classes(tmp_path / "p"), size=[16, 16])
    x = torch.as_tensor(source.x).float() / 255
    net = MODELS.get(model).load()(in_features=int(np.prod(source.image_shape)), out_dim=3,
                                   image_shape=source.image_shape)
    out = net(x)
    assert out.shape[:2] == (12, 3)
    if model == "unet":
        assert out.shape == (12, 3, 16, 16)


def test_16_bit_grey_images_are_scaled_not_clipped(tmp_path):
    """A 16-bit PNG (medical, scientific) holds 0..65535: it is read as 0..255 like an 8-bit one, not every
    value above 255 clipped to white."""
    for name, level in (("dark", 1000), ("bright", 30000)):
        for i in range(4):
            file = tmp_path / "photos" / name / f"{i}.png"
            file.parent.mkdir(parents=True, exist_ok=True)
            PIL.fromarray(np.full((6, 6), level, np.uint16)).save(file)
    source = read(tmp_path / "photos", size=[6, 6], channels=1)
    assert source.class_names == ["bright", "dark"]
    assert np.unique(source.x[source.y == 1]).tolist() == [round(1000 / 257)]
    assert np.unique(source.x[source.y == 0]).tolist() == [round(30000 / 257)]


# --- in a recipe ---------------------------------------------------------------------------------


def test_a_recipe_reads_the_folder_and_passes_on_the_warning(tmp_path):
    from losszoo.recipe.load import load_recipe

    root = classes(tmp_path / "photos", per_class=6)
    (root / "dog" / "notes.txt").write_text("a note")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("dataset: {name: image_folder, path: photos, size: [16, 16]}\nmodel: cnn\n"
                      "loss: cross_entropy\n")
    loaded = load_recipe(recipe)
    assert any("dog/notes.txt" in w for w in loaded.warnings)
    assert loaded.runs[0].config["dataset"]["size"] == [16, 16]


def test_a_recipe_with_an_empty_class_is_an_error_at_dataset_path(tmp_path):
    from losszoo.errors import RecipeError
    from losszoo.recipe.load import load_recipe

    (classes(tmp_path / "photos") / "owl").mkdir()
    recipe = tmp_path / "r.yaml"
    recipe.write_text("loss: cross_entropy\nmodel: cnn\ndataset:\n  name: image_folder\n  path: photos\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe)
    (problem,) = info.value.problems
    assert problem.startswith(f"{recipe}:5 dataset.path:") and "owl" in problem


@pytest.mark.parametrize("layout", ["classes", "train folder"])
def test_a_class_of_one_image_is_a_recipe_error_not_a_failed_grid(tmp_path, layout):
    """One dog among cats cannot be split stratified: found when the recipe is read, whether the folder is
    split at random or brings train/ only (test and val carved from it)."""
    from losszoo.errors import RecipeError
    from losszoo.recipe.load import load_recipe

    root = tmp_path / "photos" / ("train" if layout == "train folder" else "")
    classes(root, per_class=10, names=("cat",))
    picture(root / "dog" / "0.png", (0, 200, 0))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("dataset: {name: image_folder, path: photos}\nmodel: cnn\nloss: cross_entropy\n"
                      "seeds: [0, 1]\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe)
    (problem,) = info.value.problems
    assert problem.startswith(f"{recipe}:1 dataset.test_fraction:") and "(seed 0)" in problem, problem


def test_links_back_to_a_parent_do_not_loop_and_only_regular_files_count(tmp_path):
    root = classes(tmp_path / "photos")
    (root / "cat" / "again").symlink_to(root)  # a loop through a link
    (root / "dog" / "up").symlink_to(root.parent)
    source = read(root)  # finishes: each real folder is read once per class folder
    # cat and dog each reach the other classes through their links (a link is followed once); fox has its own 4
    assert np.bincount(source.y).tolist() == [12, 12, 4]


def test_the_file_system_root_is_refused():
    assert "root of the file system" in str(fails(Path("/")))


def test_the_cache_is_as_readable_as_the_folder(tmp_path):
    import os
    import stat

    root = classes(tmp_path / "photos")
    old = os.umask(0o022)
    try:
        read(root)
    finally:
        os.umask(old)
    (cache,) = root.glob(".losszoo-cache-*.npz")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o644
