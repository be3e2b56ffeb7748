"""The torch backend: every spec compiles to a module whose parameters, shapes and generated
code agree with the IR; tutorial networks match hand-written PyTorch exactly."""
import importlib.util
import math
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

import specc
from specc.backends.torch_ops import init_call
from specc.cli import main
from specc.compiled import build_ir, load_spec
from specc.emit import emit_python
from specc.ir.build import INIT_KINDS
from specc.ir.dims import substitute

import reference_models as ref

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.dlspec"))
MODELS = [(p, m) for p in SPECS for m in specc.load(p).models]
SMALL = ("digits_cnn", "tutorial_mlp", "tutorial_cnn", "tutorial_lstm", "text_cnn", "dcgan", "unet",
         "mobilenet_v2", "resnet18")
SIZES = {"T": 6, "H": 64, "W": 64}


def sample_inputs(graph, batch: int, device=None):
    env = {**SIZES, "N": batch}
    out = []
    for vid in graph.inputs:
        t = graph.values[vid].type
        shape = [substitute(d, env) for d in t.shape]
        dtype = getattr(torch, t.dtype)
        if dtype.is_floating_point:
            out.append(torch.randn(shape, dtype=dtype, device=device))
        else:
            out.append(torch.randint(0, 2, shape, dtype=dtype, device=device))
    return out


@pytest.mark.parametrize("path,model", MODELS, ids=[f"{p.stem}.{m}" for p, m in MODELS])
def test_param_count_and_every_shape_match_the_ir(path, model):
    assert_the_ir_is_what_torch_computes(path, model)


def test_a_float64_models_embedding_and_parameter_are_float64(tmp_path):
    """The weights take the inputs' float64, and so do the values read from them."""
    path = tmp_path / "f64.dlspec"
    path.write_text("model M {\n  input tok: int64[N, T]\n  input feats: float64[N, T, 4]\n"
                    "  pos = position: Parameter([1, 1, 4])\n  y = (tok |> Embedding(10, 4)) + feats + pos\n"
                    "  output y\n}\n")
    ir = specc.compile(path, device="meta").ir
    types = {ir.layers[n.layer].op: str(ir.values[n.outputs[0]].type) for n in ir.nodes}
    assert (types["Parameter"], types["Embedding"]) == ("float64[1, 1, 4]", "float64[N, T, 4]")
    assert_the_ir_is_what_torch_computes(path, None)


def assert_the_ir_is_what_torch_computes(path, model):
    """Parameter count and names, and every value's shape and dtype, at two batch sizes."""
    compiled = specc.compile(path, model=model, device="meta")
    graph, gm = compiled.ir, compiled.model
    assert sum(p.numel() for p in gm.parameters()) == graph.param_count
    assert {k: tuple(p.shape) for k, p in gm.named_parameters()} == graph.param_shapes()
    for batch in (2, 3):
        inputs = sample_inputs(graph, batch, device="meta")
        ShapeProp(gm).propagate(*inputs)
        env = {**SIZES, "N": batch}
        checked = set()
        for fx_node in gm.graph.nodes:
            vid = fx_node.meta.get("specc_value")
            if vid is None or fx_node.op == "placeholder":
                continue
            want = tuple(substitute(d, env) for d in graph.values[vid].type.shape)
            got = tuple(fx_node.meta["tensor_meta"].shape)
            assert got == want, f"{vid}: the IR says {want}, torch gives {got}"
            dtype = fx_node.meta["tensor_meta"].dtype
            assert dtype == getattr(torch, graph.values[vid].type.dtype), f"{vid}: torch gives {dtype}"
            checked.add(vid)
        # every value an op computes is checked (Identity returns its input node: that one too)
        assert checked | set(graph.inputs) >= {v for n in graph.nodes for v in n.outputs} - _identity_outputs(graph)
    computing = [n for n in gm.graph.nodes if n.op not in ("placeholder", "output")]
    assert computing and all(f'File "{path}' in n.meta.get("stack_trace", "") for n in computing)


def _identity_outputs(graph):
    return {v for n in graph.nodes if graph.layers[n.layer].op == "Identity" for v in n.outputs}


@pytest.mark.parametrize("path,model", [pytest.param(p, m, marks=() if p.stem in SMALL else pytest.mark.slow)
                                        for p, m in MODELS], ids=[f"{p.stem}.{m}" for p, m in MODELS])
