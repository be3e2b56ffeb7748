"""Elementwise activations, Softmax/LogSoftmax and Dropout: the output type is the input type."""
from __future__ import annotations

from typing import Literal

from ._shapes import Prob, expect_float, norm_dim
from .base import Inferred, OpDef, OpParams, register


class NoParams(OpParams):
    pass


class GELUParams(OpParams):
    approximate: Literal["none", "tanh"] = "none"


class LeakyReLUParams(OpParams):
    negative_slope: float = 0.01


class SoftmaxParams(OpParams):
    dim: int = -1


class DropoutParams(OpParams):
    p: Prob = 0.5


class ActivationParams(OpParams):
    # torch's names, as nn.TransformerEncoderLayer(activation="gelu") takes them
    name: Literal["relu", "relu6", "gelu", "silu", "tanh", "sigmoid", "hardswish"]


def _same(name: str):
    def infer(p, inputs):
        x, = inputs
        expect_float(name, x)
        if isinstance(p, SoftmaxParams):
            norm_dim(name, p.dim, x.rank)
        return Inferred(p, (x,))
    return infer


_ELEMENTWISE = [
    ("ReLU", NoParams, "max(x, 0)", "x |> ReLU"),
    ("ReLU6", NoParams, "min(max(x, 0), 6)", "x |> ReLU6"),
    ("GELU", GELUParams, "Gaussian error linear unit; approximate = \"tanh\" for the tanh form",
     "x |> GELU(approximate = \"tanh\")"),
    ("SiLU", NoParams, "x * sigmoid(x) (swish)", "x |> SiLU"),
    ("Tanh", NoParams, "tanh(x)", "x |> Tanh"),
    ("Sigmoid", NoParams, "1 / (1 + exp(-x))", "x |> Sigmoid"),
    ("LeakyReLU", LeakyReLUParams, "x if x > 0 else negative_slope * x", "x |> LeakyReLU(0.1)"),
    ("Hardswish", NoParams, "x * relu6(x + 3) / 6", "x |> Hardswish"),
    ("Softmax", SoftmaxParams, "Softmax over `dim` (default the last)", "logits |> Softmax"),
    ("LogSoftmax", SoftmaxParams, "log(softmax(x)) over `dim` (default the last)", "logits |> LogSoftmax"),
    ("Dropout", DropoutParams, "Zeroes elements with probability p while training; identity in eval",
     "x |> Dropout(0.1)"),
    ("Activation", ActivationParams, "The activation a block parameter names (one of relu, relu6, gelu, silu, "
     "tanh, sigmoid, hardswish), as torch's activation=\"gelu\"; another name is an error",
     "h |> Activation(activation)"),
]

for _name, _params, _doc, _example in _ELEMENTWISE:
    register(OpDef(
        name=_name, params=_params, infer=_same(_name), doc=f"{_doc}: [*] -> [*], floating point.",
        positional=tuple(_params.model_fields),
        category="dropout" if _name == "Dropout" else "activation", example=_example,
    ))
