"""Start-up: the commands that must not import torch answer in under 0.5 s.

Times `losszoo --help`, `losszoo list`, `losszoo show arcface` and
`losszoo train RECIPE --dry-run` in fresh processes, and `python -c "import
torch"` in the same run as the scale they avoid. Prints each median and its
ratio to the torch import.

    python benchmarks/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "losszoo.cli"]
COMMANDS = {
    "losszoo --help": [*CLI, "--help"],
    "losszoo list": [*CLI, "list"],
    "losszoo show arcface": [*CLI, "show", "arcface"],
    "losszoo train --dry-run": [*CLI, "train", str(ROOT / "recipes" / "digits-margin.yaml"), "--dry-run"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    medians = {name: statistics.median(timed(cmd) for _ in range(args.repeats)) for name, cmd in COMMANDS.items()}
    torch_time = medians.pop("python -c 'import torch'")
    print(f"python -c 'import torch'  {torch_time:.3f} s (the cost avoided)")
    for name, seconds in medians.items():
        verdict = "ok" if seconds < 0.5 else "OVER the 0.5 s goal"
        print(f"{name:26s}{seconds:.3f} s  ratio to torch import {seconds / torch_time:.2f}  {verdict}")


if __name__ == "__main__":
    main()
