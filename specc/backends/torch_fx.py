"""Checked IR -> torch.fx GraphModule, built directly from the IR (no tracing).

Submodules sit at the paths the spec names (so state_dict keys are `layer1.0.conv1.weight`),
the generated `forward` is plain readable PyTorch, and every fx node carries its spec
location in `meta["stack_trace"]`, so a runtime error points back into the .dlspec.
"""
from __future__ import annotations

import contextlib
import operator

import torch
from torch import fx, nn
from torch.overrides import TorchFunctionMode

from ..ir.graph import Graph, Layer
from ..source import source_line
from . import torch_ops


def build_module(graph: Graph, *, device=None, dtype=None) -> fx.GraphModule:
    root = nn.Module()
    tied = {tie.target for tie in graph.ties}
    # torch.device(...) as a context routes every tensor factory through a Python mode: only when asked
    device = torch.device(device) if device is not None else None
    with torch.device(device) if device is not None else contextlib.nullcontext(), \
            _NoInitOnMeta() if device is not None and device.type == "meta" else contextlib.nullcontext():
        target_device = torch.get_default_device()
        for path, layer in graph.layers.items():
            module = _make_module(layer, target_device, tied)
            if module is not None:
                _install(root, path, module)
    for tie in graph.ties:
        _tie(root, tie.target, tie.source)
    gm = SpecModule(root, _fx_graph(graph, root), graph.name, graph.ties)
    if dtype is not None:
        gm = gm.to(dtype=dtype)
    return gm


class SpecModule(fx.GraphModule):
    """The compiled model: an fx GraphModule whose runtime errors carry a note naming the spec line
    that made the failing node, and whose tied parameters stay tied through `to_empty()` (which gives
    every module a Parameter of its own off the meta device); copies (`copy.deepcopy`) keep both."""

    def __init__(self, root: nn.Module, graph: fx.Graph, class_name: str, ties=()):
        super().__init__(root, graph, class_name)
        self._ties = tuple(ties)

    def recompile(self):
        code = super().recompile()
        type(self)._wrapped_call = _SpecLocatedCall(type(self))  # fx makes a class per instance
        return code

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        for tie in self._ties:
            _tie(self, tie.target, tie.source)
        return self

    def __deepcopy__(self, memo):
        copy = super().__deepcopy__(memo)  # a SpecModule made again from the graph, as fx makes copies
        copy._ties = self._ties
        type(copy).__name__ = type(self).__name__
        return copy


def _make_module(layer: Layer, device: torch.device, tied: set[str]) -> nn.Module | None:
    """The layer's module with PyTorch's default init, or with the spec's `init` when it has one.

    PyTorch's default init costs as much as the spec's, so it is not run where it would be thrown
    away: a module whose every tensor is overwritten, by the spec's init (weight and bias) or by a
    tie to another layer's parameter (GPT-2's LM head), is made on the meta device, then given
    real, empty storage if it keeps any tensor of its own."""
    if device.type == "meta" or not overwritten_tensors(layer, tied):
        return torch_ops.lower_module(layer.op, layer.params)
    with torch.device("meta"):
        module = torch_ops.lower_module(layer.op, layer.params)
    if module is None:
        return None
    if not default_init_is_dead(module, layer, tied):  # other state too (a BatchNorm's running stats)
        module = torch_ops.lower_module(layer.op, layer.params)
    elif all(name in tied_tensors(layer, tied) for name, _ in module.named_parameters()):
        return module  # every parameter tied: the ties replace these meta ones
    else:
        module = module.to_empty(device=device)
    if layer.init:
        _initialise(module, layer.init)
    return module


def tied_tensors(layer: Layer, tied: set[str]) -> set[str]:
    """The names of the layer's parameters that a `tie` replaces by another layer's."""
    return {name.rpartition(".")[2] for name in tied if name.rpartition(".")[0] == layer.path}


def overwritten_tensors(layer: Layer, tied: set[str]) -> set[str]:
    """The names of the layer's tensors that the spec's `init` or a `tie` overwrites after construction."""
    return tied_tensors(layer, tied) | ({"weight", "bias"} if layer.init else set())


def default_init_is_dead(module: nn.Module, layer: Layer, tied: set[str]) -> bool:
    """Whether the spec's init or ties overwrite all that PyTorch's default init makes in the layer's
    module: it has no buffer, and no parameter of its own keeps its initial values."""
    overwritten = overwritten_tensors(layer, tied)
    return bool(overwritten) and next(module.buffers(), None) is None and \
        all(name in overwritten for name, _ in module.named_parameters())


