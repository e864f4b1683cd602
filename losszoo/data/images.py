"""A folder of images as a source: read once with Pillow, resized, held in
memory as uint8, and cached next to the data so the next run starts at once.

Layouts, for ``task: classification``::

    photos/cat/001.jpg  photos/dog/002.png ...           one sub-folder per class
    photos/train/cat/...  photos/val/...  photos/test/...  a split of your own

and for ``task: segmentation`` (a mask is a single-channel image of class
indices with the same relative path and stem as its image)::

    scans/images/a.png  scans/masks/a.png ...
    scans/train/images/...  scans/train/masks/...  scans/test/...

With ``train/`` present the folders fix the split (``val/``, also spelt
``valid/`` or ``validation/``, and ``test/`` are optional; what is missing is
carved from train); without it the split is the seeded random one.

Images are resized to ``size`` (height, width) without keeping the aspect
ratio, as ``torchvision.transforms.Resize((h, w))`` does; masks with nearest
neighbour so they keep their class values. Files Pillow cannot read are skipped
and named in one warning. The cache, ``.losszoo-cache-<hash>.npz`` in the
folder (or under ``~/.cache/losszoo/images`` when the folder is read-only), is
keyed by the content hash of the folder (:func:`losszoo.data.fingerprint.fingerprint`)
and the size, channels and task: editing, adding or removing an image rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from losszoo.data.fingerprint import fingerprint, walk_files
from losszoo.data.sources import Source
from losszoo.errors import DataError

#: Bump when the cached arrays would change for the same files.
CACHE_VERSION = 2  # 2: 16-bit grey images scaled, not clipped at 255
CACHE_PREFIX = ".losszoo-cache-"
SPLIT_NAMES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}
_LISTED = 8  # file names a warning lists before "and N more"


def image_folder(path: str, size: list[int], channels: int, task: str = "classification",
                 base_dir: Path | None = None) -> Source:
    if not path:
        raise DataError("the image_folder dataset needs `path:`, the folder of images")
    folder = Path(path) if Path(path).is_absolute() or base_dir is None else base_dir / path
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.is_file() else "no such folder"
        raise DataError(f"{folder}: {what} (paths are relative to the recipe)")
    if folder.resolve() == Path(folder.resolve().anchor):
        raise DataError(f"{folder}: is the root of the file system, not a folder of images")
    if len(size) != 2:
        raise DataError(f"size must be [height, width], got {list(size)}", "size")
    shape = (int(size[0]), int(size[1]))
    digest = fingerprint(folder)
    params = hashlib.sha256(f"{CACHE_VERSION}|{shape}|{channels}|{task}".encode()).hexdigest()[:8]
    for cache in _cache_files(folder, digest, params):
        source = _read_cache(cache)
        if source is not None:
            return source
    source = _read_folder(folder, shape, channels, task)
    for cache in _cache_files(folder, digest, params):
        if _write_cache(cache, source):
            break
    return source


# --- the layout ----------------------------------------------------------------------------------


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _files_under(folder: Path) -> list[Path]:
    return [Path(full) for _, full, _ in walk_files(folder)]


def _parts(folder: Path) -> list[tuple[int | None, Path]]:
    """The folders to read, each with its split (0 train, 1 val, 2 test), or None for one random-split whole."""
    dirs = {d.name: d for d in _visible(folder) if d.is_dir()}
    named = [n for n in dirs if n in SPLIT_NAMES]
    if "train" not in dirs:
        if named:
            raise DataError(f"{folder}: has {'/ '.join(named)}/ but no train/; add train/ or drop the split folders")
        return [(None, folder)]
    others = sorted(set(dirs) - set(SPLIT_NAMES))
    if others:
        raise DataError(f"{folder}: holds train/ and also {', '.join(others)}; with a split of your own, every "
                        "class folder goes inside train/, val/ and test/")
    codes = [SPLIT_NAMES[n] for n in named]
    if len(set(codes)) != len(codes):
        raise DataError(f"{folder}: has more than one validation folder ({', '.join(named)}); keep one")
    return sorted((SPLIT_NAMES[n], dirs[n]) for n in named)


def _class_files(part: Path, loose: list[Path]) -> dict[str, list[Path]]:
    children = _visible(part)
    dirs = [d for d in children if d.is_dir()]
    if not dirs:
        if any(f.is_file() for f in children):
            raise DataError(f"{part}: the images lie directly in the folder; put each class's images in a "
                            f"sub-folder named after the class ({part}/cat/1.png, {part}/dog/2.png)")
        raise DataError(f"{part}: the folder is empty; it needs one sub-folder of images per class")
    loose += [f for f in children if f.is_file()]
    classes = {d.name: _files_under(d) for d in dirs}
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise DataError(f"{part}: class folder{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                        f"{'hold' if len(empty) > 1 else 'holds'} no files; add images or remove the folder")
    return classes


def _mask_pairs(part: Path, unmatched: list[Path]) -> list[tuple[Path, Path]]:
    images, masks = part / "images", part / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise DataError(f"{part}: segmentation needs sub-folders images/ and masks/ (a mask per image, same name)")
    by_stem = {f.relative_to(masks).with_suffix(""): f for f in _files_under(masks)}
    pairs = []
    for image in _files_under(images):
        mask = by_stem.pop(image.relative_to(images).with_suffix(""), None)
        if mask is None:
            unmatched.append(image)
        else:
            pairs.append((image, mask))
    unmatched += by_stem.values()
    if not pairs:
        raise DataError(f"{part}: no image in images/ has a mask of the same name in masks/")
    return pairs


# --- decoding ------------------------------------------------------------------------------------


def _image(file: Path, shape: tuple[int, int], mode: str) -> np.ndarray | None:
    """(H, W) or (H, W, 3) uint8, or None when Pillow cannot read the file."""
    from PIL import Image, ImageOps

    try:
        with Image.open(file) as img:
            img.draft(mode, (shape[1], shape[0]))  # JPEG: decode at a reduced scale, much faster for photos
            img = ImageOps.exif_transpose(img)  # phone photos are stored sideways with an orientation tag
            if img.mode in ("P", "PA", "LA", "RGBA") and mode == "RGB":
                img = img.convert("RGBA")  # a palette's transparency survives; then alpha is dropped
            if img.mode.startswith("I"):  # 16-bit grey (I;16, or I as Pillow may open it): 0..65535 to 0..255
                wide = np.asarray(img, dtype=np.float64)  # (Pillow's own convert would clip at 255)
                img = Image.fromarray(np.round(np.clip(wide, 0, 65535) / 257).astype(np.uint8), "L")
            img = img.convert(mode).resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
            return np.asarray(img)
    except Exception:  # Pillow's plugins raise assorted errors on broken files; any means "not an image"
        return None


def _mask(file: Path, shape: tuple[int, int]) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(file) as img:
            if img.mode in ("RGB", "RGBA"):
                rgb = np.asarray(img.convert("RGB"))
                if not (rgb[..., :1] == rgb).all():
                    raise DataError(f"{file}: a colour mask; save masks as single-channel images whose pixel "
                                    "values are the class indices (mode L or P)")
                img = Image.fromarray(rgb[..., 0])
            elif img.mode == "LA":
                img = img.convert("L")
            mask = np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.NEAREST))
            return mask.astype(np.int64) if mask.ndim == 2 else None
    except DataError:
        raise
    except Exception:
        return None


def _decode_all(function, items: list) -> list:
    # Pillow releases the GIL while it decodes and resizes: threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(function, items))


def _class_items(parts: list[tuple[int | None, Path]], loose: list[Path]) -> tuple[list[tuple], list[str]]:
    """``(split, image file, label)`` of every file in the class folders, and the class names."""
    per_part = [(code, part, _class_files(part, loose)) for code, part in parts]
    names = sorted(per_part[0][2])
    for _, part, classes in per_part[1:]:
        extra = sorted(set(classes) - set(names))
        if extra:
            raise DataError(f"{part}: class folder{'s' if len(extra) > 1 else ''} {', '.join(extra)} "
                            f"{'are' if len(extra) > 1 else 'is'} not in {per_part[0][1]}; every class "
                            "needs training images")
    items = [(code, file, names.index(name))
             for code, _, classes in per_part for name in sorted(classes) for file in classes[name]]
    return items, names


def _read_folder(folder: Path, shape: tuple[int, int], channels: int, task: str) -> Source:
    parts = _parts(folder)
    skipped: list[Path] = []
    loose: list[Path] = []
    if task == "segmentation":  # items: (split, image file, mask file)
        items = [(code, *pair) for code, part in parts for pair in _mask_pairs(part, skipped)]
    else:  # items: (split, image file, label)
        items, names = _class_items(parts, loose)
    mode = "L" if channels == 1 else "RGB"
    images = _decode_all(lambda item: _image(item[1], shape, mode), items)
    targets = (_decode_all(lambda item: _mask(item[2], shape), items) if task == "segmentation"
               else [item[2] for item in items])
    ok = [i for i in range(len(items)) if images[i] is not None and targets[i] is not None]
    skipped += [items[i][1] if images[i] is None else items[i][2] for i in range(len(items))
                if images[i] is None or targets[i] is None]
    warnings = _skipped_warning(folder, skipped, loose, task)
    said = " " + warnings[0] if warnings else ""
    if not ok:
        raise DataError(f"{folder}: holds no image Pillow can read.{said}")

    x = np.stack([images[i].reshape(*shape, channels).transpose(2, 0, 1) for i in ok])
    split = np.array([items[i][0] for i in ok], dtype=np.int64) if parts[0][0] is not None else None
    if task == "segmentation":  # every distinct mask value is a class: 0/255 masks are classes 0 and 1
        values, y = np.unique(np.stack([targets[i] for i in ok]), return_inverse=True)
        y, names = y.reshape(len(ok), *shape).astype(np.int64), [str(v) for v in values]
    else:
        y = np.array([targets[i] for i in ok], dtype=np.int64)
        unread = [name for c, name in enumerate(names) if not (y == c).any()]
        if unread:
            raise DataError(f"{folder}: class folder {unread[0]!r} holds no image Pillow can read.{said}")
        if len(names) < 2:
            raise DataError(f"{folder}: has a single class folder ({names[0]!r}); classification needs at least "
                            "two, one sub-folder per class")
    return Source(x, y, task, image_shape=(channels, *shape), class_names=names, split=split, warnings=warnings)


def _skipped_warning(folder: Path, unreadable: list[Path], loose: list[Path], task: str) -> list[str]:
    def names(files: list[Path]) -> str:
        shown = ", ".join(str(f.relative_to(folder)) for f in files[:_LISTED])
        return shown + (f" and {len(files) - _LISTED} more" if len(files) > _LISTED else "")

    parts = []
    if unreadable:
        what = "not readable as images" + (", or without their image or mask" if task == "segmentation" else "")
        parts.append(f"{len(unreadable)} {what} ({names(unreadable)})")
    if loose:
        parts.append(f"{len(loose)} outside the class folders ({names(loose)})")
    return [f"{folder}: skipped " + "; ".join(parts)] if parts else []


# --- the cache -----------------------------------------------------------------------------------


def _cache_files(folder: Path, digest: str, params: str) -> list[Path]:
    """Where the cache may live: in the folder, else under the user's cache directory."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "losszoo" / "images"
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]
    return [folder / f"{CACHE_PREFIX}{digest[:16]}-{params}.npz",
            home / f"{CACHE_PREFIX}{where}-{digest[:16]}-{params}.npz"]