def test_emitted_python_matches_the_compiled_module(path, model, tmp_path):
    compiled = specc.compile(path, model=model)
    standalone = _emitted_model(compiled, tmp_path)
    standalone.load_state_dict(compiled.model.state_dict(), strict=True)
    standalone.eval(), compiled.model.eval()
    inputs = sample_inputs(compiled.ir, 2)
    with torch.no_grad():
        a, b = standalone(*inputs), compiled.model(*inputs)
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
        assert torch.equal(x, y)


def test_tied_weights_are_one_parameter(tmp_path):
    """A tied weight is the source's Parameter; the layer's own bias is still real and initialised."""
    path = tmp_path / "tied.dlspec"
    path.write_text("model M {\n  input idx: int64[N, T]\n  x = idx |> wte: Embedding(100, 16)\n"
                    "  a = x |> head: Linear(100, bias = false)\n  b = x |> biased: Linear(100)\n"
                    "  tie head.weight = wte.weight\n  tie biased.weight = wte.weight\n  output a, b\n}\n")
    model = specc.compile(path).model
    assert model.head.weight is model.wte.weight is model.biased.weight
    assert sum(p.numel() for p in model.parameters()) == 100 * 16 + 100
    assert not any(t.is_meta for t in model.state_dict().values())
    assert 0 < model.biased.bias.abs().max() <= 1 / 4  # PyTorch's default: U(-1/sqrt(16), 1/sqrt(16))
    a, b = model(torch.randint(0, 100, (2, 3)))
    torch.testing.assert_close(b - model.biased.bias, a)


def test_a_chain_of_ties_shares_one_parameter_in_either_order(tmp_path):
    path = tmp_path / "chain.dlspec"
    for ties in ("  tie c.weight = b.weight\n  tie b.weight = a.weight\n",
                 "  tie b.weight = a.weight\n  tie c.weight = b.weight\n"):
        path.write_text("model M {\n  input x: float32[N, 8]\n  y = x |> a: Linear(8) |> b: Linear(8) |> c: Linear(8)\n"
                        + ties + "  output y\n}\n")
        compiled = specc.compile(path)
        model = compiled.model
        assert model.a.weight is model.b.weight is model.c.weight
        assert sum(p.numel() for p in model.parameters()) == compiled.ir.param_count == 64 + 3 * 8


@pytest.mark.parametrize("kind", INIT_KINDS)
def test_every_init_kind_compiles(kind, tmp_path):
    path = tmp_path / "init.dlspec"
    path.write_text(f"model M {{\n  input x: float32[N, 64]\n  y = x |> a: Linear(32, init = {kind})\n  output y\n}}\n")
    model = specc.compile(path).model
    assert model.a.weight.shape == (32, 64) and torch.count_nonzero(model.a.bias) == 0
    assert torch.isfinite(model.a.weight).all() and (kind in ("zeros", "constant")) == (torch.count_nonzero(model.a.weight) == 0)
    default = init_call({"kind": kind})  # and every argument `specc check` accepts reaches nn.init
    for arg in INIT_KINDS[kind]:
        value = {"mode": "fan_in" if default[1].get("mode") == "fan_out" else "fan_out", "nonlinearity": "tanh"}
        assert init_call({"kind": kind, arg: value.get(arg, 0.123)}) != default, arg


# each `init` kind as the nn.init call a hand-written model would make (written out, not via init_call)
INIT_BY_HAND = {
    "normal": lambda w: nn.init.normal_(w),
    "trunc_normal": lambda w: nn.init.trunc_normal_(w, a=-2.0, b=2.0),
    "xavier": lambda w: nn.init.xavier_uniform_(w),
    "xavier_uniform": lambda w: nn.init.xavier_uniform_(w),
    "xavier_normal": lambda w: nn.init.xavier_normal_(w),
    "kaiming": lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
    "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
    "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5)),
    "zeros": nn.init.zeros_,
    "ones": nn.init.ones_,
    "constant": lambda w: nn.init.constant_(w, 0.0),
}


@pytest.mark.parametrize("kind", INIT_KINDS)
def test_init_kind_is_the_nn_init_call(kind, tmp_path):
    """The same seed gives the same weight as the hand-written nn.init call: the right function,
    with the documented defaults, and no other draw from the generator before it."""
    path = tmp_path / "init.dlspec"
    path.write_text(f"model M {{\n  input x: float32[N, 64]\n  y = x |> a: Linear(32, init = {kind})\n  output y\n}}\n")
    torch.manual_seed(0)
    model = specc.compile(path).model
    torch.manual_seed(0)
    want = torch.empty(32, 64)
    INIT_BY_HAND[kind](want)
    assert torch.equal(model.a.weight, want)


