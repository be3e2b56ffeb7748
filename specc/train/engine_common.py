"""What both engines share: the specc engine (trainer.py) and the Lightning engine (lightning_engine.py).

    checks before a run: the batch splits over the processes, fp16 has CUDA, the training split
        makes a batch, a resumed run keeps its optimizer and schedule settings
    the run's arithmetic: optimizer steps per epoch, the first non-finite loss of a window
    E0703: a loss or the weights not finite, said the same way by both engines
    the model: its seeded initial weights, the plain module under torch.compile's wrapper
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..errors import Diagnostic, SpecError, UsageError
from .batches import batch_sizes
from .plan import TrainingPlan

NO_BATCH = 1 << 62  # "no non-finite loss": larger than any batch, so the processes agree on it by a min


# ---- checks before a run ----------------------------------------------------------------------
def check_batch_split(plan: TrainingPlan, processes: int) -> None:
    if plan.config.batch_size % processes:
        raise SpecError([Diagnostic("E0701", f"batch_size {plan.config.batch_size} is the global batch and must "
                                    f"split evenly over {processes} processes", plan.span("batch_size"),
                                    label="not divisible")])


def check_training_split(plan: TrainingPlan, samples: int, processes: int) -> None:
    """The training split makes a batch at least (a last one too small to give each process 2 samples,
    which BatchNorm needs, is dropped)."""
    if not batch_sizes(samples, plan.config.batch_size, processes, "drop"):
        raise SpecError([Diagnostic("E0702", f"the training split has {samples} sample{'s' if samples != 1 else ''}: "
                                    "too few for a batch of 2 per process", plan.span("data"),
                                    help="give the model more training data (or a smaller val_fraction)")])


def check_precision(plan: TrainingPlan, device: torch.device) -> None:
    """fp16 (with its GradScaler) runs on CUDA only: elsewhere torch, or Lightning, would quietly do otherwise."""
    if plan.config.precision == "fp16" and device.type != "cuda":
        raise SpecError([Diagnostic("E0701", f"precision fp16 needs a CUDA device (this run is on {device.type})",
                                    plan.span("precision"), label="needs CUDA", help='use precision = "bf16" on CPU')])


def check_settings(saved: dict, cfg, path: Path, say) -> None:
    """A resumed run continues the checkpoint's optimizer and schedule: changing their settings (or
    the batches they count) is refused; other changes take effect, with a note naming them."""
    changed = _changed_settings(saved, cfg.model_dump(mode="json"))
    fixed = [key for key in changed if key.split(".")[0] in ("optimizer", "schedule", "batch_size", "accumulate")]
    if fixed:
        raise UsageError(f"cannot resume from {path}: {', '.join(changed[k] for k in fixed)} changed since it was "
                         "written, and a resumed run continues the checkpoint's optimizer and schedule; "
                         "restore the setting, or start a new run with another --out")
    if changed:
        say(f"note: resuming with changed settings: {', '.join(changed.values())}")


def _changed_settings(saved: dict, now: dict, prefix: str = "") -> dict[str, str]:
    """{dotted key: "key (old -> new)"} for every train setting that differs."""
    changed = {}
    for key in dict.fromkeys([*saved, *now]):
        old, new = saved.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed.update(_changed_settings(old, new, f"{prefix}{key}."))
        elif old != new:
            changed[prefix + key] = f"{prefix}{key} ({old} -> {new})"
    return changed


# ---- the run's arithmetic ---------------------------------------------------------------------
def steps_per_epoch(plan: TrainingPlan, samples: int, processes: int) -> int:
    """Optimizer steps in an epoch of `samples` training samples: one per `accumulate` batches (a last,
    shorter group steps too)."""
    batches = len(batch_sizes(samples, plan.config.batch_size, processes, "drop"))
    return math.ceil(batches / plan.config.accumulate)


def first_nonfinite(losses: list[float], first: int) -> int:
    """The batch of the first non-finite loss in `losses` (the losses of batches first..), or NO_BATCH."""
    return next((first + i for i, value in enumerate(losses) if not math.isfinite(value)), NO_BATCH)


# ---- E0703 ------------------------------------------------------------------------------------
def loss_diverged(plan: TrainingPlan, latest: Path | None, epoch: int, batch: int, batches: int,
                  steps_per_epoch: int) -> SpecError:
    """E0703: the loss of `batch` (0-based, of `batches` in `epoch`) is not finite; `latest` is the
    checkpoint a resume would use."""
    step = epoch * steps_per_epoch + batch // plan.config.accumulate + 1
    return _diverged(plan, latest, f"training diverged: the loss is not finite at epoch {epoch + 1}, step {step} "
                                   f"(batch {batch + 1} of {batches} in the epoch)")


def weights_diverged(plan: TrainingPlan, latest: Path | None, epoch: int, step: int) -> SpecError:
    """E0703: the weights are not finite after optimizer step `step` (of `epoch`)."""
    return _diverged(plan, latest, f"training diverged: the weights are not finite after step {step} "
                                   f"(epoch {epoch + 1})")


def _diverged(plan: TrainingPlan, latest: Path | None, message: str) -> SpecError:
    kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet"
    return SpecError([Diagnostic("E0703", message, plan.span("loss"), label="this loss",
                                 help=f"lower optimizer.lr, set grad_clip, or check the data; {kept}")])


# ---- the model --------------------------------------------------------------------------------
def initial_weights(ir, seed: int) -> dict:
    """The model's initial state_dict for `seed`, whatever the global RNG has been through."""
    from ..backends.torch_fx import build_module

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_module(ir).state_dict()


def unwrap(model):
    """The plain module under torch.compile's wrapper."""
    return getattr(model, "_orig_mod", model)
