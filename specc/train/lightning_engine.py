"""`engine = "lightning"`: the same plan run as a LightningModule on PyTorch Lightning's Trainer.

The pieces are specc's own: the seeded initial weights, the data split and batch order (global
batches of `batch_size`, one slice per rank), the objective, the optimizer's parameter groups,
the schedule (stepped per optimizer step) and the torchmetrics metrics. Lightning runs the loop,
precision, gradient clipping and accumulation, early stopping, its strategies (`--nproc N` is
`devices=N`: DDP, or FSDP with strategy = "fsdp") and its own checkpoints
(OUT/checkpoints/last.ckpt and best.ckpt; `--resume` continues from last.ckpt at an epoch
boundary). OUT/metrics.jsonl gets the same per-epoch records as with the specc engine.
Needs the `lightning` extra: pip install 'specc[lightning]'.
"""
from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
import warnings
from pathlib import Path

import lightning as L
import torch

from .batches import Batches, Shard
from .checkpoint import clear_run, previous_run
from .data import in_model_dtype, load_data
from .losses import Objective
from .metrics import Metrics
from .optim import make_optimizer, make_schedule
from .plan import TrainingPlan
from .progress import RunLog, interactive, read_metrics

PRECISION = {"32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
ACCELERATOR = {"auto": "auto", "cpu": "cpu", "cuda": "gpu", "mps": "mps"}


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

    def validation_step(self, batch, batch_idx):
        outputs, targets, loss = self._run(batch)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(batch[0]), sync_dist=True)
        self.metrics.update(outputs, targets)

    def on_validation_epoch_end(self):
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
    """OUT/metrics.jsonl (one record per epoch, as the specc engine writes it) and the epoch lines."""

    def __init__(self, log: RunLog, epochs: int, samples: int):
        self.run_log, self.epochs, self.samples = log, epochs, samples
        self.started = time.perf_counter()
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


def fit(compiled, plan: TrainingPlan, out: Path, *, resume: bool, verbose: bool, devices: int = 1) -> dict:
    from .trainer import initial_weights, unwrap

    cfg = plan.config
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    L.seed_everything(cfg.seed, verbose=False)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    log = RunLog(out, enabled=_global_zero(), verbose=verbose)
    replaced = previous_run(out, "lightning", resume, last.exists(), log.say)
    resume = resume and last.exists()
    model = unwrap(compiled.model)
    model.load_state_dict(initial_weights(compiled.ir, cfg.seed))
    dataset = in_model_dtype(load_data(plan.data, plan.span), plan.inputs, compiled.ir.weight_dtype, model)
    module = SpeccModule(model, plan, _steps_per_epoch(dataset, plan, devices))
    train_batches = EpochBatches(module, dataset.train.tensors, plan, train=True)
    val_batches = EpochBatches(module, dataset.val.tensors, plan, train=False) if dataset.val is not None else None
    if replaced and _global_zero():  # only now that the new run is set up: a failed start loses nothing
        clear_run(out, log.say)
    log.start(fresh=not resume, keep_epochs=_epochs_in(last) if resume else 0)
    trainer = L.Trainer(
        max_epochs=cfg.epochs, accelerator=ACCELERATOR[cfg.device], devices=devices,
        strategy=_strategy(cfg.strategy, devices), precision=PRECISION[cfg.precision],
        gradient_clip_val=cfg.grad_clip, accumulate_grad_batches=cfg.accumulate,
        callbacks=_callbacks(plan, ckpt_dir, log, len(dataset.train)), logger=_logger(out),
        enable_progress_bar=verbose and interactive(), enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=cfg.log_every, use_distributed_sampler=False, default_root_dir=str(out))
    fit_module = torch.compile(module) if cfg.compile else module
    started = time.perf_counter()
    with warnings.catch_warnings(), _interrupt_as_keyboard_interrupt(trainer):
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning's own, about torch's pytree API
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")  # resuming
        trainer.fit(fit_module, train_dataloaders=train_batches, val_dataloaders=val_batches,
                    ckpt_path=str(last) if resume else None, weights_only=True)
    records = read_metrics(out)
    record = records[-1] if records else {}
    best = trainer.checkpoint_callback
    log.summary({"final": record, "epochs_run": record.get("epoch"), "seconds": round(time.perf_counter() - started, 2),
                 "best": {"monitor": plan.best.key, "value": _number(best.best_model_score),
                          "checkpoint": best.best_model_path} if plan.best else None,
                 "last_checkpoint": str(last)})
    log.close()
    return record


@contextlib.contextmanager
def _interrupt_as_keyboard_interrupt(trainer):
    """Lightning answers Ctrl-C with sys.exit(1) and leaves SIGINT ignored; specc's answer is a
    KeyboardInterrupt (the CLI prints "specc: interrupted" and exits 130), with the handler restored."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)


def _steps_per_epoch(dataset, plan: TrainingPlan, world: int) -> int:
    cfg = plan.config
    batches = Batches(dataset.train.tensors, [s.name for s in plan.inputs], [], cfg.batch_size, shuffle=False,
                      seed=0, shard=Shard(0, world))
    return math.ceil(len(batches) / cfg.accumulate)


def _number(value) -> float | None:
    return float(value) if value is not None else None


def _strategy(strategy: str, devices: int) -> str:
    if devices == 1:
        return "auto"
    return "fsdp" if strategy == "fsdp" else "ddp"


def _callbacks(plan: TrainingPlan, ckpt_dir: Path, log: RunLog, samples: int) -> list:
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    callbacks = [Records(log, plan.config.epochs, samples)]
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


def _epochs_in(checkpoint: Path) -> int:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return int(state.get("epoch", -1)) + 1
