"""The op interface. Each op is defined once, torch-free: its parameters, shape rule, and
the shapes of the parameters it owns (which give its parameter count).

The torch lowering of each op lives in `specc/backends/torch_ops.py`, keyed by op name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel, ConfigDict

from ..dims import Dim
from ..types import TensorType


class OpParams(BaseModel):
    """Base of every op's parameter model. Field order is the op's positional order (torch's)."""

    # strict: `true` is not a 1, "3" is not a 3 and 2.0 is not a 2
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, strict=True)


class OpError(Exception):
    """Raised by a shape rule; the builder turns it into a Diagnostic located at the call.

    `arg` names the parameter at fault (the diagnostic then points at that argument);
    `input` is the index of the tensor input at fault.
    """

    def __init__(self, message: str, *, code: str = "E0302", arg: str | None = None,
                 input: int | None = None, label: str = "", help: str | None = None):
        super().__init__(message)
        self.message, self.code, self.arg, self.input = message, code, arg, input
        self.label, self.help = label, help


@dataclass(frozen=True)
class Inferred:
    """What a shape rule returns: params with inferred fields filled in, and the output types."""

    params: OpParams
    outputs: tuple[TensorType, ...]


@dataclass(frozen=True)
class OpDef:
    name: str
    params: type[OpParams]
    infer: Callable[[OpParams, tuple[TensorType, ...]], Inferred]
    doc: str
    # parameter tensors the op owns, by state_dict suffix: {"weight": (out, in), "bias": (out,)}
    param_shapes: Callable[[OpParams], dict[str, tuple[int, ...]]] = lambda p: {}
    # multiply-accumulates for one forward pass, from the resolved params and the types
    macs: Callable[[OpParams, tuple[TensorType, ...], tuple[TensorType, ...]], Dim] = lambda p, i, o: 0
    inputs: tuple[int, int | None] = (1, 1)  # min, max tensor inputs (None: any number)
    # params the shape rule fills from the input; a user may still give them (they are then checked)
    inferred: tuple[str, ...] = ()
    # params that may be given positionally, in torch's order (inferred ones included)
    positional: tuple[str, ...] = ()
    category: str = "misc"
    example: str = ""
    # the output is read from the op's own weight (Embedding, Parameter): it has the model's weight
    # dtype, which the builder puts in place of the rule's float32
    outputs_weight: bool = False


OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"op {op.name} registered twice")
    OPS[op.name] = op
    return op
