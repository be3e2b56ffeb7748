"""The op registry, torch-free: shape rules over symbolic dims, errors, parameter counts."""
from __future__ import annotations

import subprocess
import sys

import pytest

import specc
from specc.ir import dims
from specc.ir.build import build
from specc.ir.dims import Sym
from specc.ir.ops import OPS, OpError, get_op
from specc.ir.types import TensorType

N, T, H, W, C = (Sym.var(s) for s in "NTHWC")


def f32(*shape):
    return TensorType("float32", shape)


def i64(*shape):
    return TensorType("int64", shape)


def infer(op_name: str, *inputs: TensorType, **params):
    op = OPS[op_name]
    return op.infer(op.params(**params), inputs)


def out(op_name: str, *inputs: TensorType, **params) -> list[str]:
    return [str(t) for t in infer(op_name, *inputs, **params).outputs]


def error(op_name: str, *inputs: TensorType, **params) -> OpError:
    with pytest.raises(OpError) as e:
        infer(op_name, *inputs, **params)
    return e.value


# --- the registry --------------------------------------------------------------------------

def test_import_does_not_import_torch():
    code = "import sys, specc.ir.ops; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_get_op():
    assert get_op("Linear") is OPS["Linear"]
    assert get_op("Nope") is None


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_definition_is_consistent(name):
    op = OPS[name]
    fields = op.params.model_fields
    assert op.name == name and op.doc and op.category and op.example
    assert set(op.positional) <= set(fields) and set(op.inferred) <= set(fields)
    for f in op.inferred:  # inferred fields default to None, so the user may leave them out
        assert fields[f].default is None, f
    assert list(op.positional) == [f for f in fields if f in op.positional]  # in field (torch) order
    lo, hi = op.inputs
    assert 0 <= lo and (hi is None or hi >= lo)


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_documents_its_shape_rule(name):
    # `specc ops NAME` and docs/ops.md give each op's input -> output shapes (issue 6)
    assert "->" in OPS[name].doc, f"{name}'s doc gives no shape rule, such as [N, C, H, W] -> [N, C*H*W]"


def test_positional_forms_match_the_builder_rule():
    # required, not-inferred positional fields: the short form Linear(128), Conv2d(64, 3)
    def required(name):
        op = OPS[name]
        return [f for f in op.positional if op.params.model_fields[f].is_required() and f not in op.inferred]
    assert required("Linear") == ["out_features"]
    assert required("Conv2d") == ["out_channels", "kernel_size"]
    assert OPS["Conv2d"].positional[0] == "in_channels"
    assert required("LSTM") == ["hidden_size"] and required("MultiheadAttention") == ["num_heads"]
    assert required("Embedding") == ["num_embeddings", "embedding_dim"]


def test_group_norm_takes_torchs_positional_form(tmp_path):
    def spec(call: str):
        path = tmp_path / "m.dlspec"
        path.write_text(f"spec 1\nmodel M {{\n  input x: float32[N, 64, 8, 8]\n  y = x |> g: {call}\n  output y\n}}\n")
        return path

    def params(call: str):
        graph, diagnostics = build(specc.load(spec(call)))
        assert diagnostics == []
        return graph.layers["g"].params

    assert params("GroupNorm(32, 64)") == params("GroupNorm(32)") == params("GroupNorm(32, num_channels = 64)")
    assert params("GroupNorm(32, 64, 1e-3)") == params("GroupNorm(32, eps = 1e-3)")
    [d] = specc.check([str(spec("GroupNorm(32, 63)"))])
    assert (d.code, d.message, d.span.line, d.span.col) == \
        ("E0301", "GroupNorm got num_channels 63 but its input has 64 channels", 4, 29)  # at the 63
    assert d.help == "drop num_channels; specc infers it from the input"


# --- shapes with symbolic dims -------------------------------------------------------------

