"""The op registry: every op specc knows, defined once (torch-free) in the modules below.

`OPS` maps an op name (torch's class name: Linear, Conv2d, ...) to its `OpDef`; the torch
lowering of each op lives in `specc/backends/torch_ops.py` under the same name.
"""
from __future__ import annotations

# importing an op module registers its ops
from . import activation, arith, attention, conv, linear, norm, pooling, recurrent, tensor  # noqa: F401
from .base import OPS, Inferred, OpDef, OpError, OpParams, register

__all__ = ["OPS", "Inferred", "OpDef", "OpError", "OpParams", "get_op", "register"]


def get_op(name: str) -> OpDef | None:
    """The op called `name`, or None."""
    return OPS.get(name)
