"""Schema of the `train` section. Executed by specc.train; validated here, torch-free."""
from __future__ import annotations

import re
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


# ---- data ----------------------------------------------------------------------------
class Normalize(Section):
    """Per-feature normalisation of float inputs: fixed mean/std, or `standard` (fit on the train split)."""

    kind: Literal["standard", "fixed", "scale"] = "standard"
    mean: Optional[float] = None
    std: Optional[float] = None
    scale: Optional[float] = None  # for kind = scale: x * scale (e.g. 1/16 for digits)


class DataCommon(Section):
    val_fraction: Fraction = 0.2
    seed: int = 0
    shuffle: bool = True
    workers: Annotated[int, Field(ge=0, le=64)] = 0
    normalize: Optional[Normalize] = None


class DigitsData(DataCommon):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, offline)."""

    kind: Literal["digits"]
    input: Optional[str] = None  # model input receiving the images; default: the only input
    target: Optional[str] = None  # target receiving the labels; default: the only target


class SyntheticData(DataCommon):
    """Random tensors shaped from the model's inputs and the targets (smoke tests)."""

    kind: Literal["synthetic"]
    samples: Annotated[int, Field(ge=1, le=10_000_000)] = 256
    classes: Annotated[int, Field(ge=1)] = 10  # integer targets are drawn from range(classes)
    dims: dict[str, int] = {}  # sizes for symbolic dims other than N (e.g. T = 32)


class ArrayData(DataCommon):
    """`npz`: one file, arrays by key; `npy`: one file per array. Maps model inputs/targets to arrays."""

    kind: Literal["npz", "npy"]
    path: Optional[str] = None  # the .npz file (npz) or a folder holding NAME.npy files (npy)
    inputs: dict[str, str] = {}  # model input -> array key / .npy path
    targets: dict[str, str] = {}
    val_path: Optional[str] = None


class CsvData(DataCommon):
    """A CSV file with a header row; columns mapped onto inputs (several columns each) and targets."""

    kind: Literal["csv"]
    path: str
    inputs: dict[str, Union[list[str], str]]  # input -> its columns, in order ("*" = all non-target columns)
    targets: dict[str, str]  # target -> one column
    delimiter: str = ","
    val_path: Optional[str] = None


DataConfig = Annotated[Union[DigitsData, SyntheticData, ArrayData, CsvData], Field(discriminator="kind")]


# ---- losses --------------------------------------------------------------------------
class LossCommon(Section):
    output: Optional[str] = None  # model output; default: the only output
    target: Optional[str] = None  # target name; default: the only target
    weight: float = 1.0  # weight in the sum over several losses


class CrossEntropyLoss(LossCommon):
    kind: Literal["cross_entropy"]
    label_smoothing: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    ignore_index: int = -100


class NllLoss(LossCommon):
    kind: Literal["nll"]
    ignore_index: int = -100


class RegressionLoss(LossCommon):
    kind: Literal["mse", "l1", "bce_with_logits"]


class HuberLoss(LossCommon):
    kind: Literal["huber"]
    delta: Annotated[float, Field(gt=0.0)] = 1.0


LossConfig = Annotated[Union[CrossEntropyLoss, NllLoss, RegressionLoss, HuberLoss], Field(discriminator="kind")]


# ---- optimizers ------------------------------------------------------------------------
class OptimizerCommon(Section):
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    # parameters whose names contain one of these get no weight decay (norms and biases)
    no_decay: list[str] = ["bias", "norm", "bn"]


class SGD(OptimizerCommon):
    kind: Literal["SGD"]
    lr: Annotated[float, Field(gt=0.0)] = 0.01
    momentum: Annotated[float, Field(ge=0.0)] = 0.0
    nesterov: bool = False


class Adam(OptimizerCommon):
    kind: Literal["Adam", "AdamW"]
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


class RMSprop(OptimizerCommon):
    kind: Literal["RMSprop"]
    lr: Annotated[float, Field(gt=0.0)] = 0.01
    alpha: float = 0.99
    momentum: Annotated[float, Field(ge=0.0)] = 0.0
    eps: float = 1e-8


OptimizerConfig = Annotated[Union[SGD, Adam, RMSprop], Field(discriminator="kind")]


# ---- schedules -------------------------------------------------------------------------
class ScheduleCommon(Section):
    warmup_epochs: Annotated[float, Field(ge=0.0)] = 0.0  # linear warm-up from 0


class ConstantSchedule(ScheduleCommon):
    kind: Literal["constant"]


class StepSchedule(ScheduleCommon):
    kind: Literal["step"]
    step_epochs: Annotated[int, Field(ge=1)] = 10
    gamma: float = 0.1


class MultiStepSchedule(ScheduleCommon):
    kind: Literal["multistep"]
    milestones: list[int]
    gamma: float = 0.1


class CosineSchedule(ScheduleCommon):
    kind: Literal["cosine"]
    min_lr: Annotated[float, Field(ge=0.0)] = 0.0


class OneCycleSchedule(ScheduleCommon):
    kind: Literal["onecycle"]
    max_lr: Optional[float] = None  # default: the optimizer's lr
    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3


class LinearSchedule(ScheduleCommon):
    kind: Literal["linear"]
    end_factor: Annotated[float, Field(ge=0.0)] = 0.0


ScheduleConfig = Annotated[Union[ConstantSchedule, StepSchedule, MultiStepSchedule, CosineSchedule,
                                 OneCycleSchedule, LinearSchedule], Field(discriminator="kind")]


# ---- the rest --------------------------------------------------------------------------
class EarlyStop(Section):
    monitor: str = "val/loss"
    patience: Annotated[int, Field(ge=1)] = 5
    mode: Literal["auto", "min", "max"] = "auto"
    min_delta: Annotated[float, Field(ge=0.0)] = 0.0


class Checkpoints(Section):
    keep_last: Annotated[int, Field(ge=1)] = 2
    monitor: Optional[str] = None  # keep the best by this metric too (default: early_stop's monitor)
    mode: Literal["auto", "min", "max"] = "auto"
    every_steps: Optional[Annotated[int, Field(ge=1)]] = None  # also mid-epoch, every N optimizer steps


METRICS = ("accuracy", "f1", "precision", "recall", "mae", "mse", "r2")
_TOPK = re.compile(r"^top(\d+)$")


class TrainConfig(Section):
    data: DataConfig
    targets: dict[str, str] = {}  # name -> tensor type, e.g. label = int64[N]
    loss: Union[LossConfig, list[LossConfig]]
    optimizer: OptimizerConfig = Field(default_factory=lambda: Adam(kind="AdamW"))
    schedule: ScheduleConfig = Field(default_factory=lambda: ConstantSchedule(kind="constant"))
    epochs: Annotated[int, Field(ge=1, le=100_000)] = 10
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 32
    metrics: list[str] = []
    early_stop: Optional[EarlyStop] = None
    checkpoints: Checkpoints = Checkpoints()
    grad_clip: Optional[Annotated[float, Field(gt=0.0)]] = None
    accumulate: Annotated[int, Field(ge=1, le=4096)] = 1
    precision: Literal["32", "bf16", "fp16"] = "32"
    compile: bool = False
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    seed: int = 0
    engine: Literal["specc", "lightning"] = "specc"
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    log_every: Annotated[int, Field(ge=1)] = 10

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in METRICS and not _TOPK.match(name):
                raise ValueError(f"unknown metric `{name}`; known: {', '.join(METRICS)}, topK (e.g. top5)")
        return names

    @property
    def losses(self) -> list:
        return self.loss if isinstance(self.loss, list) else [self.loss]