SYMBOLIC = [
    ("Linear", [f32(N, T, 64)], {"out_features": 128}, ["float32[N, T, 128]"]),
    ("Conv2d", [f32(N, 3, H, W)], {"out_channels": 16, "kernel_size": 3, "padding": 1}, ["float32[N, 16, H, W]"]),
    ("Conv2d", [f32(N, 3, H, W)], {"out_channels": 16, "kernel_size": 3, "stride": 2, "padding": 1},
     ["float32[N, 16, (H + 1)//2, (W + 1)//2]"]),
    ("Conv1d", [f32(N, 3, T)], {"out_channels": 4, "kernel_size": 3}, ["float32[N, 4, T - 2]"]),
    ("ConvTranspose2d", [f32(N, 8, H, W)], {"out_channels": 4, "kernel_size": 2, "stride": 2},
     ["float32[N, 4, 2*H, 2*W]"]),
    ("MaxPool2d", [f32(N, 8, H, W)], {"kernel_size": 2}, ["float32[N, 8, H//2, W//2]"]),
    ("AdaptiveAvgPool2d", [f32(N, 8, H, W)], {"output_size": 1}, ["float32[N, 8, 1, 1]"]),
    ("Upsample", [f32(N, 8, H, W)], {"scale_factor": 2}, ["float32[N, 8, 2*H, 2*W]"]),
    ("BatchNorm1d", [f32(N, 8, T)], {}, ["float32[N, 8, T]"]),
    ("LayerNorm", [f32(N, T, 8)], {}, ["float32[N, T, 8]"]),
    ("Embedding", [i64(N, T)], {"num_embeddings": 100, "embedding_dim": 16}, ["float32[N, T, 16]"]),
    ("Positions", [i64(N, T)], {}, ["int64[T]"]),
    ("Parameter", [], {"shape": (1, 1, 768)}, ["float32[1, 1, 768]"]),
    ("ExpandAs", [f32(1, 1, 768), f32(N, 197, 768)], {}, ["float32[N, 1, 768]"]),
    ("LSTM", [f32(N, T, 32)], {"hidden_size": 16}, ["float32[N, T, 16]"]),
    ("LSTM", [f32(N, T, 32)], {"hidden_size": 16, "bidirectional": True, "output": "last"}, ["float32[N, 32]"]),
    ("GRU", [f32(T, N, 32)], {"hidden_size": 16, "batch_first": False, "output": "hidden"}, ["float32[N, 16]"]),
    ("MultiheadAttention", [f32(N, T, 64)], {"num_heads": 8, "causal": True}, ["float32[N, T, 64]"]),
    ("MultiheadAttention", [f32(N, T, 64), f32(N, C, 32)], {"num_heads": 8}, ["float32[N, T, 64]"]),
    ("ScaledDotProductAttention", [f32(N, 8, T, 16), f32(N, 8, C, 16), f32(N, 8, C, 32)], {},
     ["float32[N, 8, T, 32]"]),
    ("Flatten", [f32(N, T, 64)], {}, ["float32[N, 64*T]"]),
    ("Flatten", [f32(N, T, 64)], {"start_dim": 0, "end_dim": 1}, ["float32[N*T, 64]"]),
    ("Unflatten", [f32(N, T, 768)], {"dim": -1, "sizes": (12, -1)}, ["float32[N, T, 12, 64]"]),
    ("Reshape", [f32(N, T, 768)], {"shape": (0, 0, 12, -1)}, ["float32[N, T, 12, 64]"]),
    ("Reshape", [f32(N, T, 768)], {"shape": (-1, 768)}, ["float32[N*T, 768]"]),
    ("Permute", [f32(N, T, 4)], {"dims": (0, 2, 1)}, ["float32[N, 4, T]"]),
    ("Transpose", [f32(N, T, 4)], {"dim0": -2, "dim1": -1}, ["float32[N, 4, T]"]),
    ("Concat", [f32(N, T, 4), f32(N, T, 6)], {"dim": -1}, ["float32[N, T, 10]"]),
    ("Concat", [f32(N, 1, 4), f32(N, T, 4)], {}, ["float32[N, T + 1, 4]"]),
    ("Split", [f32(N, T, 12)], {"split_size_or_sections": 4}, ["float32[N, T, 4]"] * 3),
    ("Split", [f32(N, T, 12)], {"split_size_or_sections": (2, 10)}, ["float32[N, T, 2]", "float32[N, T, 10]"]),
    ("Chunk", [f32(N, dims.mul(2, T))], {"chunks": 2, "dim": 1}, ["float32[N, T]"] * 2),
    ("Select", [f32(N, T, 8)], {"dim": 1, "index": 0}, ["float32[N, 8]"]),
    ("Slice", [f32(N, T, 8)], {"dim": 1, "start": 1}, ["float32[N, T - 1, 8]"]),
    ("Slice", [f32(N, T, 8)], {"dim": 1, "end": 4}, ["float32[N, 4, 8]"]),
    ("Slice", [f32(N, T, 8)], {"dim": 1, "start": -4}, ["float32[N, 4, 8]"]),
    ("Slice", [f32(N, T, 8)], {"dim": 1, "start": 5, "end": 2}, ["float32[N, 0, 8]"]),
    ("Slice", [f32(N, T, 8)], {"dim": 1, "start": -3, "end": -5}, ["float32[N, 0, 8]"]),
    ("Add", [f32(N, T, 4), f32(T, 4)], {}, ["float32[N, T, 4]"]),
    ("Mul", [f32(N, 1, 4), f32(N, T, 1)], {}, ["float32[N, T, 4]"]),
    ("Div", [i64(N, T)], {"other": 2}, ["float32[N, T]"]),
    ("Mul", [i64(N, T)], {"other": 2}, ["int64[N, T]"]),
    ("Add", [f32(N, T), TensorType("float16", (N, T))], {}, ["float32[N, T]"]),
    ("Add", [TensorType("float16", (N, T)), f32()], {}, ["float16[N, T]"]),  # a 0-d tensor acts as a number
    ("Mul", [TensorType("int16", (N,)), i64()], {}, ["int16[N]"]),
    ("Sub", [i64(N), TensorType("float64", ())], {}, ["float64[N]"]),
    ("Sum", [f32()], {}, ["float32[]"]),
    ("MatMul", [f32(N, T, 64), f32(N, 64, T)], {}, ["float32[N, T, T]"]),
    ("MatMul", [f32(N, T, 64), f32(64)], {}, ["float32[N, T]"]),
    ("Mean", [f32(N, T, 8)], {"dim": 1}, ["float32[N, 8]"]),
    ("Sum", [TensorType("bool", (N, T))], {"dim": -1, "keepdim": True}, ["int64[N, 1]"]),
    ("Softmax", [TensorType("bfloat16", (N, T))], {}, ["bfloat16[N, T]"]),
    ("Dropout", [f32(N, T)], {"p": 0.1}, ["float32[N, T]"]),
    ("Identity", [i64(N, T)], {}, ["int64[N, T]"]),
]


