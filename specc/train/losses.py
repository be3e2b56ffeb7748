"""The objective: the weighted sum of the plan's loss terms, each a torch.nn.functional loss."""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from ..schema.train import CLASS_LOSSES, IGNORE_INDEX
from .plan import LossTerm, TrainingPlan


def _classes_last_to_flat(fn, logits, target):
    """[N, ..., C] logits (classes last, as transformers emit them) -> the [M, C] layout torch expects."""
    if logits.dim() > 2:
        logits = logits.flatten(0, -2)
        target = target.flatten(0, -2) if target.dtype.is_floating_point else target.flatten()
    return fn(logits, target)


def _nothing_kept_is_zero(fn, ignore_index: int, output, target):
    """torch's loss, except that a batch whose labels are all ignore_index gives 0 rather than torch's NaN
    (a mean over no labels), which would stop the run as diverged. Its gradient is 0 either way."""
    loss = fn(output, target)
    if target.dtype.is_floating_point:  # class probabilities: nothing is ignored
        return loss
    return torch.where((target != ignore_index).any(), loss, 0.0)


def _float_target(fn, output, target):
    return fn(output, target.to(output.dtype))


def term_function(term: LossTerm):
    """f(output, target) -> scalar loss for one term."""
    options = dict(term.options)
    if term.kind in CLASS_LOSSES:
        loss = F.cross_entropy if term.kind == "cross_entropy" else F.nll_loss
        fn = partial(_nothing_kept_is_zero, partial(loss, **options), options.get("ignore_index", IGNORE_INDEX))
        return partial(_classes_last_to_flat, fn) if term.class_dim == -1 else fn
    fn = {"mse": F.mse_loss, "l1": F.l1_loss, "bce_with_logits": F.binary_cross_entropy_with_logits,
          "huber": partial(F.huber_loss, **options)}[term.kind]
    return partial(_float_target, fn)


class Objective:
    """loss(outputs, targets) = sum_i weight_i * loss_i(outputs[out_i], targets[tgt_i])."""

    def __init__(self, plan: TrainingPlan):
        self.terms = tuple((term.index, term.target_index, term.weight, term_function(term)) for term in plan.losses)
        self.single = len(self.terms) == 1 and self.terms[0][2] == 1.0

    def __call__(self, outputs: tuple, targets: tuple) -> torch.Tensor:
        if self.single:
            i, j, _, fn = self.terms[0]
            return fn(outputs[i], targets[j])
        total = None
        for i, j, weight, fn in self.terms:
            value = weight * fn(outputs[i], targets[j])
            total = value if total is None else total + value
        return total