def test_default_init_is_pytorchs_draw_for_draw():
    """Without `init`, the same seed gives the hand-written network's very weights."""
    for name, factory in (("tutorial_mlp", ref.TutorialMLP), ("tutorial_cnn", ref.TutorialCNN),
                          ("tutorial_lstm", ref.TutorialLSTM)):
        torch.manual_seed(0)
        compiled = specc.compile(ROOT / "specs" / f"{name}.dlspec").model.state_dict()
        torch.manual_seed(0)
        hand = factory().state_dict()
        assert list(compiled) == list(hand)
        for key in hand:
            assert torch.equal(compiled[key], hand[key]), f"{name}: {key}"


def _emitted_model(compiled, tmp_path):
    """A fresh instance of the class `specc emit --python` writes for `compiled`."""
    source = emit_python(compiled)
    assert "specc" not in source.split('"""', 2)[2]  # no specc import, only the docstring mentions it
    file = tmp_path / f"emitted_{compiled.ir.name}.py"
    file.write_text(source)
    return _module_class(file, compiled.ir.name)()


def _module_class(file: Path, name: str):
    """Class `name` of the Python file `file`, imported as a module of its own."""
    spec_ = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    return getattr(module, name)


def test_emitted_python_runs_the_spec_init(tmp_path):
    path = tmp_path / "init.dlspec"
    path.write_text("model M {\n  input x: int64[N]\n"
                    "  y = x |> e: Embedding(10, 8, padding_idx = 2, init = constant(value = 0.5))\n"
                    "    |> a: Linear(4, init = ones) |> n: LayerNorm(init = constant(value = 2))\n  output y\n}\n")
    compiled = specc.compile(path)
    fresh = _emitted_model(compiled, tmp_path).state_dict()
    assert fresh.keys() == compiled.model.state_dict().keys()
    for key, value in compiled.model.state_dict().items():
        assert torch.equal(fresh[key], value), key
    assert fresh["e.weight"][2].abs().sum() == 0 and fresh["a.bias"].abs().sum() == 0


@pytest.mark.parametrize("name,factory,shape", [
    ("tutorial_mlp", ref.TutorialMLP, (4, 10)),
    ("tutorial_cnn", ref.TutorialCNN, (4, 3, 32, 32)),
    ("tutorial_lstm", ref.TutorialLSTM, (4, 7, 100)),
])
def test_tutorials_equal_hand_written_pytorch(name, factory, shape):
    torch.manual_seed(0)
    hand = factory().eval()
    compiled = specc.compile(ROOT / "specs" / f"{name}.dlspec").model.eval()
    compiled.load_state_dict(hand.state_dict(), strict=True)
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.equal(compiled(x), hand(x))


@pytest.mark.parametrize("name,factory", [("resnet18", ref.resnet18), ("resnet50", ref.resnet50)])
def test_resnet_state_dict_is_torchvisions(name, factory):
    compiled = specc.compile(ROOT / "specs" / f"{name}.dlspec", device="meta").model
    with torch.device("meta"):
        reference = factory()
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in compiled.state_dict().items()}
    assert list(got) == list(want)
    assert got == want


def test_resnet_convs_have_torchvisions_init():
    """kaiming normal, fan_out, relu: std sqrt(2 / (out_channels * k * k)); BatchNorm 1 and 0."""
    model = specc.compile(ROOT / "specs" / "resnet18.dlspec").model
    weight = model.get_parameter("layer4.1.conv2.weight")  # [512, 512, 3, 3]
    assert abs(weight.std().item() / math.sqrt(2 / (512 * 9)) - 1) < 0.02 and abs(weight.mean().item()) < 1e-3
    assert torch.equal(model.get_parameter("layer4.1.bn2.weight"), torch.ones(512))


def test_gpt2_has_gpt2s_init():
    """normal(0, 0.02) weights, the residual projections' scaled by 1 / sqrt(2 * layers) (IR only)."""
    layers = build_ir(load_spec(ROOT / "specs" / "gpt2_small.dlspec")).layers
    assert dict(layers["wte"].init) == dict(layers["h.0.attn.c_attn"].init) == {"kind": "normal", "std": 0.02}
    assert dict(layers["h.11.mlp.c_proj"].init) == {"kind": "normal", "std": 0.02 / math.sqrt(24)}


