"""`engine = "lightning"`: the same plan run as a LightningModule on PyTorch Lightning's Trainer.

The pieces are specc's own: the seeded initial weights, the data split and batch order (global
batches of `batch_size`, one slice per rank), the objective, the optimizer's parameter groups,
the schedule (stepped per optimizer step) and the torchmetrics metrics. Lightning runs the loop,
precision, gradient clipping and accumulation, early stopping, its strategies (`--nproc N` is
`devices=N`, and under torchrun the processes it started: DDP, or FSDP with strategy = "fsdp") and its
own checkpoints (OUT/checkpoints/last.ckpt and best.ckpt; `--resume` continues from last.ckpt at an
epoch boundary). OUT/metrics.jsonl gets the same per-epoch records as with the specc engine.

The specc engine's guarantees hold here too: a non-finite loss or weights stop the run with E0703
before the epoch's checkpoints are written (DivergenceGuard); the checkpoints also hold every
process's RNG states, the train settings and the run's clock (RunState), so a resumed run continues
exactly, dropout included, and a checkpoint that cannot be read or was written with other optimizer
or schedule settings is refused with the file named; val/loss is weighted by samples over all processes.
Needs the `lightning` extra: pip install 'specc[lightning]'.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from ..errors import Diagnostic, SpecError, UsageError
from .batches import Batches, Shard
from .checkpoint import clear_run, previous_run, read, rng_state, set_rng_state
from .data_load import in_model_dtype, load_data
from .distributed import launched, pick_device
from .engine_common import (NO_BATCH, check_batch_split, check_precision, check_settings, check_training_split,
                            first_nonfinite, initial_weights, loss_diverged, steps_per_epoch, unwrap,
                            weights_diverged)
from .losses import Objective
from .metrics import Metrics
from .optim import make_optimizer, make_schedule
from .plan import TrainingPlan
from .progress import RunLog, interactive, read_metrics

PRECISION = {"32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
ACCELERATOR = {"auto": "auto", "cpu": "cpu", "cuda": "gpu", "mps": "mps"}
# what last.ckpt needs to be resumed: Lightning's training state, and specc's (RunState)
RESUME_KEYS = ("state_dict", "optimizer_states", "lr_schedulers", "loops", "epoch", "specc")
SPECC_KEYS = ("rng", "elapsed", "train", "spec")


class SpeccModule(L.LightningModule):
    """The model with the plan's objective, metrics, optimizer and schedule."""

    def __init__(self, model: torch.nn.Module, plan: TrainingPlan, steps_per_epoch: int):
        super().__init__()
        self.model = model
        self.plan = plan
        self.objective = Objective(plan)
        self.metrics = Metrics(plan)
        self.n_inputs = len(plan.inputs)
        self.steps_per_epoch = steps_per_epoch

    def forward(self, *inputs):
        return self.model(*inputs)

    def _run(self, batch):
        inputs, targets = batch[:self.n_inputs], batch[self.n_inputs:]
        outputs = self.model(*inputs)
        outputs = outputs if type(outputs) is tuple else (outputs,)
        return outputs, targets, self.objective(outputs, targets)

    def training_step(self, batch, batch_idx):
        tensors, scale = batch
        _, _, loss = self._run(tensors)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(tensors[0]),
                 sync_dist=True)
        # Lightning divides every micro-batch's loss by `accumulate` and DDP averages the ranks: weighted
        # by samples instead, as in the specc engine, a partial last group or uneven slices count right
        return loss * (scale * self.plan.config.accumulate)

    def on_validation_epoch_start(self):
        self.val_tally = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss sum, samples

    def validation_step(self, batch, batch_idx):
        outputs, targets, loss = self._run(batch)
        samples = len(batch[0])
        self.val_tally[0] += loss.detach().double() * samples
        self.val_tally[1] += samples
        self.metrics.update(outputs, targets)

    def on_validation_epoch_end(self):
        # summed over the ranks before dividing: sync_dist would average the ranks' means, whose slices differ in size
        loss_sum, samples = self.trainer.strategy.reduce(self.val_tally, reduce_op="sum")
        # every rank logs the same value, so sync_dist (which keeps Lightning from warning) changes nothing
        self.log("val/loss", loss_sum / samples.clamp(min=1), prog_bar=True, batch_size=1, sync_dist=True)
        for key, value in self.metrics.compute().items():  # torchmetrics has synced the ranks: all agree
            self.log(key, value, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        cfg = self.plan.config
        optimizer = make_optimizer(self.model, cfg.optimizer)
        schedule = make_schedule(optimizer, cfg.schedule, epochs=cfg.epochs, steps_per_epoch=self.steps_per_epoch,
                                 base_lr=cfg.optimizer.lr)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class EpochBatches:
    """specc's batch order as a Lightning dataloader: epoch and rank come from the running Trainer."""

    def __init__(self, module: L.LightningModule, tensors: dict, plan: TrainingPlan, *, train: bool):
        self.module, self.tensors, self.plan, self.train = module, tensors, plan, train
        self.names = ([s.name for s in plan.inputs], [s.name for s in plan.targets])

    def _batches(self) -> Batches:
        trainer = self.module._trainer
        shard = Shard(trainer.global_rank, trainer.world_size) if trainer is not None else Shard()
        cfg = self.plan.config
        return Batches(self.tensors, *self.names, cfg.batch_size, shuffle=self.train and cfg.data.shuffle,
                       seed=cfg.seed, shard=shard, tail="drop" if self.train else "merge")

    def __len__(self) -> int:
        return len(self._batches())

    def __iter__(self):
        """Validation batches are tensors; training batches (tensors, loss scale) (Batches.loss_scales)."""
        epoch = self.module.current_epoch if self.module._trainer is not None else 0
        batches = self._batches()
        if not self.train:
            for batch in batches.epoch(0):
                yield batch.inputs + batch.targets
            return
        scales = batches.loss_scales(self.plan.config.accumulate)
        for batch, scale in zip(batches.epoch(epoch), scales):
            yield batch.inputs + batch.targets, scale


class Records(L.Callback):
    """OUT/metrics.jsonl (one record per epoch, as the specc engine writes it) and the epoch lines.
    `started`: the perf_counter() of the run's start (earlier than now by the seconds before a resume)."""

    def __init__(self, log: RunLog, epochs: int, samples: int, started: float | None = None):
        self.run_log, self.epochs, self.samples = log, epochs, samples
        self.started = time.perf_counter() if started is None else started
        self.epoch_start = self.train_seconds = 0.0

    def on_train_epoch_start(self, trainer, module):
        self.epoch_start = time.perf_counter()
        self.train_seconds = 0.0

    def on_validation_start(self, trainer, module):
        if not trainer.sanity_checking:
            self.train_seconds = time.perf_counter() - self.epoch_start

    def on_train_epoch_end(self, trainer, module):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        seconds = self.train_seconds or time.perf_counter() - self.epoch_start
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        record = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step}
        record.update({k: v for k, v in sorted(metrics.items()) if k.startswith(("train/", "val/"))})
        record.update(lr=trainer.optimizers[0].param_groups[0]["lr"], time=round(time.perf_counter() - self.started, 3),
                      train_time=round(seconds, 4), samples_per_s=round(self.samples / max(seconds, 1e-9), 1))
        self.run_log.epoch(record, self.epochs)


