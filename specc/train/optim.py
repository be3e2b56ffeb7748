"""Optimizer (with weight-decay parameter groups) and the learning-rate schedule.

Every schedule is one `LambdaLR` whose factor is a pure function of the optimizer step, so a
schedule's whole state is the step count (exact on resume) and warm-up composes with any kind.
Epoch-based settings (warmup_epochs, step_epochs, milestones) are converted with the number of
optimizer steps per epoch.
"""
from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25.0, 1e4  # torch.optim.lr_scheduler.OneCycleLR's defaults


def param_groups(model: nn.Module, weight_decay: float, no_decay) -> list[dict]:
    """Decay the weights; not biases, norms (names containing a `no_decay` entry) or other 1-d params."""
    if weight_decay == 0:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": 0.0}]
    decay, keep = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (keep if p.ndim <= 1 or any(word in name for word in no_decay) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.no_decay)
    if cfg.kind == "SGD":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.kind in ("Adam", "AdamW"):
        cls = torch.optim.AdamW if cfg.kind == "AdamW" else torch.optim.Adam
        return cls(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.alpha, momentum=cfg.momentum, eps=cfg.eps)


def lr_factor(step: int, *, kind: str, steps_per_epoch: int, total_steps: int, warmup_steps: int,
              base_lr: float, options: dict) -> float:
    """The multiplier of the base learning rate after `step` optimizer steps."""
    epoch = step // steps_per_epoch
    progress = min(1.0, max(0.0, (step - warmup_steps) / max(1, total_steps - warmup_steps)))
    if kind == "step":
        factor = options["gamma"] ** (epoch // options["step_epochs"])
    elif kind == "multistep":
        factor = options["gamma"] ** sum(epoch >= m for m in options["milestones"])
    elif kind == "cosine":
        floor = options["min_lr"] / base_lr
        factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    elif kind == "linear":
        factor = 1 + (options["end_factor"] - 1) * progress
    elif kind == "onecycle":
        factor = _onecycle(step, total_steps, options["pct_start"]) * options["max_lr"] / base_lr
    else:
        factor = 1.0
    if warmup_steps and step < warmup_steps:
        factor *= (step + 1) / warmup_steps
    return factor


def _onecycle(step: int, total: int, pct_start: float) -> float:
    """OneCycleLR's cosine phases, as a fraction of max_lr."""
    start, end = 1 / ONECYCLE_DIV, 1 / (ONECYCLE_DIV * ONECYCLE_FINAL_DIV)
    peak = pct_start * total - 1  # the step at max_lr, where torch puts it: 0 or less leaves no rising phase
    if 0 < peak and step <= peak:
        return _cos_anneal(start, 1.0, step / peak)
    return _cos_anneal(1.0, end, min(1.0, (step - peak) / (total - 1 - peak)))


def _cos_anneal(a: float, b: float, t: float) -> float:
    return b + (a - b) / 2 * (1 + math.cos(math.pi * t))


def make_schedule(optimizer, cfg, *, epochs: int, steps_per_epoch: int, base_lr: float):
    options = cfg.model_dump(exclude={"kind", "warmup_epochs"})
    if cfg.kind == "onecycle" and options.get("max_lr") is None:
        options["max_lr"] = base_lr
    factor = partial(lr_factor, kind=cfg.kind, steps_per_epoch=max(1, steps_per_epoch),
                     total_steps=max(1, epochs * steps_per_epoch),
                     warmup_steps=int(round(cfg.warmup_epochs * steps_per_epoch)), base_lr=base_lr, options=options)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
