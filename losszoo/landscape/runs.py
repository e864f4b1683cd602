"""Finished runs, found from what a user types and rebuilt for measuring.

A RUN argument is a run folder, a run id (``runs/<experiment>/<id>``), or an
experiment name (all of its completed runs). A run is rebuilt exactly as the
trainer built it -- the same data split (the run's seed), the model from the
registry, the run's own training loss from its config and context -- and the
saved weights of both are loaded. Model and loss are put in eval mode.

The probe set is the same for every run: ``probe`` training samples chosen by
a generator seeded with :data:`PROBE_SEED` (all of them when the split is
smaller). Runs that share a dataset and a seed therefore share their probe
samples exactly; runs with different seeds have different splits, so their
probes are drawn the same way from different training sets.

A run folder is read as untrusted input: its files never cause an import (a
run trained with plugins needs them loaded by the caller first), checkpoints
are read with ``weights_only`` and never written, and a damaged run (a file
instead of a folder, a result.json of the wrong shape, an empty checkpoint) is
a :class:`BadRun` with the reason, which the command reports and skips.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from losszoo.data.splits import Data, Split
from losszoo.errors import LosszooError, UnknownNameError
from losszoo.landscape.surface import Surface
from losszoo.recipe.load import UNHASHED_TRAIN_KEYS
from losszoo.registry import LOSSES, MODELS
from losszoo.training.store import STATUSES, file_signature, read_result
from losszoo.training.trainer import build, load_run_data, resolve_device

PROBE_SEED = 0


# --- finding runs --------------------------------------------------------------------------------


def _run_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for e in root.iterdir() if e.is_dir() for p in e.iterdir() if p.is_dir()
                  and not p.name.startswith("."))


def find_runs(args: list[str], root: Path) -> list[Path]:
    """The run folders that ``args`` name, in order, each once; an unknown name is a LosszooError."""
    found: list[Path] = []
    for arg in args:
        path = Path(arg)
        looks_like_run = path.is_dir() and any((path / f).exists() for f in ("result.json", "checkpoint.pt",
                                                                            "config.yaml"))
        if looks_like_run or path.exists() and not path.is_dir():  # a file: finished_result says so
            folders = [path]
        elif (root / arg).is_dir() and not path.is_absolute():  # an experiment: its completed runs
            folders = [p for p in sorted((root / arg).iterdir()) if p.is_dir() and not p.name.startswith(".")
                       and (read_result(p) or {}).get("status") == "completed"]
            if not folders:
                raise LosszooError(f"experiment {arg!r} in {root} has no completed runs")
        else:
            folders = [p for p in _run_folders(root) if p.name == arg]
            if not folders:
                known = [p.name for p in _run_folders(root)]
                close = difflib.get_close_matches(arg, known, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise LosszooError(f"no run {arg!r}: not a run folder, and no run id or experiment of that name "
                                   f"in {root}{hint} (--runs-dir or $LOSSZOO_RUNS sets where runs are)")
            if len(folders) > 1:
                raise LosszooError(f"run id {arg!r} is in several experiments: "
                                   + ", ".join(str(p) for p in folders) + "; give the folder")
        for folder in folders:
            if folder.resolve() not in {f.resolve() for f in found}:
                found.append(folder)
    return found


#: ``--weights``: which saved weights of a run are measured.
WEIGHTS = {"best": "checkpoint.pt", "last": "last.pt"}
#: Checkpoints kept every K epochs during training (``train.save_every``): ``checkpoints/epoch-0005.pt``.
CHECKPOINTS = "checkpoints"


class BadRun(LosszooError):
    """A run that cannot be measured; the command skips it with this reason and goes on with the others."""

    def __init__(self, folder: Path | str, reason: str):
        super().__init__(f"run {folder}: {reason}")
        self.folder, self.reason = str(folder), reason


def finished_result(folder: Path, weights: str = "best") -> dict[str, Any]:
    """The run's result; a :class:`BadRun` unless the folder is a finished run with readable files.

    Nothing in the folder is trusted: the folder may be a file, result.json a directory or the wrong
    shape, the checkpoint empty. Every field read later is checked here, so a damaged run is one clear
    reason, not a traceback half-way through the measurements.
    """
    if not folder.is_dir():
        raise BadRun(folder, "is a file, not a run folder" if folder.exists() else "does not exist")
    result = _read_result(folder)
    if result["status"] != "completed":
        raise BadRun(folder, f"is {result['status']}, not completed; only finished runs can be measured"
                     + (f" ({result['error']})" if result.get("error") else ""))
    for key, kind in (("run_id", str), ("metrics", dict), ("config", dict), ("label", str), ("experiment", str),
                      ("landscape", dict)):
        if key in result and result[key] is not None and not isinstance(result[key], kind):
            raise BadRun(folder, f"result.json's {key!r} is a {type(result[key]).__name__}, not a "
                                 f"{'mapping' if kind is dict else kind.__name__}")
    if not all(isinstance(v, dict) for v in (result.get("metrics") or {}).values()):
        raise BadRun(folder, "result.json's 'metrics' is not a mapping of splits to metrics")
    weights_file = folder / WEIGHTS[weights]
    if not weights_file.is_file():
        raise BadRun(folder, f"has no {WEIGHTS[weights]} to measure"
                     + (" (--weights last needs a run trained with last.pt kept)" if weights == "last" else ""))
    if weights_file.stat().st_size == 0:
        raise BadRun(folder, f"{WEIGHTS[weights]} is empty")
    return result


def _read_result(folder: Path) -> dict[str, Any]:
    """result.json read and checked here, not through the store, so each problem gets its own reason."""
    path = folder / "result.json"
    if path.is_dir():
        raise BadRun(folder, "result.json is a directory")
    try:
        result = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BadRun(folder, "has not finished: no result.json (still training, or stopped)") from None
    except OSError as error:
        raise BadRun(folder, f"result.json cannot be read ({error.strerror or error})") from None
    except ValueError:
        raise BadRun(folder, "has not finished: result.json is not valid JSON (half-written or damaged)") from None
    if not isinstance(result, dict) or result.get("status") not in STATUSES or "run_id" not in result:
        raise BadRun(folder, "result.json is not a losszoo result (no run_id or a known status)")
    return result


def saved_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(epoch, file)`` of the checkpoints a run kept every K epochs, in epoch order."""
    kept = folder / CHECKPOINTS
    if not kept.is_dir():
        return []
    found = []
    for file in kept.glob("epoch-*.pt"):
        number = file.stem.removeprefix("epoch-")
        if number.isdigit() and file.is_file():
            found.append((int(number), file))
    return sorted(found)