class DivergenceGuard(L.Callback):
    """E0703, as in the specc engine: the losses are checked every `log_every` optimizer steps and after
    the epoch's last batch, the weights then too. The epoch's checkpoints are written later (after
    validation), so a non-finite one is never written and last.ckpt stays the last good one."""

    def __init__(self, plan: TrainingPlan, last: Path, steps_per_epoch: int):
        self.plan, self.last, self.steps_per_epoch = plan, last, steps_per_epoch
        self.window, self.first = [], 0  # the losses since the last check, and the batch of the first

    def on_train_epoch_start(self, trainer, module):
        self.window, self.first = [], 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.window.append(outputs["loss"])  # the micro-batch's loss as scaled for backward: finite alike
        cfg, batches = self.plan.config, trainer.num_training_batches
        epoch_end = batch_idx == batches - 1
        if not epoch_end and ((batch_idx + 1) % cfg.accumulate or trainer.global_step % cfg.log_every):
            return
        losses, first = torch.stack(self.window).tolist(), self.first
        self.window, self.first = [], batch_idx + 1
        bad = _all_min(trainer, module, first_nonfinite(losses, first))
        epoch, latest = trainer.current_epoch, self.last if self.last.exists() else None
        if bad != NO_BATCH:
            raise loss_diverged(self.plan, latest, epoch, bad, batches, self.steps_per_epoch)
        if epoch_end and _all_min(trainer, module, int(_finite(module))) == 0:
            raise weights_diverged(self.plan, latest, epoch, trainer.global_step)


class RunState(L.Callback):
    """specc's part of the Lightning checkpoints, so that --resume continues exactly: every process's RNG
    states (dropout's masks), the train settings and spec (checked on resume) and the run's seconds so far."""

    def __init__(self, compiled, plan: TrainingPlan, started: float, resumed: Resumed | None, say):
        self.spec = {"path": str(compiled.spec.path), "hash": compiled.spec.content_hash, "model": plan.model}
        self.train = plan.config.model_dump(mode="json")
        self.started, self.resumed, self.say = started, resumed, say

    def on_train_start(self, trainer, module):
        """The states the checkpoint was written with, set once everything is restored and set up, just
        before the first resumed batch draws from them."""
        if self.resumed is None:
            return
        rngs = self.resumed.rngs
        if len(rngs) == trainer.world_size:
            set_rng_state(rngs[trainer.global_rank])
        else:
            self.say(f"note: the checkpoint was written by {len(rngs)} processes, this run has "
                     f"{trainer.world_size}: random streams restart from the seed")

    def on_save_checkpoint(self, trainer, module, checkpoint):
        checkpoint["specc"] = {"rng": _gather(rng_state(), trainer), "elapsed": time.perf_counter() - self.started,
                               "train": self.train, "spec": self.spec}