def test_resnet18_matches_reference_numerically():
    torch.manual_seed(0)
    hand = ref.resnet18().eval()
    compiled = specc.compile(ROOT / "specs" / "resnet18.dlspec").model.eval()
    compiled.load_state_dict(hand.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), hand(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["gpt2_small", "bert_base", "vit_b16"])
def test_big_models_build_on_meta(name):
    start = time.perf_counter()
    compiled = specc.compile(ROOT / "specs" / f"{name}.dlspec", device="meta")
    assert time.perf_counter() - start < 2.0  # the bound; about 0.3 s cold, 0.03 s warm
    params = list(compiled.model.parameters())
    assert all(p.is_meta for p in params)
    assert sum(p.numel() for p in params) == compiled.ir.param_count


def test_gpt2_lm_head_is_the_token_embedding():
    model = specc.compile(ROOT / "specs" / "gpt2_small.dlspec", device="meta").model
    assert model.get_parameter("lm_head.weight") is model.get_parameter("wte.weight")
    assert sum(p.numel() for p in model.parameters()) == 124_439_808


def test_ties_survive_to_empty_off_the_meta_device_in_copies_too():
    """PyTorch's to_empty() gives each module a Parameter of its own; the compiled model ties them again."""
    import copy

    meta = specc.compile(ROOT / "specs" / "gpt2_small.dlspec", device="meta").model
    for model in (meta.to_empty(device="cpu"), copy.deepcopy(meta).to_empty(device="cpu")):
        assert model.get_parameter("lm_head.weight") is model.get_parameter("wte.weight")
        assert not model.wte.weight.is_meta
        assert sum(p.numel() for p in model.parameters()) == 124_439_808
        assert type(model).__name__ == "GPT2Small"


@pytest.mark.parametrize("copied", [False, True])
def test_runtime_error_names_the_spec_line(copied):
    import copy

    model = specc.compile(ROOT / "specs" / "digits_cnn.dlspec").model
    model = copy.deepcopy(model) if copied else model
    with pytest.raises(RuntimeError) as info:
        model(torch.randn(2, 3, 8, 8))  # 3 channels, the spec says 1
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert 'File "' in notes and "digits_cnn.dlspec\", line 8" in notes
    assert "conv1: Conv2d(width, 3, padding = 1)" in notes


def test_runtime_error_inside_a_block_names_the_block_line_and_its_use(tmp_path):
    """An error only the data shows (an index past the vocabulary), at a later node, in a block."""
    path = tmp_path / "lookup.dlspec"
    path.write_text("spec 1\n"
                    "block Lookup(vocab = 10) (idx) {\n"
                    "  return idx |> table: Embedding(vocab, 4)\n"
                    "}\n"
                    "model M {\n"
                    "  input x: float32[N, 4]\n"
                    "  input idx: int64[N]\n"
                    "  h = x |> first: Linear(4)\n"
                    "  e = idx |> words: Lookup\n"
                    "  y = h + e\n"
                    "  output y\n"
                    "}\n")
    model = specc.compile(path).model
    assert model(torch.randn(2, 4), torch.tensor([0, 9])).shape == (2, 4)
    with pytest.raises(IndexError) as info:
        model(torch.randn(2, 4), torch.tensor([0, 10]))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert f'File "{path}", line 3' in notes and "table: Embedding(vocab, 4)" in notes  # the failing op
    assert f'File "{path}", line 9' in notes and "words: Lookup" in notes  # the block's use in the model
    assert "line 8" not in notes and "first: Linear(4)" not in notes


def test_runtime_error_frames_name_where_each_line_is(tmp_path):
    """Outermost first, as Python prints a traceback: each frame names the model or block its line is in.
    An error raised by a line of the generated forward itself (torch.cat, not a submodule) is located too."""
    path = tmp_path / "nested.dlspec"
    path.write_text("spec 1\n"
                    "block Inner() (x) {\n"
                    "  return x |> fc: Linear(3)\n"
                    "}\n"
                    "block Outer() (x) {\n"
                    "  return x |> Inner\n"
                    "}\n"
                    "model M {\n"
                    "  input x: float32[N, 4]\n"
                    "  input z: float32[N, 2]\n"
                    "  y = x |> Outer\n"
                    "  w = Concat(y, z, dim = 1)\n"
                    "  output w\n"
                    "}\n")
    model = specc.compile(path).model
    with pytest.raises(RuntimeError) as info:
        model(torch.randn(2, 5), torch.randn(2, 2))
    assert info.value.__notes__ == [
        f'specc: raised by the model at\n  File "{path}", line 11, column 12, in M\n    y = x |> Outer\n'
        f'  File "{path}", line 6, column 15, in block Outer\n    return x |> Inner\n'
        f'  File "{path}", line 3, column 19, in block Inner\n    return x |> fc: Linear(3)']
    with pytest.raises(RuntimeError) as info:
        model(torch.randn(2, 4), torch.randn(3, 2))
    assert info.value.__notes__ == [
        f'specc: raised by the model at\n  File "{path}", line 12, column 7, in M\n    w = Concat(y, z, dim = 1)']