class _NoInitOnMeta(TorchFunctionMode):
    """On the meta device there is no data to initialise, so `nn.init` calls and random fills
    return at once. (Otherwise the first of them in a process imports torch._dynamo: about a second.)"""

    SKIPPED = {torch.Tensor.normal_, torch.Tensor.uniform_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.SKIPPED or getattr(func, "__module__", None) == "torch.nn.init":
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


class _SpecLocatedCall:
    """Replaces fx's call wrapper: an exception raised inside the generated forward gets a
    note naming the spec line that made the failing node (PEP 678 notes print with the trace).

    fx's own wrapper drops the traceback of an error raised by a line of the generated forward itself
    (`torch.cat`, `h + x`), which is where the failing line is found, and prints its own report."""

    def __init__(self, cls):
        self.cls = cls

    def __call__(self, obj, *args, **kwargs):
        try:
            return super(self.cls, obj).__call__(*args, **kwargs)
        except Exception as err:
            trace = _failing_node_trace(obj, err.__traceback__)
            if trace:
                err.add_note(f"specc: raised by the model at\n{trace}")
            raise


def _failing_node_trace(gm: fx.GraphModule, tb) -> str | None:
    """The stack_trace of the fx node whose generated line raised, found from the traceback."""
    lineno = None
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "forward" and "eval_with_key" in tb.tb_frame.f_code.co_filename:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    if lineno is None:
        return None
    lines = gm.code.splitlines()
    if not 0 < lineno <= len(lines):
        return None
    name = lines[lineno - 1].strip().split(" = ", 1)[0].split(",")[0].strip()
    for node in gm.graph.nodes:
        if node.name == name:
            return node.meta.get("stack_trace")
    return None


def _install(root: nn.Module, path: str, module: nn.Module) -> None:
    """root.<a>.<b>.<c> = module, creating plain containers for the intermediate names."""
    *parents, leaf = path.split(".")
    parent = root
    for name in parents:
        if not hasattr(parent, name):
            parent.add_module(name, nn.Module())
        parent = getattr(parent, name)
    parent.add_module(leaf, module)


def _tie(root: nn.Module, target: str, source: str) -> None:
    """Make parameter `target` the very same nn.Parameter as `source` (counted once)."""
    module_path, _, name = target.rpartition(".")
    setattr(root.get_submodule(module_path), name, root.get_parameter(source))


def _initialise(module: nn.Module, init: dict) -> None:
    """The spec's `init = ...` on a layer: the weight by kind, the bias (if any) to zero."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return
    function, kwargs = torch_ops.init_call(init)
    with torch.no_grad():
        getattr(nn.init, function)(weight, **kwargs)
        if getattr(module, "padding_idx", None) is not None:  # as nn.Embedding's own init does
            weight[module.padding_idx].zero_()
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def _fx_graph(graph: Graph, root: nn.Module) -> fx.Graph:
    g = fx.Graph()
    env: dict[str, fx.Node] = {vid: g.placeholder(vid) for vid in graph.inputs}
    modules = dict(root.named_modules())
    last = next(reversed(g.nodes), None)
    for node in graph.nodes:
        layer: Layer = graph.layers[node.layer]
        target = node.layer if node.layer in modules else None
        outs = torch_ops.emit(g, layer.op, tuple(env[i] for i in node.inputs), layer.params, target)
        trace = _stack_trace(graph.name, node)
        for fx_node in _nodes_after(g, last):
            fx_node.meta["stack_trace"] = trace
            last = fx_node
        for fx_node, vid in zip(outs, node.outputs):
            fx_node.meta.setdefault("specc_value", vid)  # the IR value this fx node computes
            env[vid] = fx_node
    results = [env[v] for v in graph.outputs]
    g.output(results[0] if len(results) == 1 else tuple(results))
    _relu_in_place(g, modules)
    g.lint()
    return g


def _nodes_after(g: fx.Graph, last: fx.Node | None) -> list[fx.Node]:
    """The nodes added to `g` since `last` (all of them when None), oldest first."""
    new = []
    for fx_node in reversed(g.nodes):
        if fx_node is last:
            break
        new.append(fx_node)
    return new[::-1]


# Producers whose backward needs only their inputs, so their output may be overwritten.
_OVERWRITABLE_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                         nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)
_OVERWRITABLE_FUNCTIONS = {operator.add, operator.sub}


def _relu_in_place(g: fx.Graph, modules: dict[str, nn.Module]) -> None:
    """torch.relu -> torch.relu_ where that is safe, as hand-written code does with
    nn.ReLU(inplace=True) after conv/bn: it saves one activation's memory and time."""
    for node in g.nodes:
        if node.op != "call_function" or node.target is not torch.relu:
            continue
        source = node.args[0]
        if not isinstance(source, fx.Node) or len(source.users) != 1:
            continue
        overwritable = (source.op == "call_module" and isinstance(modules[source.target], _OVERWRITABLE_MODULES)) \
            or (source.op == "call_function" and source.target in _OVERWRITABLE_FUNCTIONS)
        if overwritable:
            node.target = torch.relu_


def _stack_trace(model_name: str, node) -> str:
    """Python-traceback-shaped text, outermost first: the block uses in the model and in the blocks,
    then the spec line that made the node, each frame naming where its line is."""
    uses = [n for n in reversed(node.notes) if n.span is not None]
    wheres = [model_name] + [f"block {n.block}" for n in uses]  # the lines after a use are in its block
    lines = []
    for span, where in zip([n.span for n in uses] + [node.span], wheres):
        src = (source_line(span.file, span.line) or "").strip()
        lines.append(f'  File "{span.file}", line {span.line}, column {span.col}, in {where}\n    {src}')
    return "\n".join(lines)