def read_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """A checkpoint's contents, read without running any code (``weights_only``) and checked for shape;
    a :class:`BadRun` for anything else. The file is only read."""
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # empty, truncated or foreign
        raise BadRun(path.parent, f"cannot read {path.name}: {type(error).__name__}: {error}") from None
    if not isinstance(checkpoint, dict) or not all(isinstance(checkpoint.get(k), dict)
                                                   for k in ("model", "loss", "config")):
        raise BadRun(path.parent, f"{path.name} is not a losszoo checkpoint (a mapping with model, loss and config)")
    return checkpoint


def load_state(model: nn.Module, loss: nn.Module, checkpoint: dict[str, Any], path: Path) -> None:
    """Load a checkpoint's weights into a rebuilt model and loss; a :class:`BadRun` if they do not fit."""
    try:
        model.load_state_dict(checkpoint["model"])
        loss.load_state_dict(checkpoint["loss"])
    except (RuntimeError, KeyError, TypeError) as error:
        raise BadRun(path.parent, f"{path.name} does not fit the model its config builds: "
                                  f"{str(error).splitlines()[0]}") from None


# --- rebuilding a run ----------------------------------------------------------------------------


def pick(split: Split, count: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` samples of ``split`` chosen with :data:`PROBE_SEED` (all of them if fewer)."""
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(PROBE_SEED))[:count]
    return split.x[order].to(device), split.y[order].to(device)


def accuracy_of(output: torch.Tensor, target: torch.Tensor, loss: nn.Module, loss_input: str) -> torch.Tensor | None:
    """The fraction of samples (pixels) classified right, where the output says a class; else None."""
    output = output.detach()
    if loss_input == "embeddings":
        if not hasattr(loss, "class_logits"):
            return None
        output = loss.class_logits(output)
    elif loss_input not in ("logits", "pixel_logits"):
        return None
    return (output.argmax(dim=1) == target).float().mean()


@dataclass
class Run:
    """A finished run rebuilt in eval mode, with the probe batch it is measured on."""

    folder: Path
    result: dict[str, Any]
    config: dict[str, Any]
    model: nn.Module
    loss: nn.Module
    loss_input: str
    data: Data
    device: torch.device
    probe: tuple[torch.Tensor, torch.Tensor]
    weights: str = "best"
    weights_signature: tuple[int, ...] | None = None  # the weights file read (see store.file_signature)

    @property
    def run_id(self) -> str:
        return self.result["run_id"]

    def trained_again(self) -> bool:
        """Whether the weights file is another than the one this run was rebuilt from (a `train --force`)."""
        return file_signature(self.folder / WEIGHTS[self.weights]) != self.weights_signature

    @property
    def file_id(self) -> str:
        """The run in a file name: its folder's name, never result.json's run_id (which could hold a
        ``/`` and write outside the folder)."""
        return self.folder.resolve().name

    def forward_on(self, x: torch.Tensor, y: torch.Tensor, model: nn.Module | None = None,
                   loss: nn.Module | None = None):
        """A closure: (loss, accuracy) of ``model`` (default: the run's) on ``x, y``."""
        model = self.model if model is None else model
        loss = self.loss if loss is None else loss

        def forward() -> tuple[torch.Tensor, torch.Tensor | None]:
            output = model(x)
            if self.loss_input == "values":
                output = output.squeeze(-1)
            return loss(output, y), accuracy_of(output, y, loss, self.loss_input)

        return forward

    def surface(self) -> Surface:
        """The run's training loss on the probe batch, over the model's parameters (loss parameters,
        such as learnable class centres, are held fixed)."""
        return Surface([p for p in self.model.parameters() if p.requires_grad], self.forward_on(*self.probe))


def load_run(folder: Path, probe: int = 1024, device: str | torch.device = "auto", weights: str = "best") -> Run:
    """Rebuild the finished run in ``folder`` with its ``weights`` (best: checkpoint.pt, last: last.pt),
    and pick its probe batch. A :class:`BadRun` says why a run cannot be.

    Nothing named in the run's files is imported: a run trained with plugin losses or models is rebuilt
    only if those plugins were loaded first (``losszoo landscape --plugins``).
    """
    if weights not in WEIGHTS:
        raise LosszooError(f"--weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    result = finished_result(folder, weights)
    device = resolve_device(device) if isinstance(device, str) else device
    path = folder / WEIGHTS[weights]
    signature = file_signature(path)  # before reading: a file replaced meanwhile is another file
    checkpoint = read_checkpoint(path, device)
    config = checkpoint["config"]
    try:
        loss_input = LOSSES.get(config["loss"]["name"]).input
        MODELS.get(config["model"]["name"])
    except UnknownNameError as error:
        raise BadRun(folder, f"{error}; a plugin's names exist only once it is loaded (--plugins FILE|MODULE)") \
            from None
    except (KeyError, TypeError) as error:
        raise BadRun(folder, f"{path.name} has no usable config ({type(error).__name__}: {error})") from None
    try:
        data = load_run_data(config)
        model, loss = build(config, data, device)
    except LosszooError as error:
        raise BadRun(folder, str(error)) from None
    except (KeyError, TypeError, ValueError) as error:
        raise BadRun(folder, f"cannot rebuild from {path.name}'s config: {type(error).__name__}: {error}") from None
    load_state(model, loss, checkpoint, path)
    model.eval()
    loss.eval()
    return Run(folder, result, config, model, loss, loss_input, data, device, pick(data.train, probe, device),
               weights, signature)


# --- naming runs in a table ----------------------------------------------------------------------


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def headers(configs: list[dict[str, Any]]) -> list[str]:
    """A short name per run: the model and loss label, then whatever else differs between them."""
    flats = [_flat(c) for c in configs]
    where = {f"train.{k}" for k in UNHASHED_TRAIN_KEYS}  # where a run trained is not what it is
    keys = [k for k in flats[0] if k.startswith(("dataset.", "model.", "seed", "train."))
            and k != "model.name" and k not in where]
    differ = [k for k in keys if len({repr(f.get(k)) for f in flats}) > 1]
    names = []
    for config, flat in zip(configs, flats, strict=True):
        name = f"{config['model']['name']} {config.get('label', config['loss']['name'])}"
        extra = ", ".join(f"{k.removeprefix('model.')}={_text(flat.get(k))}" for k in differ)
        names.append(f"{name}\n{extra}" if extra else name)
    return names


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
