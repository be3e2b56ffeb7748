"""The torch lowering of every op in `specc.ir.ops.OPS`, keyed by op name.

An op that owns parameters or state has a `module` factory (an `nn.Module` with PyTorch's
default init; the fx backend installs it at `target`) and, by default, is emitted as
`self.<target>(*inputs)`. Every other op is emitted as a plain functional call (torch.relu,
F.max_pool2d, operator.add, x.flatten(1)), so the generated `forward` reads like hand-written
PyTorch and runs as fast. Only torch, operator and builtins appear in the graph, never specc.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..ir.ops import OpParams

Nodes = tuple[fx.Node, ...]
Emit = Callable[[fx.Graph, Nodes, OpParams, "str | None"], Nodes]


@dataclass(frozen=True)
class Lowering:
    module: Callable[[OpParams], nn.Module] | None = None
    emit: Emit | None = None  # None: `self.<target>(*inputs)`, for module ops


LOWERINGS: dict[str, Lowering] = {}


def lower_module(op_name: str, params: OpParams) -> nn.Module | None:
    """The module a stateful op owns (installed at the target path), or None."""
    factory = LOWERINGS[op_name].module
    return factory(params) if factory else None


def emit(graph: fx.Graph, op_name: str, inputs: Nodes, params: OpParams, target: str | None) -> Nodes:
    """Add the op to `graph`; return its output nodes (one per output of the op's shape rule)."""
    lowering = LOWERINGS[op_name]
    if lowering.emit is not None:
        return lowering.emit(graph, inputs, params, target)
    return (graph.call_module(target, tuple(inputs)),)


# --- helpers -------------------------------------------------------------------------------

def changed(p: OpParams, *names: str) -> dict:
    """The named params that differ from their defaults (to keep generated calls short)."""
    fields = type(p).model_fields
    return {n: getattr(p, n) for n in names if getattr(p, n) != fields[n].default}


def torch_module(cls: type[nn.Module], exclude: tuple[str, ...] = (), **extra) -> Callable:
    """A factory cls(**params, **extra), leaving out specc-only params."""
    def factory(p: OpParams) -> nn.Module:
        return cls(**module_kwargs(p, exclude, extra))
    factory.cls, factory.exclude, factory.extra = cls, exclude, extra  # for `specc emit`
    return factory


def module_kwargs(p: OpParams, exclude=(), extra=None) -> dict:
    """The torch constructor's keyword arguments: the op's fields (frozen, so read as they are)."""
    return {**{k: v for k, v in p.__dict__.items() if k not in exclude}, **(extra or {})}


def module_source(op_name: str, params: OpParams, skip_init: bool = False) -> str | None:
    """Python source that builds the op's module (`nn.Linear(in_features=4, ...)`), for `specc emit`;
    `skip_init`: without PyTorch's default init (`nn.utils.skip_init(nn.Linear, ...)`)."""
    factory = LOWERINGS[op_name].module
    if factory is None:
        return None
    if op_name == "Parameter":
        return f"_Parameter({tuple(params.shape)!r})"
    import inspect

    torch_defaults = {k: v.default for k, v in inspect.signature(factory.cls).parameters.items()}
    kwargs = {k: v for k, v in module_kwargs(params, factory.exclude, factory.extra).items()
              if torch_defaults.get(k, inspect.Parameter.empty) != v}
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    if skip_init:
        return f"nn.utils.skip_init(nn.{factory.cls.__name__}{', ' if args else ''}{args})"
    return f"nn.{factory.cls.__name__}({args})"


def init_call(init: dict) -> tuple[str, dict]:
    """The spec's `init = kind(args)` as the nn.init function for the weight and its arguments."""
    kind, a = init["kind"], init
    mean, std = a.get("mean", 0.0), a.get("std", 1.0)
    if kind == "normal":
        return "normal_", {"mean": mean, "std": std}
    if kind == "trunc_normal":  # cut at mean ± 2 std by default (nn.init's default cuts at ±2)
        return "trunc_normal_", {"mean": mean, "std": std, "a": a.get("a", mean - 2 * std),
                                 "b": a.get("b", mean + 2 * std)}
    if kind in ("xavier", "xavier_uniform", "xavier_normal"):
        return ("xavier_normal_" if kind == "xavier_normal" else "xavier_uniform_"), {"gain": a.get("gain", 1.0)}
    if kind in ("kaiming", "kaiming_normal"):  # torchvision's conv init: fan_out, relu
        return "kaiming_normal_", {"mode": a.get("mode", "fan_out"), "nonlinearity": a.get("nonlinearity", "relu")}
    if kind == "kaiming_uniform":  # PyTorch's own Linear/Conv default
        return "kaiming_uniform_", {"a": a.get("a", math.sqrt(5)), "mode": a.get("mode", "fan_in")}
    if kind == "constant":
        return "constant_", {"val": a.get("value", 0.0)}
    if kind in ("zeros", "ones"):
        return f"{kind}_", {}
    raise ValueError(f"unknown init `{kind}`")


def function(fn, args=lambda p: (), kwargs=lambda p: {}) -> Lowering:
    """fn(*inputs, *args(p), **kwargs(p))."""
    return Lowering(emit=lambda g, ins, p, t: (g.call_function(fn, (*ins, *args(p)), kwargs(p)),))


def method(name: str, args=lambda p: (), kwargs=lambda p: {}) -> Lowering:
    """inputs[0].name(*args(p), **kwargs(p))."""
    return Lowering(emit=lambda g, ins, p, t: (g.call_method(name, (*ins, *args(p)), kwargs(p)),))


# --- layers with parameters or state ---------------------------------------------------------

for _name in ("Linear", "Embedding", "Dropout", "LayerNorm", "GroupNorm", "RMSNorm",
              *(f"{k}{n}d" for k in ("Conv", "ConvTranspose", "BatchNorm") for n in (1, 2, 3))):
    LOWERINGS[_name] = Lowering(module=torch_module(getattr(nn, _name)))


def _emit_rnn(lstm: bool):
    def emit_(g, ins, p, target) -> Nodes:
        """out, h_n = rnn(x) (LSTM: out, (h_n, c_n)); then the output that p.output selects."""
        result = g.call_module(target, tuple(ins))
        if p.output != "hidden":
            out = g.call_function(operator.getitem, (result, 0))
            if p.output == "last":  # out[:, -1] (batch first) or out[-1]
                out = g.call_method("select", (out, int(p.batch_first), -1))
            return (out,)
        h_n = g.call_function(operator.getitem, (result, 1))
        if lstm:
            h_n = g.call_function(operator.getitem, (h_n, 0))
        if not p.bidirectional:  # h_n: [num_layers * directions, N, H]; the last layer's
            return (g.call_function(operator.getitem, (h_n, -1)),)
        fwd, bwd = (g.call_function(operator.getitem, (h_n, i)) for i in (-2, -1))
        return (g.call_function(torch.cat, ([fwd, bwd],), {"dim": -1}),)
    return emit_


for _name in ("LSTM", "GRU", "RNN"):
    LOWERINGS[_name] = Lowering(module=torch_module(getattr(nn, _name), exclude=("output",)),
                                emit=_emit_rnn(_name == "LSTM"))


def _emit_mha(g, ins, p, target) -> Nodes:
    """attn(q, k, v, need_weights=False[, attn_mask=causal mask, is_causal=True])[0]."""
    q, k, v = (tuple(ins) + (ins[-1],) * 2)[:3]
    kwargs = {"need_weights": False}
    if p.causal:  # mask[i, j] = True (not allowed) for j > i
        device = g.call_function(getattr, (q, "device"))
        length = (g.call_method("size", (q, 1)),)
        length += length if k is q else (g.call_method("size", (k, 1)),)
        ones = g.call_function(torch.ones, length, {"dtype": torch.bool, "device": device})
        kwargs |= {"attn_mask": g.call_method("triu", (ones, 1)), "is_causal": True}
    return (g.call_function(operator.getitem, (g.call_module(target, (q, k, v), kwargs), 0)),)


LOWERINGS["MultiheadAttention"] = Lowering(
    module=torch_module(nn.MultiheadAttention, exclude=("causal",), batch_first=True), emit=_emit_mha)


def _parameter(p) -> nn.Module:
    """A plain module holding one zero-initialised nn.Parameter `weight` (so '<layer>.weight')."""
    holder = nn.Module()
    holder.weight = nn.Parameter(torch.zeros(tuple(p.shape)))
    return holder


LOWERINGS["Parameter"] = Lowering(module=_parameter,
                                  emit=lambda g, ins, p, t: (g.get_attr(f"{t}.weight"),))


# --- activations ---------------------------------------------------------------------------

ACTIVATIONS = {"relu": torch.relu, "relu6": F.relu6, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh,
               "sigmoid": torch.sigmoid, "hardswish": F.hardswish}
for _name in ("ReLU", "ReLU6", "SiLU", "Tanh", "Sigmoid", "Hardswish"):
    LOWERINGS[_name] = function(ACTIVATIONS[_name.lower()])
LOWERINGS["Activation"] = Lowering(emit=lambda g, ins, p, t: (g.call_function(ACTIVATIONS[p.name], tuple(ins)),))
LOWERINGS["GELU"] = function(F.gelu, kwargs=lambda p: changed(p, "approximate"))
LOWERINGS["LeakyReLU"] = function(F.leaky_relu, args=lambda p: (p.negative_slope,))
LOWERINGS["Softmax"] = function(torch.softmax, kwargs=lambda p: {"dim": p.dim})
LOWERINGS["LogSoftmax"] = function(torch.log_softmax, kwargs=lambda p: {"dim": p.dim})


# --- pooling and resampling ----------------------------------------------------------------

for _n in (1, 2):
    LOWERINGS[f"MaxPool{_n}d"] = function(
        getattr(F, f"max_pool{_n}d"), args=lambda p: (p.kernel_size,),
        kwargs=lambda p: changed(p, "stride", "padding", "dilation", "ceil_mode"))
    LOWERINGS[f"AvgPool{_n}d"] = function(
        getattr(F, f"avg_pool{_n}d"), args=lambda p: (p.kernel_size,),
        kwargs=lambda p: changed(p, "stride", "padding", "ceil_mode", "count_include_pad"))
    for _kind in ("avg", "max"):
        LOWERINGS[f"Adaptive{_kind.capitalize()}Pool{_n}d"] = function(
            getattr(F, f"adaptive_{_kind}_pool{_n}d"), args=lambda p: (p.output_size,))

LOWERINGS["Upsample"] = function(
    F.interpolate, kwargs=lambda p: changed(p, "size", "scale_factor", "mode", "align_corners"))


# --- attention -----------------------------------------------------------------------------

def _emit_sdpa(g, ins, p, target) -> Nodes:
    kwargs = changed(p, "is_causal", "scale")
    if p.dropout_p:  # dropout only while training, like nn.MultiheadAttention: self.training * p
        kwargs["dropout_p"] = g.call_function(operator.mul, (g.get_attr("training"), p.dropout_p))
    return (g.call_function(F.scaled_dot_product_attention, tuple(ins), kwargs),)


LOWERINGS["ScaledDotProductAttention"] = Lowering(emit=_emit_sdpa)


# --- shape ops -----------------------------------------------------------------------------

LOWERINGS["Flatten"] = method("flatten", args=lambda p: (p.start_dim, p.end_dim))
LOWERINGS["Unflatten"] = method("unflatten", args=lambda p: (p.dim, p.sizes))
LOWERINGS["Permute"] = method("permute", args=lambda p: tuple(p.dims))
LOWERINGS["Transpose"] = method("transpose", args=lambda p: (p.dim0, p.dim1))
LOWERINGS["Select"] = method("select", args=lambda p: (p.dim, p.index))
LOWERINGS["Identity"] = Lowering(emit=lambda g, ins, p, t: tuple(ins))


def _emit_reshape(g, ins, p, target) -> Nodes:
    """x.reshape(...), with each 0 ("keep this size") replaced by x.size(i)."""
    x, = ins
    shape = [g.call_method("size", (x, i)) if s == 0 else s for i, s in enumerate(p.shape)]
    return (g.call_method("reshape", (x, *shape)),)


def _emit_slice(g, ins, p, target) -> Nodes:
    """x[:, ..., start:end:step] (dim counted from the end when negative), after checking that a
    symbolic size reaches the ends the inferred shape assumes (a shorter slice would not fail here,
    but in some later layer, or not at all)."""
    x, = ins
    if p.assumes is not None:
        size = g.call_method("size", (x, p.dim))
        g.call_function(torch._assert, (g.call_function(operator.ge, (size, p.assumes)),
                                        f"Slice assumes dim {p.dim} has {p.assumes} or more positions"))
    index = slice(p.start or None, p.end, None if p.step == 1 else p.step)
    if p.dim >= 0:
        key = (slice(None),) * p.dim + (index,)
    else:
        key = (Ellipsis, index) + (slice(None),) * (-p.dim - 1)
    return (g.call_function(operator.getitem, (x, key)),)


def _emit_split(g, ins, p, target) -> Nodes:
    """pieces = torch.split(x, sections, dim=d) (or torch.chunk); then pieces[0], pieces[1], ..."""
    if hasattr(p, "chunks"):
        pieces, n = g.call_function(torch.chunk, (*ins, p.chunks), {"dim": p.dim}), p.chunks
    else:  # the shape rule resolved an int split size to the list of sections
        sections = p.split_size_or_sections
        pieces, n = g.call_function(torch.split, (*ins, sections), {"dim": p.dim}), len(sections)
    return tuple(g.call_function(operator.getitem, (pieces, i)) for i in range(n))


def _emit_expand_as(g, ins, p, target) -> Nodes:
    """src.expand(ref.size(0), -1, -1): ref's size at the listed dims, src's (-1) elsewhere."""
    src, ref = ins
    listed = {d % p.rank for d in p.dims}
    sizes = [g.call_method("size", (ref, d)) if d in listed else -1 for d in range(p.rank)]
    return (g.call_method("expand", (src, *sizes)),)


def _emit_positions(g, ins, p, target) -> Nodes:
    """torch.arange(x.size(dim), device=x.device)."""
    x, = ins
    device = g.call_function(getattr, (x, "device"))
    return (g.call_function(torch.arange, (g.call_method("size", (x, p.dim)),), {"device": device}),)


LOWERINGS["Reshape"] = Lowering(emit=_emit_reshape)
LOWERINGS["Slice"] = Lowering(emit=_emit_slice)
LOWERINGS["Split"] = LOWERINGS["Chunk"] = Lowering(emit=_emit_split)
LOWERINGS["Concat"] = Lowering(
    emit=lambda g, ins, p, t: (g.call_function(torch.cat, (list(ins),), {"dim": p.dim}),))
LOWERINGS["ExpandAs"] = Lowering(emit=_emit_expand_as)
LOWERINGS["Positions"] = Lowering(emit=_emit_positions)


# --- arithmetic ----------------------------------------------------------------------------

for _name, _fn in (("Add", operator.add), ("Sub", operator.sub), ("Mul", operator.mul),
                   ("Div", operator.truediv)):
    LOWERINGS[_name] = function(_fn, args=lambda p: () if p.other is None else (p.other,))
LOWERINGS["MatMul"] = function(operator.matmul)
for _name in ("Mean", "Sum"):  # x.mean(dim=1); keepdim needs dim, even when it is None (all)
    LOWERINGS[_name] = method(_name.lower(), kwargs=lambda p: {"dim": p.dim, "keepdim": True} if p.keepdim
                              else changed(p, "dim"))