@pytest.mark.parametrize("name,inputs,params,want", SYMBOLIC, ids=[f"{c[0]}-{i}" for i, c in enumerate(SYMBOLIC)])
def test_symbolic_shapes(name, inputs, params, want):
    assert out(name, *inputs, **params) == want
    # the rule is idempotent: run again on its resolved params, it agrees with itself
    first = infer(name, *inputs, **params)
    again = OPS[name].infer(first.params, tuple(inputs))
    assert again == first


def test_conv_output_matches_for_equal_symbolic_inputs():
    a = infer("Conv2d", f32(N, 3, H, W), out_channels=4, kernel_size=3, stride=2).outputs[0]
    b = infer("MaxPool2d", f32(N, 4, H, W), kernel_size=3, stride=2).outputs[0]
    assert a.shape[2:] == b.shape[2:]


def test_inferred_sizes_are_filled_in():
    assert infer("Linear", f32(N, 4096), out_features=128).params.in_features == 4096
    assert infer("Conv2d", f32(N, 64, H, W), out_channels=3, kernel_size=1).params.in_channels == 64
    assert infer("LayerNorm", f32(N, T, 768)).params.normalized_shape == (768,)
    assert infer("GroupNorm", f32(N, 64, H, W), num_groups=32).params.num_channels == 64
    p = infer("MultiheadAttention", f32(N, T, 64), f32(N, T, 32), num_heads=8).params
    assert (p.embed_dim, p.kdim, p.vdim) == (64, 32, 32)