def _read_cache(file: Path) -> Source | None:
    try:
        with np.load(file, allow_pickle=False) as saved:
            split = saved["split"] if saved["has_split"] else None
            x = saved["x"]
            return Source(x, saved["y"], str(saved["task"]), image_shape=tuple(x.shape[1:]),
                          class_names=[str(c) for c in saved["class_names"]], split=split,
                          warnings=[str(w) for w in saved["warnings"]])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # absent, partial, older: rebuild
        return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_cache(file: Path, source: Source) -> bool:
    """Write ``file`` atomically (a temporary file, then a rename); False when the place is not writable."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".losszoo-tmp-", suffix=".npz", dir=file.parent)
        os.fchmod(handle, 0o666 & ~_umask())  # readable as the folder's other files are, not private
    except OSError:
        return False
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, x=source.x, y=source.y, task=np.array(source.task), has_split=source.split is not None,
                     split=source.split if source.split is not None else np.zeros(0, np.int64),
                     class_names=np.array(source.class_names or [], dtype=str),
                     warnings=np.array(source.warnings, dtype=str))
        os.replace(temporary, file)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        return False
    # Caches of this folder's earlier contents would only fill the disk; other sizes of the same files stay.
    prefix, digest, _ = file.name.rsplit("-", 2)
    for old in file.parent.glob(f"{prefix}-*-*.npz"):
        old_prefix, old_digest, _ = old.name.rsplit("-", 2)
        if old_prefix == prefix and old_digest != digest:
            old.unlink(missing_ok=True)
    return True
