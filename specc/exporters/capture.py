"""torch.export of a compiled spec with its symbolic dims dynamic: one torch.export.Dim per
spec symbol, shared by every input axis that uses it (BERT's input_ids and token_type_ids
share N and T). Used by the pt2, aoti and tensorrt targets.

When tracing finds that a symbol only works in a narrower range (TextCNN's widest
convolution needs T >= 5), torch.export says so with "suggested fixes"; they are applied
(torch.export.dynamic_shapes.refine_dynamic_shapes_from_suggested_fixes) and the export
retried. A fix that turns a spec symbol into a constant is refused: the artifact would not
take the shapes the spec promises. RNN layers are traced with torch's while_loop
decompositions, so a sequence length stays dynamic through LSTM/GRU.
"""
from __future__ import annotations

import contextlib
import re

from .base import ExportError, Job, Signature

MAX_REFINEMENTS = 3


def dynamic_shapes(sig: Signature, bounds: dict | None = None):
    """A tuple (one entry per input) of {axis: Dim}, or None for a model without symbols.
    `bounds` maps a symbol to (min, max); the default is [1, unbounded)."""
    from torch.export import Dim

    if not sig.symbols:
        return None
    bounds = bounds or {}
    dims = {}
    for sym in sig.symbols:
        lo, hi = bounds.get(sym, (1, None))
        dims[sym] = Dim(sym, min=lo) if hi is None else Dim(sym, min=lo, max=hi)
    shapes = []
    for spec in sig.inputs:
        axes = {}
        for axis, d in enumerate(spec.shape):
            if isinstance(d, str):
                axes[axis] = dims[d] if d in dims else Dim.AUTO  # an expression such as 2*T
        shapes.append(axes or None)
    return tuple(shapes)


@contextlib.contextmanager
def rnn_decompositions():
    """LSTM/GRU as torch.while_loop while tracing, so a sequence length is not specialised."""
    try:
        from torch.export._patches import (
            register_gru_while_loop_decomposition,
            register_lstm_while_loop_decomposition,
        )
    except ImportError:  # an older torch: the default (unrolled) decomposition
        yield
        return
    with fresh_rnn_dispatch(), register_lstm_while_loop_decomposition(), register_gru_while_loop_decomposition():
        yield


@contextlib.contextmanager
def fresh_rnn_dispatch():
    """Forget the RNN ops' cached kernels on entry and exit. torch's while_loop registration
    swaps the ops' py_kernels but not the op's dispatch cache, so whichever decomposition a
    trace met first would otherwise stay for the whole process (torch.onnx registers the same
    patch around its own capture: this keeps the two from spoiling each other)."""
    import torch

    ops = [getattr(getattr(torch.ops.aten, name, None), overload, None)
           for name in ("lstm", "gru") for overload in ("input", "data")]
    ops = [op for op in ops if op is not None and hasattr(op, "_dispatch_cache")]
    for op in ops:
        op._dispatch_cache.clear()
    try:
        yield
    finally:
        for op in ops:
            op._dispatch_cache.clear()


def export_program(job: Job, bounds: dict | None = None):
    """torch.export.export(strict=False) of the job's model at its example inputs."""
    from torch._dynamo.exc import UserError
    from torch.export.dynamic_shapes import refine_dynamic_shapes_from_suggested_fixes

    shapes = dynamic_shapes(job.signature, bounds)
    for _ in range(MAX_REFINEMENTS):
        try:
            return _export(job, shapes)
        except UserError as err:
            message = str(getattr(err, "msg", err))
            if "Suggested fixes:" in message:
                refined = refine_dynamic_shapes_from_suggested_fixes(message, shapes)
                _refuse_specialised(job.signature, refined)
                shapes = refined
                continue
            violated = _VIOLATED.search(message)
            if violated is None or bounds:
                raise
            # a guard no Dim range states (TextCNN: T - 4 != 1): torch infers those symbols' ranges,
            # the others keep theirs (a batch of 1 stays in N's)
            inferred = _inferred(shapes, set(violated[1].split(", ")))
            if inferred == shapes:  # they were inferred already: let torch infer every range
                break
            shapes = inferred
    return _export(job, automatic_shapes(job.signature))