# --- errors --------------------------------------------------------------------------------

def test_input_size_mismatch_messages():
    e = error("Linear", f32(N, 4096), in_features=2304, out_features=128)
    assert (e.code, e.arg, e.message) == ("E0301", "in_features",
                                          "Linear got in_features 2304 but its input has 4096 features")
    e = error("Conv2d", f32(N, 64, 8, 8), in_channels=3, out_channels=8, kernel_size=3)
    assert (e.code, e.arg, e.message) == ("E0301", "in_channels",
                                          "Conv2d got in_channels 3 but its input has 64 channels")
    e = error("BatchNorm2d", f32(N, 64, 8, 8), num_features=32)
    assert e.message == "BatchNorm2d got num_features 32 but its input has 64 channels"
    e = error("LayerNorm", f32(N, T, 768), normalized_shape=512)
    assert (e.code, e.arg, e.message) == ("E0301", "normalized_shape",
                                          "LayerNorm got normalized_shape [512] but its input ends in [768]")
    e = error("GroupNorm", f32(N, 64, 8, 8), num_groups=8, num_channels=32)
    assert e.message == "GroupNorm got num_channels 32 but its input has 64 channels"
    e = error("LSTM", f32(N, T, 64), input_size=32, hidden_size=8)
    assert e.message == "LSTM got input_size 32 but its input has 64 features"
    e = error("MultiheadAttention", f32(N, T, 64), f32(N, T, 32), num_heads=8, kdim=16)
    assert e.message == "MultiheadAttention got kdim 16 but its key has 32 features"


def test_rank_errors():
    e = error("Conv2d", f32(N, 10), out_channels=8, kernel_size=3)
    assert (e.code, e.input, e.message) == ("E0305", 0,
                                            "Conv2d expects a 4-d input [N, C, H, W] but got float32[N, 10]")
    e = error("BatchNorm1d", f32(N))
    assert e.message == "BatchNorm1d expects a 2-d or 3-d input [N, C] or [N, C, L] but got float32[N]"
    assert error("MaxPool1d", f32(N, 3, 4, 4), kernel_size=2).code == "E0305"
    assert error("LSTM", f32(N, 4), hidden_size=2).code == "E0305"
    assert error("ExpandAs", f32(1, 768), f32(N, 1, 768)).code == "E0305"


def test_dtype_errors():
    e = error("Embedding", f32(N, T), num_embeddings=10, embedding_dim=4)
    assert (e.code, e.input) == ("E0306", 0)
    assert e.message == "Embedding expects int64 or int32 token ids but got float32[N, T]"
    assert error("Linear", i64(N, 4), out_features=2).code == "E0306"
    assert error("Mean", i64(N, 4)).code == "E0306"
    e = error("ScaledDotProductAttention", f32(N, T, 8), TensorType("float64", (N, T, 8)), f32(N, T, 8))
    assert (e.code, e.input, e.message) == ("E0306", 1, "ScaledDotProductAttention needs all inputs of one "
                                            "dtype, got float32 and float64")
    assert error("MultiheadAttention", f32(N, T, 8), TensorType("float16", (N, T, 8)), num_heads=2).input == 1


