"""Every op's shape rule and parameter shapes against the real torch lowering.

For each case: resolve the params with the op's shape rule, build the module and the fx graph
through `specc.backends.torch_ops`, run it on real tensors, and compare output shapes and
dtypes, and the parameter names and shapes, with what the shape rule predicted.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from specc.backends.torch_ops import LOWERINGS, emit, lower_module
from specc.ir import dims
from specc.ir.ops import OPS
from specc.ir.ops.base import OpError
from specc.ir.types import TensorType

F32, I64 = "float32", "int64"

# (op, params, [input shapes] or [(dtype, shape)])
CASES = [
    ("Linear", {"out_features": 7}, [(4, 5)]),
    ("Linear", {"out_features": 7, "bias": False}, [(2, 3, 5)]),
    ("Linear", {"in_features": 5, "out_features": 1}, [(5,)]),
    ("Embedding", {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": 0}, [(I64, (2, 6))]),
    ("Parameter", {"shape": (1, 3, 8)}, []),
    ("Conv1d", {"out_channels": 6, "kernel_size": 3}, [(2, 4, 10)]),
    ("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}, [(2, 3, 9, 9)]),
    ("Conv2d", {"out_channels": 8, "kernel_size": (3, 5), "stride": 2, "dilation": (1, 2), "groups": 2,
                "bias": False}, [(2, 4, 11, 13)]),
    ("Conv2d", {"out_channels": 4, "kernel_size": 4, "padding": "same"}, [(1, 2, 7, 6)]),
    ("Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": "valid", "padding_mode": "reflect"}, [(1, 2, 7, 6)]),
    ("Conv2d", {"out_channels": 2, "kernel_size": 1, "padding": 2, "padding_mode": "reflect"}, [(1, 2, 3, 3)]),
    ("Conv2d", {"out_channels": 2, "kernel_size": 7, "padding": "same", "padding_mode": "circular"}, [(1, 2, 3, 3)]),
    ("Conv3d", {"out_channels": 4, "kernel_size": 3, "stride": (1, 2, 2), "padding": 1}, [(1, 2, 5, 8, 8)]),
    ("ConvTranspose1d", {"out_channels": 3, "kernel_size": 4, "stride": 2, "padding": 1}, [(2, 5, 7)]),
    ("ConvTranspose2d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1,
                         "groups": 3}, [(2, 6, 5, 4)]),
    ("ConvTranspose3d", {"out_channels": 2, "kernel_size": 2, "stride": 2, "bias": False}, [(1, 4, 2, 3, 3)]),
    ("BatchNorm1d", {}, [(4, 6)]),
    ("BatchNorm1d", {"affine": False}, [(4, 6, 5)]),
    ("BatchNorm2d", {}, [(2, 3, 4, 4)]),
    ("BatchNorm3d", {"momentum": None}, [(2, 3, 2, 4, 4)]),
    ("LayerNorm", {}, [(2, 5, 8)]),
    ("LayerNorm", {"normalized_shape": (5, 8), "bias": False}, [(2, 5, 8)]),
    ("LayerNorm", {"elementwise_affine": False}, [(2, 8)]),
    ("GroupNorm", {"num_groups": 2}, [(2, 6, 4, 4)]),
    ("GroupNorm", {"num_groups": 3, "affine": False}, [(2, 6, 5)]),
    ("RMSNorm", {"eps": 1e-6}, [(2, 5, 8)]),
    ("RMSNorm", {"elementwise_affine": False}, [(2, 8)]),
    ("Dropout", {"p": 0.1}, [(3, 4)]),
    ("LSTM", {"hidden_size": 6}, [(2, 5, 4)]),
    ("LSTM", {"hidden_size": 6, "num_layers": 2, "bidirectional": True, "output": "hidden"}, [(2, 5, 4)]),
    ("LSTM", {"hidden_size": 6, "batch_first": False, "output": "last", "bias": False}, [(5, 2, 4)]),
    ("GRU", {"hidden_size": 6, "num_layers": 2, "output": "last", "bidirectional": True}, [(3, 5, 4)]),
    ("GRU", {"hidden_size": 6, "output": "hidden"}, [(3, 5, 4)]),
    ("RNN", {"hidden_size": 6, "nonlinearity": "relu", "num_layers": 3, "output": "sequence"}, [(3, 5, 4)]),
    ("RNN", {"hidden_size": 6, "output": "hidden", "bidirectional": True}, [(3, 5, 4)]),
    ("MultiheadAttention", {"num_heads": 2}, [(2, 5, 8)]),
    ("MultiheadAttention", {"num_heads": 4, "causal": True, "bias": False}, [(2, 5, 8)]),
    ("MultiheadAttention", {"num_heads": 2}, [(2, 5, 8), (2, 7, 8)]),
    ("MultiheadAttention", {"num_heads": 2, "causal": True}, [(2, 5, 8), (2, 7, 6), (2, 7, 3)]),
    ("ScaledDotProductAttention", {}, [(2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 6)]),
    ("ScaledDotProductAttention", {"is_causal": True, "scale": 0.5, "dropout_p": 0.1},
     [(2, 3, 5, 4), (1, 3, 5, 4), (3, 5, 4)]),
    ("ReLU", {}, [(2, 3)]),
    ("ReLU6", {}, [(2, 3)]),
    ("GELU", {}, [(2, 3)]),
    ("GELU", {"approximate": "tanh"}, [(2, 3)]),
    ("Activation", {"name": "gelu"}, [(2, 3)]),
    ("SiLU", {}, [(2, 3)]),
    ("Tanh", {}, [(2, 3)]),
    ("Sigmoid", {}, [(2, 3)]),
    ("LeakyReLU", {"negative_slope": 0.2}, [(2, 3)]),
    ("Hardswish", {}, [(2, 3)]),
    ("Softmax", {}, [(2, 3)]),
    ("LogSoftmax", {"dim": 0}, [(2, 3)]),
    ("MaxPool1d", {"kernel_size": 2}, [(2, 3, 9)]),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, [(2, 3, 9, 8)]),
    ("MaxPool2d", {"kernel_size": 2, "ceil_mode": True}, [(2, 3, 7, 5)]),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "dilation": 1}, [(1, 1, 6, 7)]),
    ("AvgPool1d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, [(2, 3, 10)]),
    ("AvgPool2d", {"kernel_size": (2, 3), "padding": (1, 1), "count_include_pad": False}, [(2, 3, 8, 9)]),
    ("AdaptiveAvgPool1d", {"output_size": 4}, [(2, 3, 9)]),
    ("AdaptiveAvgPool2d", {"output_size": 1}, [(2, 3, 9, 7)]),
    ("AdaptiveAvgPool2d", {"output_size": (None, 2)}, [(2, 3, 9, 7)]),
    ("AdaptiveMaxPool1d", {"output_size": 2}, [(2, 3, 9)]),
    ("AdaptiveMaxPool2d", {"output_size": (3, 2)}, [(2, 3, 9, 7)]),
    ("Upsample", {"scale_factor": 2}, [(2, 3, 4, 5)]),
    ("Upsample", {"scale_factor": 1.5, "mode": "bilinear", "align_corners": True}, [(2, 3, 4, 5)]),
    ("Upsample", {"size": 7}, [(2, 3, 4)]),
    ("Flatten", {}, [(2, 3, 4, 5)]),
    ("Flatten", {"start_dim": 0, "end_dim": 1}, [(2, 3, 4)]),
    ("Unflatten", {"dim": -1, "sizes": (3, -1)}, [(2, 12)]),
    ("Reshape", {"shape": (0, -1, 4)}, [(2, 3, 8)]),
    ("Reshape", {"shape": (6, 8)}, [(2, 3, 8)]),
    ("Permute", {"dims": (0, 2, 1)}, [(2, 3, 4)]),
    ("Transpose", {"dim0": 1, "dim1": -1}, [(2, 3, 4)]),
    ("Concat", {}, [(2, 3, 4), (2, 5, 4)]),
    ("Concat", {"dim": -1}, [(2, 3, 4), (2, 3, 1), (2, 3, 2)]),
    ("Split", {"split_size_or_sections": 4}, [(2, 10)]),
    ("Split", {"split_size_or_sections": (1, 2, 3), "dim": 1}, [(2, 6, 3)]),
    ("Chunk", {"chunks": 3}, [(2, 9)]),
    ("Chunk", {"chunks": 3, "dim": 0}, [(5, 2)]),
    ("Select", {"dim": 1, "index": 0}, [(2, 3, 4)]),
    ("Select", {"dim": -1, "index": -1}, [(2, 3, 4)]),
    ("Slice", {"dim": 1, "start": 1}, [(2, 5, 4)]),
    ("Slice", {"dim": -1, "start": -3, "end": 10, "step": 2}, [(2, 5, 6)]),
    ("Slice", {"dim": 0, "end": -1}, [(4, 2)]),
    ("Identity", {}, [(2, 3)]),
    ("ExpandAs", {}, [(1, 1, 8), (3, 1, 8)]),
    ("ExpandAs", {"dims": (0, 1)}, [(1, 1, 8), (3, 4, 8)]),
    ("Positions", {}, [(I64, (2, 7))]),
    ("Add", {}, [(2, 3), (3,)]),
    ("Add", {"other": 1}, [(2, 3)]),
    ("Sub", {}, [(2, 1, 4), (3, 1)]),
    ("Mul", {"other": 0.5}, [(2, 3)]),
    ("Mul", {"other": 0.5}, [(I64, (2, 3))]),
    ("Div", {}, [(I64, (2, 3)), (I64, (2, 3))]),
    ("Div", {"other": 2.0}, [(2, 3)]),
    # a 0-d tensor (a Sum over every dim) raises the category of the result, never its size within one
    ("Add", {}, [("float16", (2, 3)), (F32, ())]),
    ("Sub", {}, [(I64, ()), ("int16", (2, 3))]),
    ("Mul", {}, [("int8", (2, 3)), ("float64", ())]),
    ("Div", {}, [(F32, ()), ("bfloat16", (3,))]),
    ("MatMul", {}, [(2, 3, 4), (4, 5)]),
    ("MatMul", {}, [(4,), (2, 4, 5)]),
    ("MatMul", {}, [(2, 1, 3, 4), (3, 4, 2)]),
    ("Mean", {"dim": 1}, [(2, 3, 4)]),
    ("Mean", {"dim": (1, 2), "keepdim": True}, [(2, 3, 4)]),
    ("Sum", {}, [(2, 3, 4)]),
    ("Sum", {"keepdim": True}, [(2, 3, 4)]),
    ("Sum", {"dim": -1}, [(I64, (2, 3))]),
    ("Mean", {}, [(F32, ())]),
    ("Sum", {"keepdim": True}, [(I64, ())]),
]


# What the shape rules refuse because torch fails on it at run time: each must really fail in torch.
REFUSED = [
    ("Conv2d", {"in_channels": 2, "out_channels": 2, "kernel_size": 1, "padding": 3, "padding_mode": "reflect"},
     [(1, 2, 3, 3)]),
    ("Conv2d", {"in_channels": 2, "out_channels": 2, "kernel_size": 9, "padding": "same",
                "padding_mode": "circular"}, [(1, 2, 3, 3)]),
    ("Sub", {}, [("bool", (2, 3)), ("bool", (2, 3))]),
    ("Sub", {}, [(2, 3), ("bool", (2, 3))]),
    ("Sub", {"other": 1}, [("bool", (2, 3))]),
    ("Unflatten", {"dim": 0, "sizes": (-2, -1)}, [(2, 4)]),
    ("Reshape", {"shape": (-2, -4)}, [(2, 4)]),
    ("ScaledDotProductAttention", {}, [("float64", (1, 3, 4)), (F32, (1, 3, 4)), ("float64", (1, 3, 4))]),
    ("MultiheadAttention", {"embed_dim": 4, "num_heads": 2, "kdim": 4, "vdim": 4},
     [(1, 3, 4), ("float64", (1, 3, 4))]),
]


def _type(spec) -> TensorType:
    dtype, shape = spec if isinstance(spec[0], str) else (F32, spec)
    return TensorType(dtype, tuple(shape))


def _tensor(t: TensorType) -> torch.Tensor:
    if t.dtype == F32:
        return torch.randn(t.shape)
    if t.dtype == "bool":
        return torch.rand(t.shape) > 0.5
    return torch.randint(0, 5, t.shape, dtype=getattr(torch, t.dtype))


def build(op_name: str, params: dict, types: tuple[TensorType, ...]):
    """(GraphModule running the op, the lowered module or None, the shape rule's result)."""
    op = OPS[op_name]
    inferred = op.infer(op.params(**params), types)
    gm, module = lowered(op_name, inferred.params, len(types))
    return gm, module, inferred


def lowered(op_name: str, params, n_inputs: int):
    """(GraphModule running the op's torch lowering with these resolved params, its module or None)."""
    module = lower_module(op_name, params)
    root, target = nn.Module(), None
    if module is not None:
        root.add_module("layer", module)
        target = "layer"
    graph = fx.Graph()
    inputs = tuple(graph.placeholder(f"x{i}") for i in range(n_inputs))
    graph.output(emit(graph, op_name, inputs, params, target))
    gm = fx.GraphModule(root, graph)
    gm.graph.lint()
    return gm, module


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("op_name,params,inputs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_shape_rule_matches_torch(op_name, params, inputs):
    types = tuple(_type(s) for s in inputs)
    gm, module, inferred = build(op_name, params, types)
    assert "specc" not in gm.code
    for mode in (gm.train, gm.eval):
        mode()
        outs = gm(*(_tensor(t) for t in types))
        assert len(outs) == len(inferred.outputs)
        for got, want in zip(outs, inferred.outputs):
            assert tuple(got.shape) == want.shape, gm.code
            assert str(got.dtype) == f"torch.{want.dtype}"
    # parameters: names, shapes and order as the module's own; the count as the total
    shapes = OPS[op_name].param_shapes(inferred.params)
    own = [] if module is None else [(n, tuple(p.shape)) for n, p in module.named_parameters()]
    assert list(shapes.items()) == own
    assert sum(dims.prod(s) for s in shapes.values()) == sum(p.numel() for p in gm.parameters())
    assert [n for n, _ in gm.named_parameters()] == [f"layer.{n}" for n in shapes]


@pytest.mark.parametrize("op_name,params,inputs", REFUSED, ids=[f"{c[0]}-{i}" for i, c in enumerate(REFUSED)])
def test_what_the_shape_rules_refuse_fails_in_torch(op_name, params, inputs):
    types = tuple(_type(s) for s in inputs)
    op = OPS[op_name]
    with pytest.raises(OpError):
        op.infer(op.params(**params), types)
    gm, _ = lowered(op_name, op.params(**params), len(types))
    with pytest.raises(RuntimeError):
        gm(*(_tensor(t) for t in types))


def test_every_op_has_a_case_and_a_lowering():
    assert set(OPS) == set(LOWERINGS)
    assert set(OPS) - {c[0] for c in CASES} == set()


def test_macs_are_counted_for_the_heavy_ops():
    for name, params, inputs in CASES:
        types = tuple(_type(s) for s in inputs)
        inf = OPS[name].infer(OPS[name].params(**params), types)
        macs = OPS[name].macs(inf.params, types, inf.outputs)
        assert dims.is_static(macs) and macs >= 0
        if name in ("Linear", "Conv2d", "ConvTranspose2d", "MultiheadAttention", "LSTM", "MatMul"):
            assert macs > 0, name


def test_linear_and_conv_macs():
    lin = OPS["Linear"]
    t = (TensorType(F32, (4, 5)),)
    inf = lin.infer(lin.params(out_features=7), t)
    assert lin.macs(inf.params, t, inf.outputs) == 4 * 5 * 7
    conv = OPS["Conv2d"]
    t = (TensorType(F32, (2, 4, 8, 8)),)
    inf = conv.infer(conv.params(out_channels=6, kernel_size=3, padding=1, groups=2), t)
    assert conv.macs(inf.params, t, inf.outputs) == 2 * 6 * 8 * 8 * 2 * 9


# --- numerics of the lowerings that do more than call one torch function ----------------------

def _run(op_name, params, *xs, train=False):
    gm, module, inf = build(op_name, params, tuple(TensorType(str(x.dtype)[6:], tuple(x.shape)) for x in xs))
    gm.train(train)
    return gm(*xs), module


def test_rnn_outputs_select_the_right_tensors():
    x = torch.randn(2, 5, 4)
    for cls, name in ((nn.LSTM, "LSTM"), (nn.GRU, "GRU")):
        torch.manual_seed(0)
        (seq,), ref = _run(name, {"hidden_size": 3, "num_layers": 2, "bidirectional": True}, x)
        out, h = ref(x)
        h = h[0] if name == "LSTM" else h
        torch.manual_seed(0)
        (last,), _ = _run(name, {"hidden_size": 3, "num_layers": 2, "bidirectional": True, "output": "last"}, x)
        torch.manual_seed(0)
        (hid,), _ = _run(name, {"hidden_size": 3, "num_layers": 2, "bidirectional": True, "output": "hidden"}, x)
        assert torch.equal(seq, out)
        assert torch.equal(last, out[:, -1])
        assert torch.equal(hid, torch.cat([h[-2], h[-1]], dim=-1))
        # the forward half of the last output is the forward half of h_n
        assert torch.allclose(hid[:, :3], out[:, -1, :3])


def test_causal_attention_ignores_later_positions():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 8)
    (y,), mha = _run("MultiheadAttention", {"num_heads": 2, "causal": True}, x)
    y2 = mha(x, x, x, need_weights=False, attn_mask=torch.triu(torch.ones(6, 6, dtype=torch.bool), 1))[0]
    assert torch.allclose(y, y2, atol=1e-6)
    x_changed = x.clone()
    x_changed[:, 4:] += 1.0  # changing later steps leaves the earlier outputs as they were
    y3 = mha(x_changed, x_changed, x_changed, need_weights=False,
             attn_mask=torch.triu(torch.ones(6, 6, dtype=torch.bool), 1))[0]
    assert torch.allclose(y[:, :4], y3[:, :4], atol=1e-6)


def test_sdpa_dropout_only_while_training():
    q = torch.randn(1, 2, 4, 8)
    (a,), _ = _run("ScaledDotProductAttention", {"dropout_p": 0.5}, q, q, q, train=False)
    (b,), _ = _run("ScaledDotProductAttention", {}, q, q, q)
    assert torch.equal(a, b)
    (c,), _ = _run("ScaledDotProductAttention", {"dropout_p": 0.9}, q, q, q, train=True)
    assert not torch.allclose(b, c)


@pytest.mark.parametrize("start,end,step", [(5, 2, 1), (-3, -5, 1), (-1, -6, 2), (2, -1, 2), (-4, None, 3)])
def test_symbolic_slice_length_agrees_with_torch(start, end, step):
    op, t = OPS["Slice"], dims.Sym.var("T")
    out, = op.infer(op.params(dim=1, start=start, end=end, step=step), (TensorType(F32, (2, t)),)).outputs
    length = out.shape[1]
    for size in (6, 7, 12):
        assert dims.substitute(length, {"T": size}) == torch.zeros(2, size)[:, start:end:step].shape[1]


def test_tensor_ops_numerics():
    x = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(_run("Reshape", {"shape": (0, -1)}, x)[0][0], x.reshape(2, 12))
    assert torch.equal(_run("Slice", {"dim": -1, "start": 1, "step": 2}, x)[0][0], x[..., 1::2])
    assert torch.equal(_run("Select", {"dim": 1, "index": 0}, x)[0][0], x[:, 0])
    tok = torch.randn(1, 1, 4)
    assert torch.equal(_run("ExpandAs", {}, tok, x)[0][0], tok.expand(2, 1, 4))
    assert torch.equal(_run("Positions", {}, x)[0][0], torch.arange(3))
    a, b, c = _run("Split", {"split_size_or_sections": 2, "dim": 2}, x[..., :3].contiguous())[0] + (None,)
    assert b.shape == (2, 3, 1) and c is None


def test_parameter_is_a_zero_weight_in_the_state_dict():
    gm, module, inf = build("Parameter", {"shape": (1, 1, 4)}, ())
    assert list(gm.state_dict()) == ["layer.weight"]
    assert torch.equal(gm()[0], torch.zeros(1, 1, 4))
    assert gm()[0].requires_grad


def test_generated_code_is_plain_torch():
    gm, *_ = build("MaxPool2d", {"kernel_size": 2}, (TensorType(F32, (1, 1, 4, 4)),))
    assert "max_pool2d(x0, 2)" in gm.code
    gm, *_ = build("Add", {}, (TensorType(F32, (2,)), TensorType(F32, (2,))))
    assert "x0 + x1" in gm.code
    gm, *_ = build("ExpandAs", {}, (TensorType(F32, (1, 1, 4)), TensorType(F32, (2, 1, 4))))
    assert ".expand(size, -1, -1)" in gm.code


# --- parity with hand-written torch for non-default arguments, and MACs against torch's counter ---

class _CausalAttention(nn.MultiheadAttention):
    """Causal attention as written by hand: a mask of the positions after each query's own."""

    def forward(self, q, k, v):
        mask = torch.ones(q.shape[1], k.shape[1], dtype=torch.bool).triu(1)
        return super().forward(q, k, v, need_weights=False, attn_mask=mask)[0]


# (op, params, input shapes, the module or function a person would write by hand)
HAND_WRITTEN = [
    ("BatchNorm2d", {"momentum": 0.3, "eps": 1e-3}, [(3, 4, 5, 6)], lambda: nn.BatchNorm2d(4, 1e-3, 0.3)),
    ("BatchNorm1d", {"momentum": None, "affine": False, "track_running_stats": False}, [(3, 4, 9)],
     lambda: nn.BatchNorm1d(4, momentum=None, affine=False, track_running_stats=False)),
    ("LayerNorm", {"normalized_shape": (5, 8), "eps": 1e-3}, [(2, 5, 8)], lambda: nn.LayerNorm((5, 8), 1e-3)),
    ("GroupNorm", {"num_groups": 2, "eps": 1e-2}, [(3, 4, 5, 6)], lambda: nn.GroupNorm(2, 4, 1e-2)),
    ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
     [(3, 4, 7, 6)], lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}, [(3, 4, 9, 8)],
     lambda: nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True)),
    ("AdaptiveAvgPool2d", {"output_size": (None, 4)}, [(3, 4, 7, 6)], lambda: nn.AdaptiveAvgPool2d((None, 4))),
    ("Upsample", {"scale_factor": 1.5, "mode": "bilinear", "align_corners": True}, [(3, 4, 7, 6)],
     lambda: nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True)),
    ("Upsample", {"scale_factor": (2.0, 1.5)}, [(3, 4, 7, 6)], lambda: nn.Upsample(scale_factor=(2.0, 1.5))),
    ("GELU", {"approximate": "tanh"}, [(2, 5)], lambda: nn.GELU("tanh")),
    ("Activation", {"name": "gelu"}, [(2, 5)], lambda: nn.GELU()),
    ("Activation", {"name": "hardswish"}, [(2, 5)], lambda: nn.Hardswish()),
    ("LeakyReLU", {"negative_slope": 0.3}, [(2, 5)], lambda: nn.LeakyReLU(0.3)),
    ("LogSoftmax", {"dim": 0}, [(2, 5)], lambda: nn.LogSoftmax(0)),
    ("Dropout", {"p": 0.3}, [(4, 5)], lambda: nn.Dropout(0.3)),
    ("Embedding", {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": -2}, [(I64, (2, 6))],
     lambda: nn.Embedding(10, 4, padding_idx=-2)),
    ("Conv2d", {"out_channels": 6, "kernel_size": 3, "padding": "same", "dilation": 2, "groups": 2,
                "padding_mode": "reflect"}, [(3, 4, 7, 6)],
     lambda: nn.Conv2d(4, 6, 3, padding="same", dilation=2, groups=2, padding_mode="reflect")),
    ("ConvTranspose2d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1,
                         "groups": 2, "dilation": 2}, [(3, 4, 5, 6)],
     lambda: nn.ConvTranspose2d(4, 6, 3, 2, 1, output_padding=1, groups=2, dilation=2)),
    ("GRU", {"hidden_size": 5, "num_layers": 2, "dropout": 0.5, "bidirectional": True}, [(2, 5, 8)],
     lambda: nn.GRU(8, 5, 2, dropout=0.5, bidirectional=True, batch_first=True)),
    ("MultiheadAttention", {"num_heads": 2, "dropout": 0.3, "causal": True}, [(2, 5, 8), (2, 7, 6), (2, 7, 3)],
     lambda: _CausalAttention(8, 2, dropout=0.3, kdim=6, vdim=3, batch_first=True)),
    ("ScaledDotProductAttention", {"is_causal": True, "scale": 0.3}, [(2, 3, 5, 4), (1, 3, 7, 4), (3, 7, 6)],
     lambda: lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)),
]


