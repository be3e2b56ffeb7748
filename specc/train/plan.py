"""The training plan: the `train` section checked against the model's IR before anything runs.

`make_plan(spec, ir)` resolves every name the recipe uses (outputs, targets, metrics,
monitors), checks that each target fits its loss, and probes the data source (files, columns,
array shapes). Problems are collected as located diagnostics and raised together as one
SpecError; what comes out is a frozen `TrainingPlan` that the trainer and the Lightning
engine execute. Torch-free, like the rest of the frontend.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from ..errors import Diagnostic, Failed, SpecError, did_you_mean, guess_or_known
from ..ir import dims as D
from ..ir.types import DTYPES, FLOAT_DTYPES, TensorType
from ..schema.train import CLASS_LOSSES, HIGHER_IS_BETTER, REGRESSION_LOSSES, REGRESSION_METRICS, TrainConfig
from .data import DataPlan, Slot, TargetUse, probe_data


@dataclass(frozen=True)
class LossTerm:
    """One term of the objective: weight * kind(outputs[index], targets[target_index])."""

    kind: str
    output: str
    index: int
    target: str
    target_index: int
    weight: float
    class_dim: int  # where the classes are in the output: 1 (torch's layout) or -1 (last)
    options: tuple[tuple[str, object], ...] = ()  # keyword arguments of torch.nn.functional's loss


@dataclass(frozen=True)
class MetricSpec:
    """A validation metric on the first loss's output and target (torchmetrics)."""

    name: str  # accuracy, top5, f1, ..., mae
    task: str  # multiclass | binary | multilabel | regression
    output_index: int
    target_index: int
    class_dim: int = -1
    classes: int | None = None
    top_k: int | None = None
    ignore_index: int | None = None

    @property
    def key(self) -> str:
        return f"val/{self.name}"


@dataclass(frozen=True)
class Monitor:
    key: str  # val/loss, val/accuracy, train/loss
    mode: str  # min | max
    patience: int = 0
    min_delta: float = 0.0

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta


@dataclass(frozen=True)
class TrainingPlan:
    spec: object  # the Spec (for locating runtime errors) -- frozen
    config: TrainConfig
    model: str
    inputs: tuple[Slot, ...]
    outputs: tuple[Slot, ...]
    targets: tuple[Slot, ...]
    losses: tuple[LossTerm, ...]
    metrics: tuple[MetricSpec, ...]
    data: DataPlan
    early_stop: Monitor | None
    best: Monitor | None  # the metric best.pt is kept by

    def span(self, *path):
        """The location of a setting of the train section (for errors found while training)."""
        return self.spec.span("train", *path)



def make_plan(spec, ir) -> TrainingPlan:
    """Check the train section against the IR; raises SpecError with every problem found."""
    plan, diagnostics = check_plan(spec, ir)
    if diagnostics:
        raise SpecError(diagnostics)
    return plan


def check_plan(spec, ir) -> tuple[TrainingPlan | None, list[Diagnostic]]:
    """(plan, diagnostics): the plan is None when there is a problem. Never raises on a bad spec
    (`specc check` runs this for a spec with a train section)."""
    checker = _Checker(spec, ir)
    plan = checker.plan()
    return (None if checker.diagnostics else plan), list(checker.diagnostics)


# ---- target types ---------------------------------------------------------------------------
def parse_tensor_type(text: str, file: str, sizes: Mapping[str, int] = MappingProxyType({})) -> TensorType:
    """`int64[N]` -> TensorType, a name in `sizes` read as its value; raises ValueError with a message."""
    from ..frontend import ast as A
    from ..frontend.parse import parse
    from ..frontend.transform import to_ast

    try:
        node = to_ast(parse(str(text), file, start="type_line"), file)
    except Failed:
        raise ValueError(f"`{text}` is not a tensor type such as int64[N] or float32[N, 10]") from None
    if not isinstance(node, A.TensorTypeExpr) or node.dtype is None:
        raise ValueError(f"`{text}` is not a tensor type such as int64[N] or float32[N, 10]")
    if node.dtype not in DTYPES:
        guess = did_you_mean(node.dtype, DTYPES)
        raise ValueError(f"unknown dtype `{node.dtype}`" + (f"; {guess}" if guess else ""))
    return TensorType(node.dtype, tuple(_dim(d, sizes) for d in node.dims))


