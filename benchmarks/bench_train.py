"""specc's trainer against a minimal hand-written PyTorch loop and against Lightning's Trainer.

    python benchmarks/bench_train.py [--spec specs/digits_cnn.dlspec] [--rounds 7] [--epochs 6]

The same model (the spec's module), data (the spec's train split, in memory), batch size,
batch order, AdamW and lr schedule for all three. What is timed is the training loop of an
epoch -- batches, forward, loss, backward, optimizer and schedule steps, and each runner's own
per-step bookkeeping (specc's loss tally, NaN check and progress every `log_every` steps;
Lightning's hooks and logging) -- divided by the optimizer steps. Validation and checkpoint
writing are outside the timed span for all three. The first epoch of each run is a warm-up.

specc's loop (Trainer._train_epoch, what `specc train` runs) and the hand-written loop take
turns epoch by epoch, so both see the same machine; Lightning's Trainer runs its own fit next
to them in each round. The ratios are medians over rounds of each round's ratio of per-step
medians. Targets (issue 4): specc / hand-written <= 1.03 and specc / Lightning < 1.
"""
from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import specc
import specc.train.overrides
from specc.train.batches import SEED_STRIDE, Batches
from specc.train.data_load import load_data

ROOT = Path(__file__).resolve().parent.parent


def per_step_median(epoch_seconds: list[float], steps: int) -> float:
    return statistics.median(s / steps for s in epoch_seconds[1:])


class Work:
    """The model and recipe every runner trains: taken from the spec's plan."""

    def __init__(self, spec_path: Path, epochs: int):
        self.spec_path, self.epochs = spec_path, epochs
        compiled = specc.compile(spec_path)
        self.plan = compiled.plan
        cfg = self.plan.config
        self.batch_size, self.lr, self.wd = cfg.batch_size, cfg.optimizer.lr, cfg.optimizer.weight_decay
        self.smoothing = dict(self.plan.losses[0].options).get("label_smoothing", 0.0)
        data = load_data(self.plan.data, self.plan.span).train.tensors
        self.x, self.y = data[self.plan.inputs[0].name], data[self.plan.targets[0].name]
        self.steps = len(Batches(data, [self.plan.inputs[0].name], [], self.batch_size, shuffle=False, seed=0))

    def model(self):
        torch.manual_seed(0)
        return specc.compile(self.spec_path).model

    def batches(self, epoch: int):
        """The same batches as specc's (the order is a function of seed and epoch)."""
        gen = torch.Generator().manual_seed(self.plan.config.seed * SEED_STRIDE + epoch)
        order = torch.randperm(len(self.x), generator=gen)
        for i in range(self.steps):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]

    def lr_factor(self, steps_per_epoch: int):
        total, warmup = self.epochs * steps_per_epoch, steps_per_epoch

        def factor(step: int) -> float:
            cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))))
            return cosine * min(1.0, (step + 1) / warmup)
        return factor


def hand_epochs(work: Work):
    """The loop people write by hand; yields each epoch's seconds per step."""
    model = work.model()
    opt = torch.optim.AdamW(model.parameters(), lr=work.lr, weight_decay=work.wd)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, work.lr_factor(work.steps))
    for epoch in range(work.epochs):
        model.train()
        start = time.perf_counter()
        for x, y in work.batches(epoch):
            loss = F.cross_entropy(model(x), y, label_smoothing=work.smoothing)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
        yield (time.perf_counter() - start) / work.steps


def specc_epochs(work: Work):
    """specc's training loop (Trainer._train_epoch, exactly what `specc train` runs for an epoch's
    steps); validation and checkpoints, which are outside the timed span anyway, are left out."""
    from specc.train import distributed
    from specc.train.checkpoint import Position
    from specc.train.trainer import Trainer

    compiled = specc.compile(work.spec_path)
    plan = specc.train.overrides.with_overrides(compiled, {"epochs": work.epochs}).plan
    with tempfile.TemporaryDirectory() as out, distributed.session(plan) as env:
        trainer = Trainer(compiled, plan, Path(out), env, resume=False, verbose=False)
        for epoch in range(work.epochs):
            start = time.perf_counter()  # the whole call: its NaN checks and tally too, not only tally.seconds
            trainer._train_epoch(epoch)
            seconds = time.perf_counter() - start
            trainer.position = Position(epoch + 1, 0, trainer.position.step)
            yield seconds / len(trainer.train_batches)


def interleaved(work: Work) -> tuple[float, float]:
    """(hand, specc) seconds per step: the two loops take turns epoch by epoch (who goes first alternates)."""
    hand, ours = hand_epochs(work), specc_epochs(work)
    times = {"hand": [], "specc": []}
    for epoch in range(work.epochs):
        pair = (("hand", hand), ("specc", ours)) if epoch % 2 else (("specc", ours), ("hand", hand))
        for name, gen in pair:
            times[name].append(next(gen))
    return statistics.median(times["hand"][1:]), statistics.median(times["specc"][1:])


def run_lightning(work: Work) -> float:
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = work.model()

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.model(x), y, label_smoothing=work.smoothing)

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.model.parameters(), lr=work.lr, weight_decay=work.wd)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, work.lr_factor(work.steps))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    class Epochs:
        """Whole batches, in specc's order (so data loading costs all runners the same)."""

        def __init__(self):
            self.module = None

        def __len__(self):
            return work.steps

        def __iter__(self):
            return work.batches(self.module.current_epoch)

    class Timer(L.Callback):
        def __init__(self):
            self.seconds, self.start = [], 0.0

        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.seconds.append(time.perf_counter() - self.start)

    module, data, timer = Module(), Epochs(), Timer()
    data.module = module
    trainer = L.Trainer(max_epochs=work.epochs, accelerator="cpu", devices=1, logger=False, callbacks=[timer],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=data)
    return per_step_median(timer.seconds, work.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "digits_cnn.dlspec"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    import logging
    import warnings

    import lightning  # noqa: F401 - imported first, so that its logger exists to be quietened
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    work = Work(Path(args.spec), args.epochs)
    interleaved(work), run_lightning(work)  # warm up: imports, allocator, first-call costs
    rows = []
    for r in range(args.rounds):
        if r % 2:
            light = run_lightning(work)
            hand, ours = interleaved(work)
        else:
            hand, ours = interleaved(work)
            light = run_lightning(work)
        rows.append((hand, ours, light))
    hand, ours, light = (statistics.median(col) for col in zip(*rows))
    print(f"{Path(args.spec).name}: batch {work.batch_size}, {work.steps} steps/epoch, {args.epochs} epochs x "
          f"{args.rounds} rounds, torch threads {torch.get_num_threads()}")
    for name, col in zip(("hand", "specc", "lightning"), zip(*rows)):
        print(f"  {name:<9} median {statistics.median(col) * 1e3:7.3f} ms/step, min {min(col) * 1e3:7.3f}   (rounds: "
              + ", ".join(f"{t * 1e3:.2f}" for t in col) + ")")
    print(f"specc / hand-written: {statistics.median(o / h for h, o, _ in rows):.3f} (median of per-round ratios; "
          f"ratio of mins {min(r[1] for r in rows) / min(r[0] for r in rows):.3f})   target <= 1.03")
    print(f"specc / Lightning:    {statistics.median(o / lt for _, o, lt in rows):.3f} (median of per-round ratios; "
          f"ratio of mins {min(r[1] for r in rows) / min(r[2] for r in rows):.3f})   target < 1")


if __name__ == "__main__":
    main()