@dataclass(frozen=True)
class Resumed:
    """What a resumed run takes from last.ckpt besides what Lightning restores itself."""

    epochs: int  # epochs done
    elapsed: float  # the run's seconds so far
    rngs: list  # RNG states, one set per process


def fit(compiled, plan: TrainingPlan, out: Path, *, resume: bool, verbose: bool, devices: int = 1) -> dict:
    cfg = plan.config
    devices, nodes = _processes(devices)
    world = devices * nodes
    _check_plan(plan, world)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    L.seed_everything(cfg.seed, verbose=False)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    log = RunLog(out, enabled=_global_zero(), verbose=verbose)
    replaced = previous_run(out, "lightning", resume, last.exists(), log.say)
    model = unwrap(compiled.model)
    if resume and last.exists():
        resumed = _resume(last, compiled, model, log.say)
    else:
        resumed = None
        model.load_state_dict(initial_weights(compiled.ir, cfg.seed))
    dataset = in_model_dtype(load_data(plan.data, plan.span), plan.inputs, compiled.ir.weight_dtype, model)
    check_training_split(plan, len(dataset.train), world)
    steps = steps_per_epoch(plan, len(dataset.train), world)
    module = SpeccModule(model, plan, steps)
    train_batches = EpochBatches(module, dataset.train.tensors, plan, train=True)
    val_batches = EpochBatches(module, dataset.val.tensors, plan, train=False) if dataset.val is not None else None
    if replaced and _global_zero():  # only now that the new run is set up: a failed start loses nothing
        clear_run(out, log.say)
    log.start(fresh=resumed is None, keep_epochs=resumed.epochs if resumed else 0)
    started = time.perf_counter() - (resumed.elapsed if resumed else 0.0)
    callbacks = [*_callbacks(plan, ckpt_dir, log, len(dataset.train), started),
                 DivergenceGuard(plan, last, steps), RunState(compiled, plan, started, resumed, log.say)]
    trainer = L.Trainer(
        max_epochs=cfg.epochs, accelerator=ACCELERATOR[cfg.device], devices=devices, num_nodes=nodes,
        strategy=_strategy(cfg.strategy, world), precision=PRECISION[cfg.precision],
        gradient_clip_val=cfg.grad_clip, accumulate_grad_batches=cfg.accumulate,
        callbacks=callbacks, logger=_logger(out),
        enable_progress_bar=verbose and interactive(), enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=cfg.log_every, use_distributed_sampler=False, default_root_dir=str(out))
    fit_module = torch.compile(module) if cfg.compile else module
    try:
        with warnings.catch_warnings(), _interrupt_as_keyboard_interrupt(trainer):
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning's own, about torch's pytree API
            warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")  # resuming
            trainer.fit(fit_module, train_dataloaders=train_batches, val_dataloaders=val_batches,
                        ckpt_path=str(last) if resumed else None, weights_only=True)
    finally:
        log.close()
    records = read_metrics(out)
    record = records[-1] if records else {}
    best = trainer.checkpoint_callback
    log.summary({"final": record, "epochs_run": record.get("epoch"), "seconds": round(time.perf_counter() - started, 2),
                 "best": {"monitor": plan.best.key, "value": _number(best.best_model_score),
                          "checkpoint": best.best_model_path} if plan.best else None,
                 "last_checkpoint": str(last)})
    return record


def _resume(last: Path, compiled, model: torch.nn.Module, say) -> Resumed:
    """last.ckpt, checked before Lightning loads it, its weights loaded into `model`: a file that cannot be
    read, is not a whole specc checkpoint, was written with other optimizer or schedule settings, or does
    not fit the model is a UsageError naming it (Lightning would fail with a traceback, or not at all)."""
    try:
        state = read(last)
    except ValueError as err:
        raise UsageError(f"cannot resume from {last}: {err}; start a new run with another --out") from None
    missing = _missing(state)
    if missing:
        raise UsageError(f"cannot resume from {last}: it is not a complete specc training checkpoint (it has no "
                         f"{', '.join(missing)}); start a new run with another --out")
    saved = state["specc"]
    if saved["spec"].get("hash") != compiled.spec.content_hash:
        say(f"note: {compiled.spec.path} changed since {last.name} was written; resuming anyway")
    check_settings(saved["train"], compiled.plan.config, last, say)
    try:
        model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
    except (RuntimeError, AttributeError, TypeError) as err:
        raise UsageError(f"cannot resume from {last}: the checkpoint does not fit the model: {err}") from None
    say(f"resuming from {last}")
    return Resumed(epochs=int(state["epoch"]) + 1, elapsed=float(saved["elapsed"]), rngs=saved["rng"])


