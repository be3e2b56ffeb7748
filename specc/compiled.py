"""`specc.compile`: spec -> IR -> PyTorch module (+ the training plan)."""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from .errors import Diagnostic, Failed, SpecError, UsageError
from .source import SourceSpan
from .io import machine_memory
from .ir.build import build
from .schema import Spec
from .schema.values import plain


@dataclass(eq=False, repr=False)  # a handle on a mutable model: identity, not value, equality
class Compiled:
    """What `specc.compile` returns: the spec, its checked IR, and the PyTorch module built from it."""

    spec: Spec
    ir: object  # specc.ir.graph.Graph
    model: object  # torch.nn.Module (an fx GraphModule, or its torch.compile'd wrapper)
    _plan: object = field(default=None, repr=False)

    @property
    def plan(self):
        """The training plan (specc.train.plan.TrainingPlan) or None when the spec has no `train` section."""
        if self.spec.train is None:
            return None
        if self._plan is None:
            from .train.plan import make_plan
            self._plan = make_plan(self.spec, self.ir)
        return self._plan

    def __repr__(self) -> str:
        return f"Compiled(model {self.ir.name!r} of {self.spec.path}, {self.ir.param_count:,} parameters)"

    def train(self, out_dir="runs/run", **overrides) -> dict:
        """Run the spec's training recipe in `out_dir`; returns the last epoch's metrics.

        A fresh run starts from the initial weights of the train section's `seed`, replacing the
        model's current weights (a second call starts over); `resume=True` continues the run in
        `out_dir`. The trained weights are left in `.model`. Other keywords: `verbose`, `nproc`,
        and overrides of train settings (`epochs=3`, `**{"optimizer.lr": 1e-3}`)."""
        from .train.trainer import train
        self._require_weights("train")
        return train(self, out_dir=out_dir, **overrides)

    def export(self, target: str, path, **options):
        """Export the model's current weights to onnx | pt2 | aoti | tensorrt at `path` and verify
        the artifact against this model's outputs; returns the result with the verification figures."""
        from .exporters import export
        if not isinstance(target, str):
            raise TypeError(f"target must be the name of an export target such as 'onnx', got {target!r}")
        self._require_weights("export")
        return export(self, target, path, **options)

    def summary(self, depth: int | None = None) -> str:
        """The table of layers (output shape, parameters, MACs) and totals; `depth` collapses deeper nesting."""
        from .summary import summary_table
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)):
            raise TypeError(f"depth must be a whole number or None, got {depth!r}")
        return summary_table(self.ir, depth=depth)

    def _require_weights(self, action: str) -> None:
        """A meta model has no values: training or exporting it would fail deep inside PyTorch."""
        if any(t.is_meta for t in itertools.chain(self.model.parameters(), self.model.buffers())):
            raise UsageError(f"cannot {action} a model built on the meta device (it has shapes but no weights); "
                             "compile it on a real device such as 'cpu' or 'cuda'")


def load_spec(spec_or_path) -> Spec:
    if isinstance(spec_or_path, Spec):
        return spec_or_path
    if not isinstance(spec_or_path, (str, os.PathLike)):
        raise TypeError(f"expected a Spec or the path of a spec file, got {type(spec_or_path).__name__}")
    from .frontend.load import load_file
    return load_file(spec_or_path)


def build_ir(spec: Spec, model: str | None = None, params: dict | None = None):
    """The checked IR of one model; raises SpecError (every diagnostic) when the spec has errors."""
    try:
        graph, diagnostics = build(spec, model, params=params)
    except Failed as failed:
        raise SpecError([failed.diagnostic]) from None
    if diagnostics:
        raise SpecError(diagnostics)
    if graph is None:
        raise SpecError([Diagnostic("E0411", f"{spec.path} defines no model (only blocks or constants)",
                                    SourceSpan.point(str(spec.path), 1, 1), label="no model in this file")])
    return graph


def compile_spec(spec_or_path, *, model=None, device=None, dtype=None, compile=False, params=None) -> Compiled:
    try:
        import torch
    except ImportError:
        raise ModuleNotFoundError("specc.compile needs PyTorch: pip install 'specc[torch]'", name="torch") from None
    from .backends.torch_fx import build_module

    if model is not None and not isinstance(model, str):
        raise TypeError(f"model must be the name of a model in the spec, got {type(model).__name__}")
    if params is not None and not isinstance(params, dict):
        raise TypeError(f"params must be a dict of the model's parameters, got {type(params).__name__}")
    if params and not all(isinstance(name, str) for name in params):
        raise TypeError(f"params must map parameter names (str) to values, got the keys {list(params)!r}")
    params = plain(params)  # numpy's numbers as Python's
    if not isinstance(compile, bool):
        raise TypeError(f"compile must be True or False, got {compile!r}")
    device = _device(device)
    resolved = getattr(torch, dtype.removeprefix("torch."), None) if isinstance(dtype, str) else dtype
    if dtype is not None and not (isinstance(resolved, torch.dtype) and resolved.is_floating_point):
        raise ValueError(f"dtype must be a floating-point dtype such as 'float32' or 'bfloat16', got {dtype!r}")
    dtype = resolved
    spec = load_spec(spec_or_path)
    graph = build_ir(spec, model, params)
    if dtype is None and graph.weight_dtype != "float32":
        dtype = getattr(torch, graph.weight_dtype)
    _check_memory(graph, device, dtype)
    module = build_module(graph, device=device, dtype=dtype)
    if compile:
        module = torch.compile(module)
    return Compiled(spec, graph, module)


def _check_memory(graph, device, dtype) -> None:
    """Refuse, before allocating anything, parameters that cannot fit in the device's memory (they are
    made in float32, then cast)."""
    import torch

    target = device or torch.get_default_device()
    try:
        if target.type == "cuda":
            total = torch.cuda.get_device_properties(target).total_memory
        else:
            total = machine_memory() if target.type == "cpu" else None  # meta needs none; others: PyTorch says
    except (RuntimeError, AssertionError):  # CUDA there but not usable: building will say why
        return
    if total is None:
        return
    need = graph.param_count * max(4, dtype.itemsize if dtype is not None else 4)
    if need > total:
        from .summary import human_bytes
        raise SpecError([Diagnostic("E0601", f"model {graph.name}'s parameters need {human_bytes(need)}, more than "
                                    f"the {human_bytes(total)} of memory this {target.type} device has", graph.span,
                                    help="compile it with device='meta' to look at it without memory")])


def _device(device):
    """torch.device(device), or ValueError naming the problem (a typo, or a device this machine lacks)."""
    import torch

    if device is None:
        return None
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cpu', 'cuda' or 'meta', got {device!r}") from None
    if device.type in ("cuda", "mps") and not getattr(torch, device.type).is_available():
        raise ValueError(f"device {str(device)!r}: this machine has no {device.type.upper()} device "
                         "(or PyTorch was built without it); use 'cpu', or 'meta' to build without memory")
    return device