def _dim(expr, sizes: Mapping[str, int]):
    from ..frontend import ast as A
    from ..ir.evaluate import EvalError, binary, is_dim

    if isinstance(expr, A.Literal) and is_dim(expr.value) and expr.value >= 0:
        return expr.value
    if isinstance(expr, A.Name):
        return sizes[expr.id] if expr.id in sizes else D.Sym.var(expr.id)
    if isinstance(expr, A.BinOp):
        value = _dim(expr.first, sizes)
        for op, operand in expr.rest:
            try:
                value = binary(op, value, _dim(operand, sizes))
            except EvalError as err:
                raise ValueError(err.message) from None
        return value
    raise ValueError("a dimension must be a size, a symbol such as N, or arithmetic on them")


# ---- loss/target fit --------------------------------------------------------------------------
def loss_fit(kind: str, out: TensorType, tgt: TensorType) -> tuple[int, str | None, str | None]:
    """(class_dim, problem, help) for a loss on `out` against `tgt`; problem is None when they fit."""
    if out.dtype not in FLOAT_DTYPES:
        return -1, f"{kind} needs a floating-point output, but it is {out}", None
    if kind in CLASS_LOSSES:
        return _class_fit(kind, out, tgt)
    if kind == "bce_with_logits" and tgt.dtype not in FLOAT_DTYPES:
        return -1, f"bce_with_logits needs float targets (0/1 or probabilities) of the output's shape, " \
                   f"but the target is {tgt}", f"declare it as float32{D.fmt_shape(out.shape)}"
    if tgt.dtype not in FLOAT_DTYPES:
        return -1, f"{kind} needs a float target, but the target is {tgt}", \
            f"declare it as float32{D.fmt_shape(out.shape)}"
    if tuple(tgt.shape) != tuple(out.shape):
        hint = " (torch would broadcast the two and silently compute the wrong loss)" \
            if _broadcastable(out.shape, tgt.shape) else ""
        return -1, f"{kind} needs a target of the output's shape {D.fmt_shape(out.shape)}, " \
                   f"but the target is {tgt}{hint}", f"declare it as {tgt.dtype}{D.fmt_shape(out.shape)}"
    return -1, None, None


def _class_fit(kind: str, out: TensorType, tgt: TensorType):
    if out.rank < 2:
        return -1, f"{kind} needs logits with a class dimension ([N, C]), but the output is {out}", None
    classes_last = tuple(out.shape[:-1])
    classes_at_1 = tuple(out.shape[:1] + out.shape[2:])
    if tgt.dtype in FLOAT_DTYPES:
        if kind == "nll":
            return -1, f"nll needs int64 class indices, but the target is {tgt}", \
                f"declare it as int64{D.fmt_shape(classes_last)}"
        if tuple(tgt.shape) == tuple(out.shape):
            return -1, None, None  # class probabilities, same layout as the logits
        return -1, f"{kind} with float targets needs class probabilities of the logits' shape " \
                   f"{D.fmt_shape(out.shape)}, but the target is {tgt}", \
            f"for class indices declare int64{D.fmt_shape(classes_last)}"
    if tgt.dtype != "int64":
        return -1, f"{kind} needs int64 class indices{' ' + D.fmt_shape(classes_last)} for logits {out}, " \
                   f"but the target is {tgt}", f"declare it as int64{D.fmt_shape(classes_last)}"
    if tuple(tgt.shape) == classes_last:
        return (1 if out.rank == 2 else -1), None, None
    if out.rank > 2 and tuple(tgt.shape) == classes_at_1:
        return 1, None, None
    return -1, f"{kind} needs class indices int64{D.fmt_shape(classes_last)} for logits {out}, " \
               f"but the target is {tgt}", f"declare it as int64{D.fmt_shape(classes_last)}"


def _broadcastable(a, b) -> bool:
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and x != 1 and y != 1:
            return False
    return True