_VIOLATED = re.compile(r"Constraints violated \(([^)]*)\)")


def _inferred(shapes, symbols: set[str]):
    """`shapes` with Dim.DYNAMIC for the axes of `symbols`: torch infers their ranges."""
    from torch.export import Dim

    return tuple(None if axes is None else
                 {axis: Dim.DYNAMIC if getattr(dim, "__name__", None) in symbols else dim for axis, dim in axes.items()}
                 for axes in shapes)


def _export(job: Job, shapes):
    import torch

    with rnn_decompositions():
        return torch.export.export(job.model, job.example.inputs, dynamic_shapes=shapes, strict=False)


def automatic_shapes(sig: Signature):
    """Dim.DYNAMIC on every symbolic axis: torch infers the ranges and which axes are equal."""
    from torch.export import Dim

    if not sig.symbols:
        return None
    return tuple({axis: Dim.DYNAMIC for axis, d in enumerate(spec.shape) if isinstance(d, str)} or None
                 for spec in sig.inputs)


def _refuse_specialised(sig: Signature, shapes) -> None:
    """A suggested fix that makes a spec symbol a constant: fail, naming the symbol."""
    for spec, axes in zip(sig.inputs, shapes or ()):
        for axis, d in (axes or {}).items():
            name = spec.shape[axis]
            if isinstance(d, int) and isinstance(name, str):
                raise ExportError(
                    "E0801",
                    f"torch.export cannot keep `{name}` dynamic: tracing specialises it to {d} "
                    f"(input `{spec.name}`, axis {axis})",
                    help="the model computes something that depends on the exact size; "
                         "see the exporter's output with -v")


def shape_facts(ep, sig: Signature) -> dict:
    """The manifest's account of the shapes the program takes: `dims`, the range per symbol, and
    `guards`, the conditions torch.export added that no range states (TextCNN: `((-4) + T) != 1`,
    so T = 5 is refused though its range starts at 5), when there are any."""
    facts = {"dims": dim_ranges(ep, sig)}
    conditions = guards(ep, sig)
    if conditions:
        facts["guards"] = conditions
    return facts


def guards(ep, sig: Signature) -> list[str]:
    """The exported program's input guards (torch.export's `_guards_code`), in the spec's names:
    `L['tokens'].size()[1]` becomes `T`. Equalities that a shared symbol states (`N == N`: two
    inputs' batch dims) are left out."""
    shapes = {spec.name: spec.shape for spec in sig.inputs}

    def size_name(match) -> str:
        shape = shapes.get(match[1])
        axis = int(match[2])
        return str(shape[axis]) if shape is not None and axis < len(shape) else match[0]
    out = []
    for code in getattr(ep, "_guards_code", None) or ():
        condition = _SIZE.sub(size_name, code)
        sides = condition.split(" == ")
        if condition not in out and not (len(sides) == 2 and sides[0] == sides[1]):
            out.append(condition)
    return out


_SIZE = re.compile(r"L\['(\w+)'\]\.size\(\)\[(\d+)\]")


def dim_ranges(ep, sig: Signature) -> dict:
    """{"N": {"min": 1, "max": null}, ...}: the range the exported program accepts per symbol."""
    import torch

    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder"]
    user_inputs = [n for n in placeholders if n.name in set(ep.graph_signature.user_inputs)]
    out = {}
    for spec, node in zip(sig.inputs, user_inputs):
        val = node.meta.get("val")
        for axis, d in enumerate(spec.shape):
            if not isinstance(d, str) or d in out or val is None:
                continue
            size = val.shape[axis]
            if isinstance(size, torch.SymInt):
                vr = ep.range_constraints.get(size.node.expr)
                out[d] = {"min": _bound(vr.lower) if vr else None, "max": _bound(vr.upper) if vr else None}
            else:
                out[d] = {"min": int(size), "max": int(size)}
    return out


def _bound(value):
    """An int, or None for an unbounded end (sympy's oo / torch's int_oo)."""
    from torch.utils._sympy.numbers import IntInfinity, NegativeIntInfinity

    if isinstance(value, (IntInfinity, NegativeIntInfinity)) or getattr(value, "is_finite", True) is False:
        return None
    v = int(value)
    return v if abs(v) < 2**62 else None
