"""An image folder of 10,000 64x64 images: the first load (decode, resize, write the cache)
and the second (the cache), which must take under 2 s.

    python benchmarks/bench_image_folder.py [--images 10000] [--format png|jpg]

The images are written by the benchmark into a temporary folder: 10 classes of
smooth colour gradients with noise, so the files have the size of real small
photos (about 3 KB as JPEG, 9 KB as PNG). The cached time includes the content
hash of every file, which is how the cache knows the folder has not changed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GOAL_CACHED_S = 2.0


def write_folder(root: Path, images: int, suffix: str, side: int = 64, classes: int = 10) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    for i in range(images):
        folder = root / f"class_{i % classes}"
        folder.mkdir(exist_ok=True)
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        pixels = colour * ramp[:, None, None] * ramp[None, :, None] + rng.normal(0, 12, (side, side, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:05d}.{suffix}")


def timed(root: Path) -> tuple[float, object]:
    from losszoo.data import fingerprint
    from losszoo.data.sources import image_folder

    fingerprint._memo.clear()  # time what a fresh process does: hash every file
    started = time.perf_counter()
    source = image_folder(path=str(root), size=[64, 64], channels=3)
    return time.perf_counter() - started, source


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--format", choices=("png", "jpg"), default="png")
    args = parser.parse_args()
    from losszoo.data.fingerprint import fingerprint

    root = Path(tempfile.mkdtemp(prefix="losszoo-bench-images-"))
    try:
        started = time.perf_counter()
        write_folder(root, args.images, args.format)
        size_mb = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 1e6
        print(f"wrote {args.images} {args.format} images ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        fingerprint(root)
        print(f"fingerprint: {time.perf_counter() - started:.2f} s")
        first, source = timed(root)
        cached, again = timed(root)
        assert (again.x == source.x).all() and (again.y == source.y).all()
        print(f"images {source.x.shape} {source.x.dtype}, {source.x.nbytes / 1e6:.0f} MB in memory")
        print(f"first load {first:.2f} s, cached {cached:.2f} s: ratio {first / cached:.1f}x "
              f"(goal cached < {GOAL_CACHED_S:g} s)")
        return 0 if cached < GOAL_CACHED_S else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
