"""LSTM, GRU and RNN. `output` picks what the layer returns (a specc param, not passed to torch):
"sequence" the output at every step [N, T, D*H]; "last" the output at the last step [N, D*H];
"hidden" h_n of the last layer [N, D*H] (both directions concatenated when bidirectional).
"""
from __future__ import annotations

from typing import Literal

from .. import dims
from ._shapes import Pos, Prob, RnnLayers, expect_float, expect_rank, fill, static
from .base import Inferred, OpDef, OpParams, register

Output = Literal["sequence", "last", "hidden"]


class LSTMParams(OpParams):
    input_size: int | None = None
    hidden_size: Pos
    num_layers: RnnLayers = 1
    bias: bool = True
    batch_first: bool = True
    dropout: Prob = 0.0
    bidirectional: bool = False
    output: Output = "sequence"


class GRUParams(LSTMParams):
    pass


class RNNParams(OpParams):
    input_size: int | None = None
    hidden_size: Pos
    num_layers: RnnLayers = 1
    nonlinearity: Literal["tanh", "relu"] = "tanh"
    bias: bool = True
    batch_first: bool = True
    dropout: Prob = 0.0
    bidirectional: bool = False
    output: Output = "sequence"


GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _infer(name: str):
    def infer(p, inputs):
        x, = inputs
        expect_rank(name, x, "N, T, C" if p.batch_first else "T, N, C")
        expect_float(name, x)
        p = fill(name, p, "input_size", static(name, x.shape[2], "features", x), "features")
        width = (2 if p.bidirectional else 1) * p.hidden_size
        if p.output == "sequence":
            shape = x.shape[:2] + (width,)
        else:
            shape = (x.shape[0 if p.batch_first else 1], width)
        return Inferred(p, (x.with_shape(shape),))
    return infer


def _layer_inputs(p) -> list[int]:
    """The input width of each layer: input_size, then the previous layer's output."""
    return [p.input_size] + [(2 if p.bidirectional else 1) * p.hidden_size] * (p.num_layers - 1)


def _param_shapes(name: str):
    def shapes(p) -> dict:
        g, h, out = GATES[name] * p.hidden_size, p.hidden_size, {}
        for layer, width in enumerate(_layer_inputs(p)):
            for sfx in ("", "_reverse") if p.bidirectional else ("",):
                out[f"weight_ih_l{layer}{sfx}"] = (g, width)
                out[f"weight_hh_l{layer}{sfx}"] = (g, h)
                if p.bias:
                    out[f"bias_ih_l{layer}{sfx}"] = (g,)
                    out[f"bias_hh_l{layer}{sfx}"] = (g,)
        return out
    return shapes


def _macs(name: str):
    def macs(p, inputs, outputs):  # each step: gates * H * (input width + H), per direction
        steps = dims.mul(inputs[0].shape[0], inputs[0].shape[1])
        per_step = sum(GATES[name] * p.hidden_size * (w + p.hidden_size) for w in _layer_inputs(p))
        return dims.mul(steps, per_step * (2 if p.bidirectional else 1))
    return macs


for _name, _params in (("LSTM", LSTMParams), ("GRU", GRUParams), ("RNN", RNNParams)):
    register(OpDef(
        name=_name, params=_params, infer=_infer(_name),
        doc=f"A multi-layer {_name}: [N, T, C] -> [N, T, D*hidden_size], or [N, D*hidden_size] with "
            "output = \"last\" | \"hidden\".\n"
            "D = 2 if bidirectional else 1. \"last\": the output at the last step; \"hidden\": h_n of the last "
            "layer, both directions concatenated.\n"
            "batch_first = false: [T, N, C] -> [T, N, D*hidden_size], or [N, D*hidden_size].",
        param_shapes=_param_shapes(_name), macs=_macs(_name), inferred=("input_size",),
        positional=tuple(f for f in _params.model_fields if f != "output"),
        category="recurrent", example=f"x |> {_name}(256, output = \"last\")",
    ))
