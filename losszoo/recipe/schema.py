"""The fixed part of a recipe, ``train:``, as strict pydantic models: unknown
keys and wrong types are errors, nothing is converted silently."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from losszoo.registry import Tune

#: torch threads one run may ask for; far more than a machine has crashes torch itself.
MAX_THREADS = 256
_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class _Strict(BaseModel):
    model_config = _STRICT

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, value: Any) -> Any:
        """A bare string is shorthand for ``{name: ...}``."""
        return {"name": value} if isinstance(value, str) else value


#: The learning rate's range when ``tune:`` gives no space (every loss is tuned with it).
LR_TUNE = Tune(1e-4, 1e-2, log=True)


class Optimizer(_Strict):
    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9  # sgd only


class Scheduler(_Strict):
    name: Literal["none", "cosine", "step"] = "none"
    step_size: Annotated[int, Field(ge=1)] = 10  # step: epochs between decays
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1  # step: decay factor


class Train(BaseModel):
    model_config = _STRICT

    epochs: Annotated[int, Field(ge=1, le=100_000)] = 30
    batch_size: Annotated[int, Field(ge=1, le=10_000_000)] = 128
    optimizer: Optimizer = Optimizer()
    scheduler: Scheduler = Scheduler(name="cosine")
    grad_clip: Annotated[float, Field(gt=0)] | None = None  # max gradient norm
    patience: Annotated[int, Field(ge=1, le=100_000)] | None = None  # early stopping: epochs without a better val
    device: str = "auto"
    threads: Annotated[int, Field(ge=1, le=MAX_THREADS)] = 1  # torch CPU threads per run: one is fastest here
    m_per_class: Annotated[int, Field(ge=2, le=100_000)] = 4  # samples of one class per batch (pair losses)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast; fp16 on a GPU with a gradient scaler
    save_every: Annotated[int, Field(ge=1, le=100_000)] | None = None  # keep checkpoints/epoch-K.pt every K epochs
    log: list[Literal["tensorboard", "mlflow"]] = []  # trackers each run logs to (not part of its identity)
    # runs trained together as one batch of weights: auto (up to 16 that fit), off, or at most N
    stack: Literal["auto", "off"] | Annotated[int, Field(ge=1, le=4096)] = "auto"

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, got {value!r}")
        return value

