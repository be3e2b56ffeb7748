"""Schema of the `train` section. Executed by specc.train; validated here, torch-free."""
from __future__ import annotations

import re
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Strict, Tag, field_validator, model_validator

from ..ir.evaluate import MAX_INT

# Sane bounds, checked by `specc check` before anything is allocated or handed to torch.
MAX_EPOCHS = 100_000
MAX_CLASSES = 1_000_000  # synthetic integer targets are drawn from range(classes)
MAX_DIM = 1_000_000  # a synthetic `dims` size


class Section(BaseModel):
    # allow_inf_nan=False: every float setting is finite (`lr = 1e999` and `lr = inf` are errors);
    # strict: a number is a number (`epochs = true`, `lr = "3e-4"` and `patience = 3.0` are errors)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False, strict=True)


Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
Seed = Annotated[int, Field(ge=0, le=MAX_INT)]  # torch and numpy take seeds as 64-bit integers
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Int64 = Annotated[int, Field(ge=-MAX_INT - 1, le=MAX_INT)]


# ---- data ----------------------------------------------------------------------------
class Normalize(Section):
    """Per-feature normalisation of float inputs: fixed mean/std, or `standard` (fit on the train split)."""

    kind: Literal["standard", "fixed", "scale"] = "standard"
    mean: Optional[float] = None
    std: Optional[Positive] = None
    scale: Optional[Positive] = None  # for kind = scale: x * scale (e.g. 1/16 for digits)


class DataCommon(Section):
    val_fraction: Fraction = 0.2
    seed: Seed = 0
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
    classes: Annotated[int, Field(ge=1, le=MAX_CLASSES)] = 10  # integer targets are drawn from range(classes)
    dims: dict[str, Annotated[int, Field(ge=1, le=MAX_DIM)]] = {}  # sizes for symbolic dims other than N (e.g. T = 32)


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
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    val_path: Optional[str] = None


DataConfig = Annotated[Union[DigitsData, SyntheticData, ArrayData, CsvData], Field(discriminator="kind")]


# ---- losses --------------------------------------------------------------------------
CLASS_LOSSES = ("cross_entropy", "nll")  # classification: integer targets index the output's classes
REGRESSION_LOSSES = ("mse", "l1", "huber")
IGNORE_INDEX = -100  # the class losses' default ignore_index (torch's): a label that is skipped, not a class


class LossCommon(Section):
    output: Optional[str] = None  # model output; default: the only output
    target: Optional[str] = None  # target name; default: the only target
    weight: NonNegative = 1.0  # weight in the sum over several losses


class CrossEntropyLoss(LossCommon):
    kind: Literal["cross_entropy"]
    label_smoothing: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    ignore_index: Int64 = IGNORE_INDEX


class NllLoss(LossCommon):
    kind: Literal["nll"]
    ignore_index: Int64 = IGNORE_INDEX


class RegressionLoss(LossCommon):
    kind: Literal["mse", "l1", "bce_with_logits"]


class HuberLoss(LossCommon):
    kind: Literal["huber"]
    delta: Annotated[float, Field(gt=0.0)] = 1.0


LossConfig = Annotated[Union[CrossEntropyLoss, NllLoss, RegressionLoss, HuberLoss], Field(discriminator="kind")]


# ---- optimizers ------------------------------------------------------------------------
class OptimizerCommon(Section):
    lr: Positive = 1e-3
    weight_decay: NonNegative = 0.0
    # parameters whose names contain one of these get no weight decay (norms and biases)
    no_decay: list[str] = ["bias", "norm", "bn"]


class SGD(OptimizerCommon):
    kind: Literal["SGD"]
    lr: Positive = 0.01
    momentum: NonNegative = 0.0
    nesterov: bool = False

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self):
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov = true needs a momentum above 0 (e.g. momentum = 0.9)")
        return self


class Adam(OptimizerCommon):
    kind: Literal["Adam", "AdamW"]
    # Strict(False): the tuple may be written as a list; its items stay strict numbers
    betas: Annotated[tuple[Fraction, Fraction], Strict(False)] = (0.9, 0.999)  # each in [0, 1)
    eps: Positive = 1e-8


class RMSprop(OptimizerCommon):
    kind: Literal["RMSprop"]
    lr: Positive = 0.01
    alpha: Fraction = 0.99
    momentum: NonNegative = 0.0
    eps: Positive = 1e-8


OptimizerConfig = Annotated[Union[SGD, Adam, RMSprop], Field(discriminator="kind")]