def test_shape_errors():
    e = error("Add", f32(N, T, 4), f32(N, 4))
    assert e.code == "E0302"
    assert e.message == "Add cannot broadcast float32[N, T, 4] and float32[N, 4]: dim -2 is T vs N"
    e = error("MatMul", f32(N, 64), f32(32, 10))
    assert (e.code, e.message) == ("E0302", "MatMul cannot multiply float32[N, 64] by float32[32, 10]: 64 vs 32")
    e = error("Concat", f32(N, 4, 8), f32(N, 4, 16))
    assert (e.code, e.input) == ("E0303", 1)
    assert e.message == ("Concat inputs differ at dim 2: input 0 float32[N, 4, 8] has 8 and input 1 "
                         "float32[N, 4, 16] has 16")
    assert error("Concat", f32(N, 4), f32(N, 4, 1)).code == "E0303"
    e = error("Conv2d", f32(N, 3, 2, 2), out_channels=8, kernel_size=3)
    assert e.code == "E0302" and "too small" in e.message
    e = error("Linear", f32(N, T), out_features=8)  # a weight needs a fixed size
    assert (e.code, e.input) == ("E0302", 0)
    assert error("ExpandAs", f32(2, 1, 8), f32(N, 1, 8)).code == "E0302"
    assert error("MultiheadAttention", f32(N, T, 8), f32(N, C, 8), f32(N, T, 8), num_heads=2).input == 2


def test_bad_parameter_errors():
    e = error("MultiheadAttention", f32(N, T, 512), num_heads=6)
    assert (e.code, e.arg, e.message) == ("E0307", "num_heads",
                                          "MultiheadAttention got num_heads 6 but embed_dim 512 is not divisible by it")
    e = error("Split", f32(N, 10), split_size_or_sections=(3, 4))
    assert (e.code, e.arg) == ("E0307", "split_size_or_sections")
    assert "sum" in e.message and "10" in e.message
    assert error("Split", f32(N, T), split_size_or_sections=4).code == "E0307"  # count unknown
    assert error("Chunk", f32(N, T), chunks=2).code == "E0307"
    assert error("Chunk", f32(N, 5), chunks=4).code == "E0307"  # torch would return 3 chunks
    assert error("Reshape", f32(N, 64), shape=(0, 3, -1)).code == "E0307"
    assert error("Reshape", f32(N, 64), shape=(0, 32)).code == "E0307"
    assert error("Reshape", f32(N, 64), shape=(-1, -1)).code == "E0307"
    assert error("Unflatten", f32(N, 10), dim=1, sizes=(3, -1)).code == "E0307"
    e = error("Unflatten", f32(N, 4), dim=1, sizes=(-2, -2))  # the product is right, torch still refuses
    assert (e.code, e.arg, e.message) == ("E0307", "sizes",
                                          "Unflatten got a negative size -2 in sizes; only -1 (inferred) is allowed")
    assert error("Reshape", f32(N, 64), shape=(-2, -1)).arg == "shape"
    e = error("Slice", f32(N, T), dim=1, start=-3, end=10)  # min(T, 10) - max(T - 3, 0): no one formula
    assert (e.code, e.arg) == ("E0302", "end")
    assert out("Slice", f32(N, 12), dim=1, start=-3, end=10) == ["float32[N, 1]"]
    assert error("Permute", f32(N, T, 4), dims=(0, 1, 1)).arg == "dims"
    e = error("Flatten", f32(N, 4), start_dim=2)
    assert (e.code, e.arg, e.message) == ("E0307", "start_dim", "Flatten got start_dim 2 but its input has 2 dims")
    assert error("Conv2d", f32(N, 6, 8, 8), out_channels=8, kernel_size=3, groups=4).arg == "groups"
    assert error("Conv2d", f32(N, 6, 8, 8), out_channels=8, kernel_size=(3, 3, 3)).arg == "kernel_size"
    assert error("Conv2d", f32(N, 6, 8, 8), out_channels=8, kernel_size=3, stride=2, padding="same").arg == "padding"
    assert error("ConvTranspose2d", f32(N, 6, 8, 8), out_channels=8, kernel_size=3, output_padding=1).arg \
        == "output_padding"
    assert error("MaxPool2d", f32(N, 6, 8, 8), kernel_size=2, padding=2).arg == "padding"
    assert error("GroupNorm", f32(N, 6, 8, 8), num_groups=4).arg == "num_groups"
    assert error("Select", f32(N, 3), dim=1, index=3).arg == "index"
    assert error("Upsample", f32(N, 3, H, W), scale_factor=1.5).arg == "scale_factor"
    assert error("Upsample", f32(N, 3, H, W)).code == "E0307"
    assert error("Upsample", f32(N, 3, H, W), scale_factor=2, align_corners=True).arg == "align_corners"
    assert error("Add", f32(N, 3), f32(N, 3), other=1.0).arg == "other"
    assert error("Add", f32(N, 3)).arg == "other"
    assert error("Embedding", i64(N), num_embeddings=4, embedding_dim=2, padding_idx=4).arg == "padding_idx"
    assert error("Softmax", f32(N, 3), dim=2).arg == "dim"