def _missing(state) -> list[str]:
    """The parts of a resumable checkpoint that `state` lacks."""
    if not isinstance(state, dict):
        return list(RESUME_KEYS)
    saved = state["specc"] if isinstance(state.get("specc"), dict) else {}
    return [key for key in RESUME_KEYS if key not in state] + \
        [f"specc.{key}" for key in SPECC_KEYS if "specc" in state and key not in saved]


@contextlib.contextmanager
def _interrupt_as_keyboard_interrupt(trainer):
    """Lightning answers Ctrl-C with sys.exit(1) and leaves SIGINT ignored; specc's answer is a
    KeyboardInterrupt (the CLI prints "specc: interrupted" and exits 130), with the handler restored."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SystemExit as err:
        if trainer.interrupted:  # the interrupt Lightning caught: Ctrl-C, or SIGTERM (the CLI's Terminated)
            interrupt = err.__context__
            raise (interrupt if isinstance(interrupt, KeyboardInterrupt) else KeyboardInterrupt()) from None
        raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)


def _number(value) -> float | None:
    return float(value) if value is not None else None


def _processes(devices: int) -> tuple[int, int]:
    """(devices per node, nodes): under torchrun the processes it started, whatever --nproc says, as on the
    specc engine (Lightning's TorchElasticEnvironment takes ranks and rendezvous from the environment);
    otherwise `devices` on this machine, whose processes Lightning starts."""
    if not launched():
        return devices, 1
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return local, world // local


def _check_plan(plan: TrainingPlan, world: int) -> None:
    """The settings this machine cannot run, said before anything runs as the specc engine says them
    (Lightning would raise its own exceptions, or run fp16 on CPU as bf16): the device, fp16 without
    CUDA, a batch that does not split over the processes, and Lightning's FSDP (which needs CUDA GPUs)."""
    cfg = plan.config
    check_precision(plan, pick_device(cfg.device, 0, world, plan))
    check_batch_split(plan, world)
    if _strategy(cfg.strategy, world) == "fsdp" and not (cfg.device in ("auto", "cuda") and torch.cuda.is_available()):
        raise SpecError([Diagnostic("E0701", 'the Lightning engine runs strategy = "fsdp" on CUDA GPUs only, and this '
                                    "run has none", plan.span("strategy"), label="needs CUDA",
                                    help='use engine = "specc", whose FSDP runs on CPU too, or strategy = "ddp"')])


def _strategy(strategy: str, world: int) -> str:
    if world == 1:
        return "auto"
    return "fsdp" if strategy == "fsdp" else "ddp"


def _callbacks(plan: TrainingPlan, ckpt_dir: Path, log: RunLog, samples: int, started: float | None = None) -> list:
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    callbacks = [Records(log, plan.config.epochs, samples, started)]
    best = plan.best
    if best is not None:  # first: it is trainer.checkpoint_callback, whose best score the summary reports
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=best.key, mode=best.mode,
                                         save_top_k=1, enable_version_counter=False))
    # every epoch (ModelCheckpoint's save_last writes last.ckpt only when its monitored value improved)
    callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="last", enable_version_counter=False))
    es = plan.early_stop
    if es is not None:  # check_finite off: a NaN counts as not improved, as in the specc engine
        callbacks.append(EarlyStopping(monitor=es.key, mode=es.mode, patience=es.patience, min_delta=es.min_delta,
                                       check_finite=False))
    return callbacks


def _logger(out: Path):
    try:
        from lightning.pytorch.loggers import TensorBoardLogger
        return TensorBoardLogger(str(out), name="tensorboard")
    except (ImportError, ModuleNotFoundError):
        return False


def _global_zero() -> bool:
    from .distributed import is_main_process
    return is_main_process()


def _all_min(trainer, module, value: int) -> int:
    """The smallest of the processes' values (each process's own alone)."""
    return int(trainer.strategy.reduce(torch.tensor(value, device=module.device), reduce_op="min"))


def _finite(module: torch.nn.Module) -> bool:
    """Whether this process's weights and buffers are finite (under FSDP, its shard of them)."""
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    return not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def _gather(value, trainer) -> list:
    """Every process's `value`, in rank order."""
    if trainer.world_size == 1:
        return [value]
    gathered = [None] * trainer.world_size
    torch.distributed.all_gather_object(gathered, value)
    return gathered