def test_arithmetic_on_integer_tensors_stays_integer(tmp_path):
    """`tok + 1` is int64, as in torch: it can index an Embedding."""
    path = tmp_path / "ints.dlspec"
    path.write_text("model M {\n  input tok: int64[N, T]\n  e = tok + 1 |> emb: Embedding(10, 4)\n"
                    "  n = -tok\n  m = tok * 2 - 1\n  h = tok * 0.5\n  output e, n, m, h\n}\n")
    model = specc.compile(path).model
    tok = torch.tensor([[0, 3, 8]])
    e, n, m, h = model(tok)
    assert torch.equal(e, model.emb(tok + 1))
    assert torch.equal(n, -tok) and torch.equal(m, tok * 2 - 1) and torch.equal(h, tok * 0.5)
    assert (n.dtype, m.dtype, h.dtype) == (torch.int64, torch.int64, torch.float32)


def test_a_layer_applied_again_in_a_list_or_repeat_shares_its_weights(tmp_path):
    """ALBERT's one layer applied n times: `repeat 3 { fc }` and `[fc, ReLU, fc]` reuse the enclosing `fc`."""
    path = tmp_path / "shared.dlspec"
    path.write_text("model M {\n  input x: float32[N, 4]\n  h = x |> fc: Linear(4) |> repeat 2 { fc }\n"
                    "  y = h |> seq: [fc, ReLU, own: Linear(4), own]\n  output y\n}\n")
    model = specc.compile(path).model
    assert list(model.state_dict()) == ["fc.weight", "fc.bias", "seq.own.weight", "seq.own.bias"]
    x = torch.randn(2, 4)
    fc, own = model.fc, model.seq.own
    with torch.no_grad():
        assert torch.equal(model(x), own(own(torch.relu(fc(fc(fc(fc(x))))))))


def test_list_parameters_from_python_mean_what_the_spec_list_means(tmp_path):
    """params={"sizes": [1, 3]} is the spec's `[1, 3]` (a Python list equal to a spec list); a value specc
    cannot hold is one located error, with no cascade from the names its `if` would have bound."""
    path = tmp_path / "split.dlspec"
    path.write_text("model M(sizes = [2, 2]) {\n  input x: float32[N, 4]\n"
                    "  if sizes == [1, 3] {\n    a, b = Split(x, sizes + [], dim = 1)\n  } else {\n"
                    "    a, b = Chunk(x, 2, dim = 1)\n  }\n  output a, b\n}\n")
    x = torch.randn(2, 4)
    a, b = specc.compile(path, params={"sizes": [1, 3]}).model(x)
    assert torch.equal(a, x[:, :1]) and torch.equal(b, x[:, 1:])
    with pytest.raises(specc.SpecError) as info:
        specc.compile(path, params={"sizes": {"a": 1}})
    [d] = info.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E0405", 1, 9)
    assert d.message == "model M parameter `sizes`: expected a number, string, boolean, none or list, got dict"


def test_state_dict_keys_follow_spec_names():
    keys = list(specc.compile(ROOT / "specs" / "digits_cnn.dlspec", device="meta").model.state_dict())
    assert keys[:2] == ["conv1.weight", "conv1.bias"] and keys[-2:] == ["head.weight", "head.bias"]


