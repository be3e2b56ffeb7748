"""The specc engine: runs a TrainingPlan in this process (alone, or as one rank of DDP/FSDP).

    prepare: the run folder, weights (seeded init or the checkpoint), data, wrapping, optimizer, schedule
    each epoch: optimizer steps over this rank's batches -> validation -> metrics.jsonl -> checkpoint
    finish: summary.json and the final metrics

The step loop is a plain PyTorch loop, so a step costs what a hand-written loop costs. The rest
(loss tally, NaN check, progress bar) happens every `log_every` optimizer steps and at the end of
the epoch; a mid-epoch checkpoint every `checkpoints.every_steps` optimizer steps (with that check
first, so a checkpoint is never written after a non-finite loss).
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..errors import Diagnostic, SpecError, UsageError
from . import distributed
from .batches import Batches, Shard
from .checkpoint import (FORMAT, Checkpoints, Position, clear_run, engine_checkpoints, load, position_from,
                         previous_run, rng_state, set_rng_state)
from .data_load import in_model_dtype, load_data
from .engine_common import (NO_BATCH, check_batch_split, check_precision, check_settings, check_training_split,
                            first_nonfinite, initial_weights, loss_diverged, steps_per_epoch, unwrap,
                            weights_diverged)
from .losses import Objective
from .metrics import Metrics
from .optim import make_optimizer, make_schedule
from .plan import TrainingPlan
from .progress import SUMMARY_FILE, RunLog, read_metrics

NO_CONTEXT = contextlib.nullcontext()  # reusable: it keeps no state


def train(compiled, out_dir="runs/run", *, resume: bool = False, verbose: bool = True, nproc: int = 1,
          **overrides) -> dict:
    """Run the spec's recipe; returns the last epoch's metrics ({"train/loss": ..., "val/accuracy": ...}).

    `overrides` set train-section fields (`epochs=3`, `**{"optimizer.lr": 0.01}`). Both engines run as
    many processes as torchrun started; otherwise `nproc` is the number of devices for the Lightning
    engine, which starts their processes itself (`specc train --nproc N` starts the specc engine's).
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be a whole number of processes, 1 or more, got {nproc!r}")
    if overrides:
        from .overrides import with_overrides
        compiled = with_overrides(compiled, overrides)
    plan = compiled.plan
    if plan is None:
        raise SpecError([Diagnostic("E0701", f"{compiled.spec.path} has no train section",
                                    help="add one: train { data digits {} ... }")])
    if plan.config.engine == "lightning":
        fit = _lightning_fit(plan)
        return fit(compiled, plan, Path(out_dir), resume=resume, verbose=verbose, devices=nproc)
    if nproc > 1 and not distributed.launched():
        raise UsageError("several processes need torchrun: run `specc train SPEC --nproc N` "
                         "or `torchrun --nproc-per-node N -m specc train SPEC`")
    with distributed.session(plan) as env:
        return Trainer(compiled, plan, Path(out_dir), env, resume=resume, verbose=verbose).fit()


def _lightning_fit(plan: TrainingPlan):
    try:
        from .lightning_engine import fit
    except ImportError as err:
        if not (err.name or "").startswith("lightning"):
            raise
        raise SpecError([Diagnostic("E0701", "engine = \"lightning\" needs PyTorch Lightning, which is not installed",
                                    plan.span("engine"), label="not installed",
                                    help="pip install 'specc[lightning]'")]) from None
    return fit


def _folder(checkpoints: list[str], finished: bool) -> str:
    """What one rank sees in the run folder, in words."""
    seen = f"{len(checkpoints)} checkpoint files (the last {checkpoints[-1]})" if checkpoints else "no checkpoint"
    return f"sees {seen}{' and summary.json' if finished else ''}"


@dataclass
class Tally:
    """Training loss and throughput of the current epoch (over all ranks)."""

    loss_sum: float = 0.0
    samples: int = 0
    seconds: float = 0.0

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.samples)

    @property
    def rate(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Watch:
    """A monitored value: the best so far and the epochs since it improved."""

    monitor: object  # plan.Monitor
    best: float | None = None
    bad_epochs: int = 0
    improved: bool = field(default=False, repr=False)

    @property
    def exhausted(self) -> bool:
        """Whether the monitored value has not improved for `patience` epochs."""
        return self.bad_epochs >= self.monitor.patience

    def update(self, record: dict) -> None:
        value = record[self.monitor.key]
        self.improved = math.isfinite(value) and self.monitor.improved(value, self.best)
        if self.improved:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1

    def stop_message(self) -> str:
        best = "it was never finite" if self.best is None else f"best {self.best:.4f}"
        return f"early stop: {self.monitor.key} has not improved for {self.monitor.patience} epochs ({best})"

    def state(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def restore(self, state: dict) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class Trainer:
    def __init__(self, compiled, plan: TrainingPlan, out: Path, env, *, resume: bool, verbose: bool):
        self.plan, self.cfg, self.env, self.out = plan, plan.config, env, out
        self.compiled, self.spec = compiled, compiled.spec
        self.autocast = self._autocast()  # settings this machine cannot run fail before anything is touched
        check_batch_split(plan, env.world)
        self.ckpts = Checkpoints(out, self.cfg.checkpoints.keep_last)
        self.log = RunLog(out, enabled=env.is_main, verbose=verbose)
        state, replaced = self._initial_state(resume)
        self.raw = unwrap(compiled.model)
        self._init_weights(compiled.ir, state)
        self.dataset = in_model_dtype(load_data(plan.data, plan.span), plan.inputs, compiled.ir.weight_dtype, self.raw)
        self.raw.to(env.device)
        self.model, self.ddp = self._wrap()
        # under DDP every rank holds the whole model: validation runs it as it is (uncompiled, outside DDP's
        # wrapper); FSDP's shards run only through theirs
        self.eval_model = self.raw if env.strategy == "ddp" else self.model
        self.train_batches, self.val_batches = self._batches()
        self.steps_per_epoch = steps_per_epoch(plan, len(self.dataset.train), env.world)
        self.optimizer = make_optimizer(self.raw, self.cfg.optimizer)
        self.schedule = make_schedule(self.optimizer, self.cfg.schedule, epochs=self.cfg.epochs,
                                      steps_per_epoch=self.steps_per_epoch, base_lr=self.cfg.optimizer.lr)
        self.scaler = torch.amp.GradScaler("cuda") if self.cfg.precision == "fp16" else None
        self.objective = Objective(plan)
        self.metrics = Metrics(plan).to(env.device)
        self.position, self.elapsed = Position(), 0.0
        self.epoch_so_far = Tally()  # what a resumed mid-epoch checkpoint had tallied of its epoch
        self.stopper = Watch(plan.early_stop) if plan.early_stop else None
        self.best_watch = Watch(plan.best) if plan.best else None
        self.stopped_early = False
        self._seed_training()
        if state is not None:
            self._restore(state)
        if replaced and env.is_main:  # only now that the new run is set up (its data read): a failed start loses nothing
            clear_run(self.out, self.log.say)
        self.log.start(fresh=state is None, keep_epochs=self.position.epoch)

    # ---- preparation ------------------------------------------------------------------------
    def _initial_state(self, resume: bool) -> tuple[dict | None, bool]:
        """The checkpoint to continue from (--resume) or None for a fresh run, and whether a fresh run
        replaces a finished one in the folder."""
        self._check_shared_folder()
        resumable = self.ckpts.latest() is not None
        replaces = previous_run(self.out, "specc", resume, resumable, self.log.say)
        state, damaged = self._resume_state() if resume and resumable else (None, [])
        distributed.gather(None, self.env)  # everyone has read the folder before rank 0 changes it
        if self.env.is_main:
            self.ckpts.set_aside(damaged, self.log.say)
        return state, replaces

    def _check_shared_folder(self) -> None:
        """Every rank decides alone whether (and from where) to resume, from what it sees in --out: that
        must be the same folder, or the ranks would take different ways and their collectives not match."""
        found = engine_checkpoints(self.out)
        seen = [p.name for p in found["specc"] + found["lightning"]], (self.out / SUMMARY_FILE).exists()
        views = distributed.gather(seen, self.env)
        other = next((rank for rank, view in enumerate(views) if view != views[0]), None)
        if other is not None:
            raise UsageError(f"the processes see different run folders at {self.out}: rank 0 {_folder(*views[0])}, "
                             f"rank {other} {_folder(*views[other])}; --out must be on storage every node shares")

    def _resume_state(self) -> tuple[dict, list[Path]]:
        """The newest checkpoint that loads, and the damaged newer ones skipped for it (the older ones are good)."""
        problems, damaged = [], []
        for path in reversed(self.ckpts.steps()):
            try:
                state = load(path)
            except ValueError as err:
                problems.append(str(err))
                damaged.append(path)
                self.log.say(f"note: skipping {path}: {err}")
                continue
            if state["spec"].get("hash") != self.spec.content_hash:
                self.log.say(f"note: {self.spec.path} changed since {path.name} was written; resuming anyway")
            check_settings(state["train"], self.cfg, path, self.log.say)
            self.log.say(f"resuming from {path}")
            return state, damaged
        raise UsageError(f"cannot resume from {self.ckpts.dir}: no checkpoint there can be read ({problems[0]})")

    def _init_weights(self, ir, state: dict | None) -> None:
        """A fresh run starts from the seed's initial weights whatever happened before; a resumed one
        from its checkpoint."""
        model_state = initial_weights(ir, self.cfg.seed) if state is None else state["model"]
        try:
            self.raw.load_state_dict(model_state)
        except RuntimeError as err:
            raise UsageError(f"the checkpoint does not fit the model: {err}") from None

    def _wrap(self):
        model = distributed.wrap(self.raw, self.env)
        ddp = model if self.env.strategy == "ddp" else None
        if self.cfg.compile:
            model = torch.compile(model)
        return model, ddp

    def _batches(self) -> tuple[Batches, Batches | None]:
        plan, cfg, env = self.plan, self.cfg, self.env
        inputs, targets = [s.name for s in plan.inputs], [s.name for s in plan.targets]
        shard = Shard(env.rank, env.world)
        check_training_split(plan, len(self.dataset.train), env.world)
        train = Batches(self.dataset.train.tensors, inputs, targets, cfg.batch_size, shuffle=cfg.data.shuffle,
                        seed=cfg.seed, shard=shard, device=env.device, workers=cfg.data.workers)
        val = None
        if self.dataset.val is not None:
            val = Batches(self.dataset.val.tensors, inputs, targets, cfg.batch_size, shuffle=False, seed=0,
                          shard=shard, device=env.device, workers=cfg.data.workers, tail="merge")
        return train, val

    def _autocast(self):
        precision, device = self.cfg.precision, self.env.device
        if precision == "32":
            return lambda: NO_CONTEXT
        check_precision(self.plan, device)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return partial(torch.autocast, device_type=device.type, dtype=dtype)

    def _seed_training(self) -> None:
        seed = self.cfg.seed + self.env.rank
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % (1 << 32))

    def _restore(self, state: dict) -> None:
        try:
            distributed.load_optimizer(self.raw, self.optimizer, state["optimizer"], self.env)
            self.schedule.load_state_dict(state["scheduler"])
        except (KeyError, IndexError, ValueError, RuntimeError, TypeError) as err:
            raise UsageError(f"the checkpoint's optimizer state does not fit optimizer {self.cfg.optimizer.kind} "
                             f"({type(err).__name__}: {err}); start a new run with another --out") from None
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        if len(rngs) == self.env.world:
            set_rng_state(rngs[self.env.rank])
        else:
            self.log.say(f"note: the checkpoint was written by {len(rngs)} processes, this run has "
                         f"{self.env.world}: random streams restart from the seed")
        self.position = position_from(state)
        self.epoch_so_far = Tally(**state["partial"])
        self.elapsed = state["elapsed"]
        if self.stopper and state["early_stop"]:
            self.stopper.restore(state["early_stop"])
        # decided again: a run that stopped early goes on when resumed with more patience (or none)
        self.stopped_early = state["stopped_early"] and self.stopper is not None and self.stopper.exhausted
        if self.best_watch and state["best"]:
            self.best_watch.restore(state["best"])

    # ---- the run ------------------------------------------------------------------------------
    def fit(self) -> dict:
        started = time.perf_counter() - self.elapsed
        self.clock = lambda: time.perf_counter() - started
        record = None
        try:
            for epoch in range(self.position.epoch, self.cfg.epochs):
                if self.stopped_early:
                    break
                record = self._epoch(epoch)
                stop = self.stopper is not None and self.stopper.exhausted
                self.stopped_early = stop
                self.position = Position(epoch + 1, 0, self.position.step)
                self._save(record)
                if stop:
                    self.log.say(self.stopper.stop_message())
        finally:
            self.log.close()
        if self.env.strategy == "fsdp":
            self.compiled.model = self._whole_model()
        return self._finish(record)

    def _whole_model(self):
        """FSDP leaves the trained model sharded over the processes, its forward a collective that needs
        all of them: what runs after training (the exports, the caller's own use) gets a plain module
        with the whole weights, in every process (gathering them is a collective too)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        from ..backends.torch_fx import build_module

        state = get_model_state_dict(self.raw, options=StateDictOptions(full_state_dict=True))
        dtype = next((v.dtype for v in state.values() if v.is_floating_point()), None)
        model = build_module(self.compiled.ir, device="meta", dtype=dtype).to_empty(device=self.env.device)
        model.load_state_dict(state)
        return model

    def _epoch(self, epoch: int) -> dict:
        tally = self._train_epoch(epoch)
        record = {"epoch": epoch + 1, "step": self.position.step, "train/loss": tally.loss}
        record.update(self._evaluate())
        record.update(lr=self.optimizer.param_groups[0]["lr"], time=round(self.clock(), 3),
                      train_time=round(tally.seconds, 4), samples_per_s=round(tally.rate, 1))
        self.log.epoch(record, self.cfg.epochs)
        for watch in (self.stopper, self.best_watch):
            if watch is not None:
                watch.update(record)
        return record

    def _train_epoch(self, epoch: int) -> Tally:
        model, objective, batches, autocast = self.model, self.objective, self.train_batches, self.autocast
        acc, n, scales = self.cfg.accumulate, len(batches), batches.loss_scales(self.cfg.accumulate)
        log_every, save_every = self.cfg.log_every, self.cfg.checkpoints.every_steps or 0
        start, step = self.position.batch, self.position.step
        tally, self.epoch_so_far = self.epoch_so_far, Tally()
        window: list = []
        self.log.open_bar(epoch, self.cfg.epochs, n, start)
        model.train()
        tick = time.perf_counter()
        for b, batch in enumerate(batches.epoch(epoch, start), start):
            last = (b + 1) % acc == 0 or b == n - 1
            with self._sync(last):
                with autocast():
                    outputs = model(*batch.inputs)
                    loss = objective(outputs if type(outputs) is tuple else (outputs,), batch.targets)
                scale = scales[b]
                self._backward(loss if scale == 1 else loss * scale)
            window.append(loss.detach())
            if not last:
                continue
            self._optimizer_step()
            step += 1
            checkpoint = save_every and step % save_every == 0 and b != n - 1
            if step % log_every == 0 or b == n - 1 or checkpoint:
                tally.seconds += time.perf_counter() - tick
                self.position = Position(epoch, b + 1, step)
                self._log_window(window, tally)
                window = []
                if checkpoint:
                    self._checkpoint_mid_epoch(tally)
                tick = time.perf_counter()
        self.log.close_bar()
        return tally

    def _sync(self, last_micro_batch: bool):
        """DDP syncs gradients on the last micro-batch of an accumulation group only."""
        if self.ddp is None or last_micro_batch:
            return NO_CONTEXT
        return self.ddp.no_sync()

    def _backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def _optimizer_step(self) -> None:
        clip = self.cfg.grad_clip
        if self.scaler is not None:
            if clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.raw.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if clip:
                torch.nn.utils.clip_grad_norm_(self.raw.parameters(), clip)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()

    def _log_window(self, window: list, tally: Tally) -> None:
        """The losses of the batches since the last log, up to `self.position`: every rank agrees on the
        first non-finite one (then stops) and on the sample-weighted loss, which goes into `tally`."""
        losses = torch.stack(window).tolist()
        epoch, first = self.position.epoch, self.position.batch - len(losses)
        bad = distributed.all_min(first_nonfinite(losses, first), self.env)
        if bad != NO_BATCH:
            raise loss_diverged(self.plan, self.ckpts.latest(), epoch, bad, len(self.train_batches),
                                self.steps_per_epoch)
        weights = self.train_batches.local_sizes[first:first + len(losses)]
        loss_sum, samples = distributed.all_sum([sum(v * w for v, w in zip(losses, weights)), sum(weights)],
                                                self.env)
        tally.loss_sum += loss_sum
        tally.samples += int(samples)
        self.log.progress(len(losses), loss_sum / max(1.0, samples), tally.rate, self.position.step)

    @torch.no_grad()
    def _evaluate(self) -> dict:
        if self.val_batches is None:
            return {}
        model = self.eval_model
        model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.env.device)
        samples = 0
        for batch in self.val_batches.epoch(0):
            with self.autocast():
                outputs = model(*batch.inputs)
                outputs = outputs if type(outputs) is tuple else (outputs,)
                loss = self.objective(outputs, batch.targets)
            loss_sum += loss.double() * batch.size
            samples += batch.size
            self.metrics.update(outputs, batch.targets)
        model.train()
        total, count = distributed.all_sum([float(loss_sum), float(samples)], self.env)
        return {"val/loss": total / max(1.0, count), **self.metrics.compute()}

    # ---- checkpoints and the end ------------------------------------------------------------
    def _checkpoint_mid_epoch(self, tally: Tally) -> None:
        """A checkpoint inside the epoch keeps the epoch's tally so far, which a resumed run continues."""
        self.epoch_so_far = tally
        self._save(None)
        self.epoch_so_far = Tally()

    def _save(self, record: dict | None) -> None:
        """A checkpoint of the current position (all ranks take part; rank 0 writes)."""
        model_state, optimizer_state = distributed.full_state(self.raw, self.optimizer, self.env)
        rngs = distributed.gather(rng_state(), self.env)
        finite = all(bool(torch.isfinite(v).all()) for v in model_state.values()
                     if isinstance(v, torch.Tensor) and v.is_floating_point())
        if distributed.all_min(int(finite), self.env) == 0:
            epoch = self.position.epoch - (record is not None)  # after an epoch's end, its position is the next one
            raise weights_diverged(self.plan, self.ckpts.latest(), epoch, self.position.step)
        if not self.env.is_main:
            return
        state = {
            "format": FORMAT, "model": model_state, "optimizer": optimizer_state,
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rngs, "world": self.env.world,
            "position": asdict(self.position),
            "partial": asdict(self.epoch_so_far),
            "early_stop": self.stopper.state() if self.stopper else None,
            "best": self.best_watch.state() if self.best_watch else None,
            "elapsed": self.clock(), "stopped_early": self.stopped_early,
            "normalization": self.dataset.normalization,
            "spec": {"path": str(self.spec.path), "hash": self.spec.content_hash, "model": self.plan.model},
            "train": self.cfg.model_dump(mode="json"),
        }
        # best.pt first: a position checkpoint records the best value, so it must not exist without its weights
        if record is not None and self.best_watch is not None and self.best_watch.improved:
            self.ckpts.save_best(model_state, {"epoch": record["epoch"], "metrics": record,
                                               "normalization": self.dataset.normalization})
        self.ckpts.save_position(state, self.position.step)

    def _finish(self, record: dict | None) -> dict:
        if record is None:  # resumed a finished run: report what it ended with
            records = read_metrics(self.out)
            record = records[-1] if records else {}
        self.log.summary({"final": record, "epochs_run": record.get("epoch"), "seconds": round(self.clock(), 2),
                          "best": ({"monitor": self.best_watch.monitor.key, "value": self.best_watch.best,
                                    "checkpoint": str(self.ckpts.best_path)} if self.best_watch else None),
                          "last_checkpoint": str(self.ckpts.latest())})
        return record