# ---- schedules -------------------------------------------------------------------------
class ScheduleCommon(Section):
    warmup_epochs: Annotated[float, Field(ge=0.0, le=MAX_EPOCHS)] = 0.0  # linear warm-up from 0


class ConstantSchedule(ScheduleCommon):
    kind: Literal["constant"]


class StepSchedule(ScheduleCommon):
    kind: Literal["step"]
    step_epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 10
    gamma: Positive = 0.1


class MultiStepSchedule(ScheduleCommon):
    kind: Literal["multistep"]
    milestones: list[Annotated[int, Field(ge=1, le=MAX_EPOCHS)]]  # epoch numbers, increasing (checked by the plan)
    gamma: Positive = 0.1


class CosineSchedule(ScheduleCommon):
    kind: Literal["cosine"]
    min_lr: NonNegative = 0.0


class OneCycleSchedule(ScheduleCommon):
    kind: Literal["onecycle"]
    max_lr: Optional[Positive] = None  # default: the optimizer's lr
    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3


class LinearSchedule(ScheduleCommon):
    kind: Literal["linear"]
    end_factor: NonNegative = 0.0


ScheduleConfig = Annotated[Union[ConstantSchedule, StepSchedule, MultiStepSchedule, CosineSchedule,
                                 OneCycleSchedule, LinearSchedule], Field(discriminator="kind")]


# ---- the rest --------------------------------------------------------------------------
class EarlyStop(Section):
    monitor: str = "val/loss"
    patience: Annotated[int, Field(ge=1)] = 5
    mode: Literal["auto", "min", "max"] = "auto"
    min_delta: NonNegative = 0.0


class Checkpoints(Section):
    keep_last: Annotated[int, Field(ge=1)] = 2
    monitor: Optional[str] = None  # keep the best by this metric too (default: early_stop's monitor)
    mode: Literal["auto", "min", "max"] = "auto"
    every_steps: Optional[Annotated[int, Field(ge=1)]] = None  # also mid-epoch, every N optimizer steps


def _one_or_several(value) -> str:
    return "several" if isinstance(value, (list, tuple)) else "one"


METRICS = ("accuracy", "f1", "precision", "recall", "mae", "mse", "r2")  # and topK
REGRESSION_METRICS = ("mae", "mse", "r2")
HIGHER_IS_BETTER = ("accuracy", "f1", "precision", "recall", "r2")  # and topK: a monitor's mode "auto" is max
_TOPK = re.compile(r"^top([1-9]\d{0,5})$")


class TrainConfig(Section):
    data: DataConfig
    targets: dict[str, str] = {}  # name -> tensor type, e.g. label = int64[N]
    # one loss, or several (a repeated `loss` section): the shape of the value picks the branch, so
    # an error names what is wrong with it rather than with both branches of the union
    loss: Annotated[Union[Annotated[LossConfig, Tag("one")],
                          Annotated[list[LossConfig], Field(min_length=1), Tag("several")]],
                    Discriminator(_one_or_several)]
    optimizer: OptimizerConfig = Field(default_factory=lambda: Adam(kind="AdamW"))
    schedule: ScheduleConfig = Field(default_factory=lambda: ConstantSchedule(kind="constant"))
    epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 10
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 32
    metrics: list[str] = []
    early_stop: Optional[EarlyStop] = None
    checkpoints: Checkpoints = Checkpoints()
    grad_clip: Optional[Positive] = None
    accumulate: Annotated[int, Field(ge=1, le=4096)] = 1
    precision: Literal["32", "bf16", "fp16", 32] = "32"  # `precision = 32` is the number a person writes
    compile: bool = False
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    seed: Seed = 0
    engine: Literal["specc", "lightning"] = "specc"
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    log_every: Annotated[int, Field(ge=1)] = 10

    @field_validator("loss", mode="before")
    @classmethod
    def _some_loss(cls, value):
        if isinstance(value, (list, tuple)) and not value:
            raise ValueError("the train section needs at least one loss, e.g. `loss cross_entropy {}`")
        return value

    @field_validator("precision")
    @classmethod
    def _precision_text(cls, value) -> str:
        return str(value)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str]) -> list[str]:
        for i, name in enumerate(names):
            if name not in METRICS and not _TOPK.match(name):
                raise ValueError(f"unknown metric `{name}`; known: {', '.join(METRICS)}, topK with K >= 1 (e.g. top5)")
            if name in names[:i]:
                raise ValueError(f"metric `{name}` is listed twice")
        return names

    @property
    def losses(self) -> list:
        return self.loss if isinstance(self.loss, list) else [self.loss]
