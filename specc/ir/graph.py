"""The IR: an immutable typed graph. Values carry a dtype and a shape of ints and symbols."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Mapping

from ..errors import Note
from ..source import SourceSpan
from .dims import Dim
from .ops.base import OpParams
from .types import FLOAT_DTYPES, TensorType


@dataclass(frozen=True, slots=True)
class BlockUse(Note):
    """The note "in block B, used at ..." an expansion puts on what it makes; `block` is B."""

    block: str = ""


@dataclass(frozen=True, slots=True)
class Value:
    id: str  # unique in the graph; the name the user gave it where there is one
    type: TensorType
    span: SourceSpan | None = None


@dataclass(frozen=True, slots=True)
class Layer:
    """One op instance with its own parameters, at a module path ("layer1.0.conv1")."""

    path: str
    op: str
    params: OpParams  # resolved: inferred sizes filled in
    span: SourceSpan
    init: Mapping | None = None  # {"kind": "normal", "std": 0.02}
    block: str | None = None  # the block this layer was expanded from


@dataclass(frozen=True, slots=True)
class Node:
    """One application of a layer. A layer applied twice (shared weights) has two nodes."""

    id: str
    layer: str  # key into Graph.layers
    inputs: tuple[str, ...]  # value ids
    outputs: tuple[str, ...]
    span: SourceSpan
    notes: tuple[BlockUse, ...] = ()  # the block expansions this node came from, innermost first
    macs: Dim = 0


@dataclass(frozen=True, slots=True)
class Tie:
    target: str  # "head.weight": this parameter ...
    source: str  # "wte.weight": ... is this one
    span: SourceSpan


@dataclass(frozen=True)
class Graph:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    values: Mapping[str, Value]
    nodes: tuple[Node, ...]
    layers: Mapping[str, Layer]
    ties: tuple[Tie, ...] = ()
    symbols: tuple[str, ...] = ()
    span: SourceSpan | None = None
    output_names: tuple[str, ...] = ()  # the spec's names for `outputs` (`output logits`)
    sizes: Mapping[str, int] = field(default_factory=dict)  # the model's whole-number params and constants

    def __post_init__(self):
        for name in ("values", "layers", "sizes"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def __reduce__(self):  # a MappingProxyType cannot be pickled or deep-copied: rebuild from plain dicts
        values = (getattr(self, f.name) for f in fields(self))
        return type(self), tuple(dict(v) if isinstance(v, MappingProxyType) else v for v in values)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every distinct trainable parameter, by state_dict key (tied ones appear once)."""
        from .ops import OPS

        tied = {t.target for t in self.ties}
        out = {}
        for path, layer in self.layers.items():
            for name, shape in OPS[layer.op].param_shapes(layer.params).items():
                key = f"{path}.{name}"
                if key not in tied:
                    out[key] = tuple(shape)
        return out

    @property
    def param_count(self) -> int:
        return sum(math.prod(shape) for shape in self.param_shapes().values())

    def layer_param_count(self, path: str) -> int:
        """Parameters a layer owns (tied ones included)."""
        from .ops import OPS
        layer = self.layers[path]
        return sum(math.prod(s) for s in OPS[layer.op].param_shapes(layer.params).values())

    @property
    def weight_dtype(self) -> str:
        """The dtype specc.compile gives the weights: the inputs' floating-point dtype when they agree
        on one (float64 inputs make a float64 model), else float32."""
        return weight_dtype(self.values[v].type.dtype for v in self.inputs)

    def block_groups(self) -> dict[str, str]:
        """Group path -> block name, for the groups that are block instances.

        A group is an instance of block B when the layers directly in it come from B while the layers
        of the enclosing level do not (a named list inside a block shares the block's layers' `block`).
        """
        direct: dict[str, str | None] = {}
        for path, layer in self.layers.items():
            direct.setdefault(path.rpartition(".")[0], layer.block)
        groups = {p for path in self.layers for p in group_prefixes(path)}
        out = {}
        for group in sorted(groups, key=lambda g: g.count(".")):
            if group not in direct:
                continue
            outer = group.rpartition(".")[0]
            while outer and outer not in direct:
                outer = outer.rpartition(".")[0]
            if direct[group] is not None and direct[group] != direct.get(outer):
                out[group] = direct[group]
        return out

    @property
    def macs(self) -> Dim:
        from .dims import add
        total: Dim = 0
        for node in self.nodes:
            total = add(total, node.macs)
        return total


def group_prefixes(path: str) -> list[str]:
    """The groups a layer path sits in, outermost first: `layer1.0.conv1` -> `layer1`, `layer1.0`."""
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def weight_dtype(input_dtypes) -> str:
    """A model's weight dtype from its inputs' dtypes: their floating-point dtype when they agree on
    one (float64 inputs make a float64 model), else float32."""
    floats = set(input_dtypes) & set(FLOAT_DTYPES)
    return floats.pop() if len(floats) == 1 else "float32"
