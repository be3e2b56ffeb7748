"""Checked IR -> torch.fx GraphModule, built directly from the IR (no tracing).

Submodules sit at the paths the spec names (so state_dict keys are `layer1.0.conv1.weight`),
the generated `forward` is plain readable PyTorch, and every fx node carries its spec
location in `meta["stack_trace"]`, so a runtime error points back into the .dlspec.
"""
from __future__ import annotations

import math
import operator

import torch
from torch import fx, nn

from ..ir.graph import Graph, Layer
from ..source import source_line
from . import torch_ops


def build_module(graph: Graph, *, device=None, dtype=None) -> fx.GraphModule:
    root = nn.Module()
    with torch.device(device) if device is not None else _nullcontext():
        for path, layer in graph.layers.items():
            module = torch_ops.lower_module(layer.op, layer.params)
            if module is not None:
                _install(root, path, module)
                if layer.init:
                    _initialise(module, layer.init)
    for tie in graph.ties:
        _tie(root, tie.target, tie.source)
    gm = fx.GraphModule(root, _fx_graph(graph, root), class_name=graph.name)
    type(gm)._wrapped_call = _SpecLocatedCall(type(gm)._wrapped_call)
    if dtype is not None:
        gm = gm.to(dtype=dtype)
    return gm


class _SpecLocatedCall:
    """Wraps the GraphModule's call: an exception raised inside the generated forward gets a
    note naming the spec line that made the failing node (PEP 678 notes print with the trace)."""

    def __init__(self, call):
        self.call = call

    def __call__(self, obj, *args, **kwargs):
        try:
            return self.call(obj, *args, **kwargs)
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


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


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
    """The spec's `init = ...` on a layer: weight by kind, bias (if any) to zero."""
    kind = init["kind"]
    args = {k: v for k, v in init.items() if k != "kind"}
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    if not isinstance(weight, torch.Tensor):
        return
    with torch.no_grad():
        if kind == "normal":
            nn.init.normal_(weight, args.get("mean", 0.0), args.get("std", 1.0))
        elif kind == "trunc_normal":
            std = args.get("std", 1.0)
            nn.init.trunc_normal_(weight, args.get("mean", 0.0), std, args.get("a", -2 * std), args.get("b", 2 * std))
        elif kind in ("xavier", "xavier_uniform"):
            nn.init.xavier_uniform_(weight, args.get("gain", 1.0))
        elif kind == "xavier_normal":
            nn.init.xavier_normal_(weight, args.get("gain", 1.0))
        elif kind in ("kaiming", "kaiming_normal"):
            nn.init.kaiming_normal_(weight, mode=args.get("mode", "fan_out"), nonlinearity=args.get("nonlinearity", "relu"))
        elif kind == "kaiming_uniform":
            nn.init.kaiming_uniform_(weight, a=args.get("a", math.sqrt(5)), mode=args.get("mode", "fan_in"))
        elif kind == "zeros":
            nn.init.zeros_(weight)
        elif kind == "ones":
            nn.init.ones_(weight)
        elif kind == "constant":
            nn.init.constant_(weight, args.get("value", 0.0))
        else:
            raise ValueError(f"unknown init `{kind}`")
        if isinstance(bias, torch.Tensor) and kind not in ("zeros", "ones", "constant"):
            nn.init.zeros_(bias)


INIT_KINDS = ("normal", "trunc_normal", "xavier", "xavier_uniform", "xavier_normal", "kaiming", "kaiming_normal",
              "kaiming_uniform", "zeros", "ones", "constant")


def _fx_graph(graph: Graph, root: nn.Module) -> fx.Graph:
    g = fx.Graph()
    env: dict[str, fx.Node] = {vid: g.placeholder(vid) for vid in graph.inputs}
    for node in graph.nodes:
        layer: Layer = graph.layers[node.layer]
        target = node.layer if _has_module(root, node.layer) else None
        before = len(g.nodes)
        outs = torch_ops.emit(g, layer.op, tuple(env[i] for i in node.inputs), layer.params, target)
        trace = _stack_trace(graph, node)
        for fx_node in list(g.nodes)[before:]:
            fx_node.meta["stack_trace"] = trace
        for fx_node, vid in zip(outs, node.outputs):
            fx_node.meta.setdefault("specc_value", vid)  # the IR value this fx node computes
            env[vid] = fx_node
    results = [env[v] for v in graph.outputs]
    g.output(results[0] if len(results) == 1 else tuple(results))
    _relu_in_place(g, root)
    g.lint()
    return g


# Producers whose backward needs only their inputs, so their output may be overwritten.
_OVERWRITABLE_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                         nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)
_OVERWRITABLE_FUNCTIONS = {operator.add, operator.sub}


def _relu_in_place(g: fx.Graph, root: nn.Module) -> None:
    """torch.relu -> torch.relu_ where that is safe, as hand-written code does with
    nn.ReLU(inplace=True) after conv/bn: it saves one activation's memory and time."""
    for node in g.nodes:
        if node.op != "call_function" or node.target is not torch.relu:
            continue
        source = node.args[0]
        if not isinstance(source, fx.Node) or len(source.users) != 1:
            continue
        overwritable = (source.op == "call_module" and isinstance(root.get_submodule(source.target),
                                                                  _OVERWRITABLE_MODULES)) \
            or (source.op == "call_function" and source.target in _OVERWRITABLE_FUNCTIONS)
        if overwritable:
            node.target = torch.relu_


def _has_module(root: nn.Module, path: str) -> bool:
    try:
        root.get_submodule(path)
        return True
    except AttributeError:
        return False


def _stack_trace(graph: Graph, node) -> str:
    """Python-traceback-shaped text naming the spec line (and the block uses), innermost first."""
    frames = [(node.span, graph.name)] + [(n.span, n.message) for n in node.notes if n.span is not None]
    lines = []
    for span, where in reversed(frames):
        src = (source_line(span.file, span.line) or "").strip()
        lines.append(f'  File "{span.file}", line {span.line}, column {span.col}, in {where}\n    {src}')
    return "\n".join(lines)
