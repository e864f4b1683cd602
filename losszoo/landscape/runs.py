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
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from losszoo.data.splits import Data, Split
from losszoo.errors import LosszooError
from losszoo.landscape.surface import Surface
from losszoo.recipe.load import UNHASHED_TRAIN_KEYS
from losszoo.registry import LOSSES
from losszoo.training.store import read_result
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
        if path.is_dir() and any((path / f).exists() for f in ("result.json", "checkpoint.pt", "config.yaml")):
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


def finished_result(folder: Path) -> dict[str, Any]:
    """The run's result; a LosszooError unless it completed and kept its checkpoint."""
    result = read_result(folder)
    if result is None:
        raise LosszooError(f"run {folder} has not finished: no readable result.json (still training, or stopped)")
    if result["status"] != "completed":
        raise LosszooError(f"run {folder} is {result['status']}, not completed; only finished runs can be measured"
                           + (f" ({result['error']})" if result.get("error") else ""))
    if not (folder / "checkpoint.pt").is_file():
        raise LosszooError(f"run {folder} has no checkpoint.pt to measure")
    return result


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

    @property
    def run_id(self) -> str:
        return self.result["run_id"]

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


def load_run(folder: Path, probe: int = 1024, device: str | torch.device = "auto") -> Run:
    """Rebuild the finished run in ``folder`` with its weights, and pick its probe batch."""
    result = finished_result(folder)
    from losszoo.plugins import load_plugin

    for spec in (result.get("config") or {}).get("plugins") or []:  # a plugin loss must exist to be rebuilt
        load_plugin(spec)
    device = resolve_device(device) if isinstance(device, str) else device
    try:
        checkpoint = torch.load(folder / "checkpoint.pt", map_location=device, weights_only=True)
        config = checkpoint["config"]
    except Exception as error:  # a truncated or foreign file
        raise LosszooError(f"cannot read {folder / 'checkpoint.pt'}: {error}") from None
    data = load_run_data(config)
    model, loss = build(config, data, device)
    loss_input = LOSSES.get(config["loss"]["name"]).input
    model.load_state_dict(checkpoint["model"])
    loss.load_state_dict(checkpoint["loss"])
    model.eval()
    loss.eval()
    return Run(folder, result, config, model, loss, loss_input, data, device, pick(data.train, probe, device))


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