# --- parameter counts and MACs -------------------------------------------------------------

def count(name: str, *inputs: TensorType, **params) -> int:
    op = OPS[name]
    return sum(dims.prod(s) for s in op.param_shapes(infer(name, *inputs, **params).params).values())


def test_parameter_counts():
    assert count("Linear", f32(N, 4096), out_features=128) == 4096 * 128 + 128
    assert count("Conv2d", f32(N, 3, H, W), out_channels=64, kernel_size=3, bias=False) == 64 * 3 * 9
    assert count("Conv2d", f32(N, 8, H, W), out_channels=8, kernel_size=3, groups=8) == 8 * 9 + 8
    assert count("ConvTranspose2d", f32(N, 8, H, W), out_channels=4, kernel_size=2) == 8 * 4 * 4 + 4
    assert count("BatchNorm2d", f32(N, 64, H, W)) == 128  # running stats are buffers, not counted
    assert count("LayerNorm", f32(N, T, 768)) == 2 * 768
    assert count("RMSNorm", f32(N, T, 768)) == 768
    assert count("Embedding", i64(N, T), num_embeddings=50257, embedding_dim=768) == 50257 * 768
    assert count("LSTM", f32(N, T, 10), hidden_size=20) == 4 * 20 * (10 + 20) + 2 * 4 * 20
    assert count("LSTM", f32(N, T, 10), hidden_size=20, num_layers=2, bidirectional=True) == \
        2 * (4 * 20 * (10 + 20) + 8 * 20) + 2 * (4 * 20 * (40 + 20) + 8 * 20)
    assert count("GRU", f32(N, T, 10), hidden_size=20, bias=False) == 3 * 20 * 30
    assert count("MultiheadAttention", f32(N, T, 768), num_heads=12) == 4 * 768 * 768 + 4 * 768
    assert count("Parameter", shape=(1, 197, 768)) == 197 * 768
    assert count("ReLU", f32(N, 4)) == 0


def test_symbolic_macs():
    def macs(name, *inputs, **params):
        r = infer(name, *inputs, **params)
        return OPS[name].macs(r.params, inputs, r.outputs)
    assert macs("Linear", f32(N, 4096), out_features=128) == dims.mul(N, 4096 * 128)
    assert macs("Conv2d", f32(N, 3, 8, 8), out_channels=16, kernel_size=3, padding=1) == dims.mul(N, 16 * 64 * 27)
    assert macs("MatMul", f32(N, T, 64), f32(N, 64, T)) == dims.prod((N, T, T, 64))
    assert macs("LSTM", f32(N, T, 10), hidden_size=20) == dims.prod((N, T, 4 * 20 * 30))
    assert macs("ReLU", f32(N, 4)) == 0
    assert not dims.is_static(macs("MultiheadAttention", f32(N, T, 64), num_heads=8))


@pytest.mark.parametrize("slice_, assumes", [
    ({"start": 1, "end": 7}, 7), ({"start": -3}, 3), ({"start": 2}, 2), ({"end": -1}, None),
    ({"start": -3, "end": -1}, 3), ({"start": 5, "end": 2}, None),  # empty whatever the size: no assumption
])
def test_a_slice_over_a_symbolic_size_states_the_size_its_shape_assumes(slice_, assumes):
    assert infer("Slice", f32(N, T), dim=1, **slice_).params.assumes == assumes
    assert infer("Slice", f32(N, 12), dim=1, **slice_).params.assumes is None  # a fixed size: nothing assumed