@pytest.mark.filterwarnings("ignore:dropout option adds dropout")
@pytest.mark.parametrize("op_name,params,inputs,hand", HAND_WRITTEN, ids=[c[0] for c in HAND_WRITTEN])
def test_lowering_equals_hand_written_torch(op_name, params, inputs, hand):
    types = tuple(_type(s) for s in inputs)
    xs = [_tensor(t) for t in types]
    torch.manual_seed(0)
    gm, module, _ = build(op_name, params, types)
    torch.manual_seed(0)
    ref = hand()
    if module is not None:  # the same weights from the same seed
        assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), ref.state_dict().values()))
    for training in (True, False):
        gm.train(training)
        if isinstance(ref, nn.Module):
            ref.train(training)
        torch.manual_seed(1)
        got = gm(*xs)[0]
        torch.manual_seed(1)
        want = ref(*xs)
        want = want[0] if isinstance(want, tuple) else want  # an RNN's (output, h_n)
        assert torch.equal(got, want), (op_name, training)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_macs_equal_torch_flop_counter():
    """Linear, convolutions (groups, dilation, transposed), MatMul and SDPA: one MAC per multiply-add,
    as torch.utils.flop_counter counts them (2 FLOPs per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    extra = [("Conv1d", {"out_channels": 8, "kernel_size": 3, "groups": 8, "dilation": 2}, [(2, 8, 10)]),
             ("ConvTranspose2d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "dilation": 2, "groups": 2,
                                  "output_padding": 1}, [(2, 4, 5, 4)]),
             ("Linear", {"out_features": 7}, [(2, 3, 4, 5)])]
    checked = 0
    for name, params, inputs in CASES + extra:
        if not name.startswith(("Linear", "Conv", "MatMul", "ScaledDotProduct")) or min(map(len, inputs)) < 2:
            continue  # torch does not count a dot product
        types = tuple(_type(s) for s in inputs)
        gm, _, inf = build(name, params, types)
        with FlopCounterMode(display=False) as counter:
            gm.eval()(*(_tensor(t) for t in types))
        assert counter.get_total_flops() == 2 * OPS[name].macs(inf.params, types, inf.outputs), (name, params)
        checked += 1
    assert checked > 15