# ---- the checker ---------------------------------------------------------------------------
class _Checker:
    def __init__(self, spec, ir):
        self.spec, self.ir = spec, ir
        self.cfg: TrainConfig = spec.train
        self.diagnostics: list[Diagnostic] = []

    def error(self, message: str, *path, label: str = "", help: str | None = None, code: str = "E0701"):
        self.diagnostics.append(Diagnostic(code, message, self.spec.span("train", *path), label=label, help=help))

    def plan(self) -> TrainingPlan | None:
        inputs = self._inputs()
        outputs = self._outputs()
        targets = self._targets()
        losses = self._losses(outputs, targets)
        metrics = self._metrics(outputs, losses)
        data = self._data(inputs, targets, losses, outputs)
        has_val = data.has_val if data is not None else True
        early_stop = self._early_stop(has_val)
        best = self._best(early_stop, has_val)
        self._schedule()
        if self.diagnostics:
            return None
        return TrainingPlan(self.spec, self.cfg, self.ir.name, inputs, outputs, targets, losses, metrics,
                            data, early_stop, best)

    # -- the model's side
    def _inputs(self) -> tuple[Slot, ...]:
        slots = []
        for vid in self.ir.inputs:
            value = self.ir.values[vid]
            if not value.type.shape or D.is_static(value.type.shape[0]):
                self.diagnostics.append(Diagnostic(
                    "E0701", f"training needs a batch dimension: input `{vid}` is {value.type}", value.span,
                    label="first dimension is not symbolic",
                    help="make the first dimension the batch symbol, e.g. float32[N, ...]"))
            slots.append(Slot(vid, value.type))
        return tuple(slots)

    def _outputs(self) -> tuple[Slot, ...]:
        return tuple(Slot(name, self.ir.values[vid].type) for name, vid in zip(self.ir.output_names, self.ir.outputs))

    def _targets(self) -> tuple[Slot, ...]:
        slots = []
        for name, text in self.cfg.targets.items():
            try:
                ttype = parse_tensor_type(text, self.spec.path, self.ir.sizes)
            except ValueError as err:
                self.error(f"target `{name}`: {err}", "targets", name, label="not a tensor type")
                continue
            if not ttype.shape or D.is_static(ttype.shape[0]):
                self.error(f"target `{name}` needs a batch dimension first, like the inputs (int64[N])",
                           "targets", name, label=f"{ttype}")
                continue
            slots.append(Slot(name, ttype))
        return tuple(slots)

    # -- losses
    def _loss_path(self, i: int) -> tuple:
        return ("loss", i) if isinstance(self.cfg.loss, list) else ("loss",)

    def _losses(self, outputs, targets) -> tuple[LossTerm, ...]:
        terms = []
        for i, loss in enumerate(self.cfg.losses):
            term = self._loss(i, loss, outputs, targets)
            if term is not None:
                terms.append(term)
        return tuple(terms)

    def _loss(self, i, loss, outputs, targets) -> LossTerm | None:
        where = self._loss_path(i)
        out_index = self._pick(loss.output, [s.name for s in outputs], "output", where,
                               f"the model's outputs are {_names(outputs)}")
        tgt_index = self._pick(loss.target, [s.name for s in targets], "target", where,
                               "declared targets: " + (_names(targets) or "none"))
        if out_index is None or tgt_index is None:
            return None
        out, tgt = outputs[out_index], targets[tgt_index]
        class_dim, problem, help_ = loss_fit(loss.kind, out.type, tgt.type)
        if problem is not None:
            path = where + ("target",) if loss.target is not None else ("targets", tgt.name)
            self.error(problem, *path, label=f"{tgt.name}: {tgt.type}, {out.name}: {out.type}", help=help_)
            return None
        return LossTerm(loss.kind, out.name, out_index, tgt.name, tgt_index, loss.weight, class_dim,
                        _loss_options(loss))

    def _pick(self, name, names: list[str], what: str, where: tuple, known: str) -> int | None:
        if name is None:
            if len(names) == 1:
                return 0
            if not names:
                self.error(f"the loss needs a {what}, and there is none" +
                           (": declare one in `targets { label = int64[N] }`" if what == "target" else ""),
                           *where, label=f"no {what}")
            else:
                self.error(f"the loss must name its {what}: there are several ({', '.join(names)})",
                           *where, label=f"which {what}?", help=f"add `{what} = {names[0]}`")
            return None
        if name in names:
            return names.index(name)
        self.error(f"the loss's {what} `{name}` is not one of the model's {what}s" if what == "output"
                   else f"the loss's target `{name}` is not declared", *where, what,
                   label=f"unknown {what}", help=guess_or_known(name, names) if names else known)
        return None

    # -- metrics
    def _metrics(self, outputs, losses) -> tuple[MetricSpec, ...]:
        if not self.cfg.metrics or not losses:
            return ()
        first = losses[0]
        out = outputs[first.index].type
        specs = []
        for name in self.cfg.metrics:
            metric = self._metric(name, first, out)
            if isinstance(metric, str):
                self.error(metric, "metrics", label="does not fit the loss")
            else:
                specs.append(metric)
        return tuple(specs)

    def _metric(self, name: str, loss: LossTerm, out: TensorType):
        top_k = int(name[3:]) if name.startswith("top") else None
        base = "accuracy" if top_k else name
        if base in REGRESSION_METRICS:
            if loss.kind in CLASS_LOSSES:
                return f"metric `{name}` is for regression, but the loss is {loss.kind} (classification)"
            return MetricSpec(name, "regression", loss.index, loss.target_index)
        if loss.kind in REGRESSION_LOSSES:
            return f"metric `{name}` is for classification, but the loss is {loss.kind} (regression)"
        if loss.kind == "bce_with_logits":
            if top_k:
                return f"metric `{name}` needs a multiclass loss (cross_entropy or nll), not bce_with_logits"
            per_sample = D.prod(out.shape[1:])
            if per_sample == 1:
                return MetricSpec(name, "binary", loss.index, loss.target_index)
            labels = out.shape[-1]
            if not D.is_static(labels):
                return f"metric `{name}` needs a fixed number of labels, but the output is {out}"
            return MetricSpec(name, "multilabel", loss.index, loss.target_index, classes=labels)
        classes = out.shape[loss.class_dim]
        if not D.is_static(classes):
            return f"metric `{name}` needs a fixed number of classes, but the output is {out}"
        if top_k is not None and not 1 <= top_k <= classes:
            return f"metric `{name}` asks for the top {top_k} of {classes} classes"
        return MetricSpec(name, "multiclass", loss.index, loss.target_index, loss.class_dim, classes, top_k,
                          dict(loss.options).get("ignore_index"))

    # -- data
    def _data(self, inputs, targets, losses, outputs) -> DataPlan | None:
        target_uses = {}
        for term in losses:
            size = outputs[term.index].type.shape[term.class_dim] if term.kind in CLASS_LOSSES else None
            target_uses[term.target] = TargetUse(term.kind, size if isinstance(size, int) else None,
                                                 dict(term.options).get("ignore_index"))
        plan, diagnostics = probe_data(self.cfg.data, self.spec.folder, inputs, targets, target_uses, self.ir,
                                       lambda *p: self.spec.span("train", "data", *p))
        self.diagnostics += diagnostics
        return plan

    # -- monitors
    def _known_keys(self, has_val: bool) -> list[str]:
        """What a run logs (a metric that failed its own check counts: its error is reported already)."""
        keys = ["train/loss"]
        if has_val:
            keys += ["val/loss"] + [f"val/{name}" for name in self.cfg.metrics]
        return keys

    def _monitor(self, key: str, mode: str, has_val: bool, path: tuple) -> str | None:
        known = self._known_keys(has_val)
        if key in known:
            return mode if mode != "auto" else ("max" if key.split("/")[-1].startswith(HIGHER_IS_BETTER + ("top",))
                                                else "min")
        if key.startswith("val/") and not has_val:
            self.error(f"`{key}` needs a validation split, but data.val_fraction is 0 and there is no val_path",
                       *path, "monitor", label="no validation data", help="set data.val_fraction, or monitor train/loss")
        else:
            help_ = did_you_mean(key, known) or \
                f"logged: {', '.join(known)}" + ("; add the metric to `metrics`" if key.startswith("val/") else "")
            self.error(f"cannot monitor `{key}`: it is not logged", *path, "monitor", label="unknown metric", help=help_)
        return None

    def _early_stop(self, has_val: bool) -> Monitor | None:
        es = self.cfg.early_stop
        if es is None:
            return None
        mode = self._monitor(es.monitor, es.mode, has_val, ("early_stop",))
        return Monitor(es.monitor, mode, es.patience, es.min_delta) if mode else None

    def _best(self, early_stop, has_val: bool) -> Monitor | None:
        ck = self.cfg.checkpoints
        if ck.monitor is not None:
            mode = self._monitor(ck.monitor, ck.mode, has_val, ("checkpoints",))
            return Monitor(ck.monitor, mode) if mode else None
        if early_stop is not None:
            return Monitor(early_stop.key, early_stop.mode)
        return Monitor("val/loss", "min") if has_val else None

    # -- schedule
    def _schedule(self) -> None:
        sched = self.cfg.schedule
        if sched.kind == "multistep":
            ms = list(sched.milestones)
            if ms != sorted(ms) or len(set(ms)) != len(ms) or (ms and ms[0] < 1):
                self.error("milestones must be increasing epoch numbers", "schedule", "milestones",
                           label="not increasing")


def _loss_options(loss) -> tuple:
    if loss.kind == "cross_entropy":
        return (("label_smoothing", loss.label_smoothing), ("ignore_index", loss.ignore_index))
    if loss.kind == "nll":
        return (("ignore_index", loss.ignore_index),)
    if loss.kind == "huber":
        return (("delta", loss.delta),)
    return ()


def _names(slots) -> str:
    return ", ".join(s.name for s in slots)