def test_init_on_a_layer(tmp_path):
    """init sets the weight by kind and the bias to zero; PyTorch's default init is skipped only
    where the spec's overwrites every tensor (a BatchNorm keeps its running statistics)."""
    path = tmp_path / "init.dlspec"
    path.write_text("model M {\n  input x: int64[N]\n"
                    "  y = x |> e: Embedding(100, 64, padding_idx = 0, init = normal(std = 0.02))\n"
                    "    |> a: Linear(256, init = normal(std = 0.02)) |> b: Linear(4, init = zeros)\n"
                    "    |> n: BatchNorm1d(init = constant(value = 0.5))\n  output y\n}\n")
    model = specc.compile(path).model
    assert abs(model.a.weight.std().item() - 0.02) < 0.004 and torch.count_nonzero(model.a.bias) == 0
    assert torch.count_nonzero(model.b.weight) == 0 and torch.count_nonzero(model.b.bias) == 0
    assert torch.count_nonzero(model.e.weight[0]) == 0 and torch.count_nonzero(model.e.weight[1:]) == 99 * 64
    assert torch.equal(model.n.weight, torch.full((4,), 0.5)) and torch.count_nonzero(model.n.bias) == 0
    assert torch.equal(model.n.running_var, torch.ones(4)) and torch.equal(model.n.running_mean, torch.zeros(4))
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_dtype_option():
    model = specc.compile(ROOT / "specs" / "tutorial_mlp.dlspec", dtype="float64").model
    assert all(p.dtype == torch.float64 for p in model.parameters())


def test_float64_inputs_make_a_float64_model(tmp_path):
    path = tmp_path / "m.dlspec"
    path.write_text("model M {\n  input x: float64[N, 8]\n  y = x |> Linear(4)\n  output y\n}\n")
    compiled = specc.compile(path)
    assert compiled.ir.weight_dtype == "float64"
    assert all(p.dtype == torch.float64 for p in compiled.model.parameters())
    assert compiled.model(torch.randn(2, 8, dtype=torch.float64)).dtype == torch.float64


def test_resnet18_gradients_match_reference():
    """The in-place ReLU the backend uses (like torchvision's) keeps autograd exact."""
    torch.manual_seed(0)
    hand = ref.resnet18()
    compiled = specc.compile(ROOT / "specs" / "resnet18.dlspec").model
    compiled.load_state_dict(hand.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    hand(x).square().sum().backward()
    compiled(x).square().sum().backward()
    for (name, a), (_, b) in zip(hand.named_parameters(), compiled.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_cli_build_writes_the_weights_and_prints_the_summary(tmp_path, capsys):
    from safetensors.torch import load_model

    spec = ROOT / "specs" / "tutorial_mlp.dlspec"
    assert main(["build", str(spec), "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.safetensors"]
    out = capsys.readouterr().out
    assert "fc2     Linear  float32[N, 30]     630  600*N" in out and "parameters: 1,160" in out
    model = specc.compile(spec).model
    missing, unexpected = load_model(model, tmp_path / "out" / "model.safetensors", strict=True)
    assert not missing and not unexpected


def test_cli_emit_python_writes_a_standalone_module(tmp_path, capsys):
    spec = ROOT / "specs" / "tutorial_cnn.dlspec"
    assert main(["emit", str(spec), "--python"]) == 0
    file = tmp_path / "emitted_cli.py"
    file.write_text(capsys.readouterr().out)
    compiled = specc.compile(spec).model.eval()
    standalone = _module_class(file, "TutorialCNN")().eval()
    standalone.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(standalone(x), compiled(x))


def test_a_slice_shorter_than_its_inferred_shape_fails_at_the_slice(tmp_path):
    """x[1:7] of N is inferred 3 long, which holds for N >= 7; a shorter N used to give a shorter
    tensor silently, failing later (or not at all)."""
    path = tmp_path / "slice.dlspec"
    path.write_text("spec 1\nmodel M {\n  input x: float32[N, 4]\n  y: [3, 4] = x |> Slice(0, 1, 7, 2)\n  output y\n}\n")
    model = specc.compile(path).model
    assert model(torch.randn(8, 4)).shape == (3, 4)
    with pytest.raises(AssertionError, match="Slice assumes dim 0 has 7 or more positions") as err:
        model(torch.randn(2, 4))
    assert f'File "{path}", line 4, column 20, in M' in err.value.__notes__[0]


@pytest.mark.parametrize("order", ["chunk first", "linear first"])
def test_a_multi_output_ops_values_keep_their_own_ids(order, tmp_path):
    """`s: Chunk` gives values s_0 and s_1; a layer named `s_0` must not take (or give) one of those ids."""
    chunk, linear = "  a, b = x |> s: Chunk(2, dim = 1)\n", "  c = x |> s_0: Linear(2)\n"
    body = chunk + linear if order == "chunk first" else linear + chunk
    path = tmp_path / "m.dlspec"
    path.write_text(f"model M {{\n  input x: float32[N, 4]\n{body}  y = a + c\n  output y\n}}\n")
    model = specc.compile(path).model
    x = torch.randn(3, 4)
    torch.testing.assert_close(model(x), x[:, :2] + model.s_0(x), rtol=0, atol=0)
