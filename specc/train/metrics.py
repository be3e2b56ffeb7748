"""Validation metrics through torchmetrics (which also syncs them across DDP ranks)."""
from __future__ import annotations

import torch
from torch import nn

from .plan import MetricSpec, TrainingPlan


def make_metric(spec: MetricSpec):
    import torchmetrics.classification as C
    import torchmetrics.regression as R

    base = "accuracy" if spec.top_k else spec.name
    if spec.task == "regression":
        return {"mae": R.MeanAbsoluteError, "mse": R.MeanSquaredError, "r2": R.R2Score}[base]()
    if spec.task == "binary":
        return {"accuracy": C.BinaryAccuracy, "f1": C.BinaryF1Score, "precision": C.BinaryPrecision,
                "recall": C.BinaryRecall}[base]()
    if spec.task == "multilabel":
        return {"accuracy": C.MultilabelAccuracy, "f1": C.MultilabelF1Score, "precision": C.MultilabelPrecision,
                "recall": C.MultilabelRecall}[base](num_labels=spec.classes)
    cls = {"accuracy": C.MulticlassAccuracy, "f1": C.MulticlassF1Score, "precision": C.MulticlassPrecision,
           "recall": C.MulticlassRecall}[base]
    average = "micro" if base == "accuracy" else "macro"
    return cls(num_classes=spec.classes, top_k=spec.top_k or 1, average=average, ignore_index=spec.ignore_index)


class Metrics(nn.Module):
    """The plan's metrics; `update(outputs, targets)` per batch, `compute()` -> {"val/accuracy": 0.97}."""

    def __init__(self, plan: TrainingPlan):
        super().__init__()
        self.specs = plan.metrics
        self.items = nn.ModuleList(make_metric(s) for s in plan.metrics)

    def update(self, outputs: tuple, targets: tuple) -> None:
        for spec, metric in zip(self.specs, self.items):
            preds, target = _prepare(spec, outputs[spec.output_index], targets[spec.target_index])
            metric.update(preds, target)

    def compute(self) -> dict[str, float]:
        out = {spec.key: float(metric.compute()) for spec, metric in zip(self.specs, self.items)}
        for metric in self.items:
            metric.reset()
        return out


def _prepare(spec: MetricSpec, output: torch.Tensor, target: torch.Tensor):
    output = output.detach().float()
    if spec.task == "regression":  # [N, ...] -> [N, K]; one output per sample -> [N]
        output, target = output.reshape(len(output), -1), target.float().reshape(len(target), -1)
        if output.shape[1] == 1:
            output, target = output[:, 0], target[:, 0]
        return output, target
    if spec.task in ("binary", "multilabel"):
        if spec.task == "binary":
            output, target = output.flatten(), target.flatten()
        # torchmetrics applies the sigmoid only when some value lies outside [0, 1]: a batch of
        # logits all inside it would be taken for probabilities
        return output.sigmoid(), (target > 0.5).long()
    if spec.class_dim == -1 and output.dim() > 2:
        output = output.movedim(-1, 1)
    if target.dtype.is_floating_point:  # class probabilities: score against the most likely class
        target = target.argmax(dim=1 if output.dim() == 2 or spec.class_dim == 1 else -1)
    return output, target
