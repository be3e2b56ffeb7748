"""`specc emit --python` run as users run it: the file alone, in a fresh interpreter where specc
cannot be imported; and the files the CLI writes (`emit -o`, `build`) on destinations that fail."""
import ast
import subprocess
import sys
from pathlib import Path

import torch

import specc
from specc.cli import main
from specc.emit import emit_python

ROOT = Path(__file__).resolve().parent.parent

# Every kind of op, several inputs (one of int ids) and outputs, a block in a repeat with a block
# nested in it, a named list, a layer applied twice, a learned Parameter, a tie and a constant.
EVERY_OP = """spec 1
K = 3

block Res(c) (x) {
  h = x |> a: Conv2d(c, 3, padding = 1) |> bn: BatchNorm2d |> ReLU
  return h + x
}

block Stage(c) (x) {
  return x |> pre: Conv2d(c, 1) |> res: Res(c)
}

model EveryOp(width = 8) {
  input img: float32[N, 3, 16, 16]
  input ids: int64[N, T]
  input seq: float32[N, T, 12]

  c = img |> stem: Conv2d(width, K, padding = 1) |> BatchNorm2d |> ReLU6
      |> stages: repeat 2 { Stage(width) }
      |> grp: [Conv2d(width, 1), GroupNorm(2)] |> LeakyReLU(0.2) |> Hardswish
  c2 = c |> MaxPool2d(2) |> AvgPool2d(2) |> AdaptiveAvgPool2d(1) |> Flatten
  c3 = c |> AdaptiveMaxPool2d([2, 2]) |> Upsample(scale_factor = 2) |> ConvTranspose2d(4, 2, stride = 2) |> Flatten
  s = (ids |> emb: Embedding(20, 12, padding_idx = 0)) + (ids |> Positions |> pe: Embedding(64, 12)) + seq
  s = s |> shared: Linear(12) |> GELU |> shared |> SiLU
  l = s |> lstm: LSTM(10, output = "last")
  g = s |> gru: GRU(6, output = "hidden", bidirectional = true)
  r = s |> rnn: RNN(5, num_layers = 2) |> Tanh |> Sigmoid
  a = s |> mha: MultiheadAttention(2, causal = true) |> LayerNorm |> RMSNorm
  q, k, v = a |> Chunk(3, dim = -1)
  x1, x2 = ScaledDotProductAttention(q, k, v, is_causal = true) |> Split([1, 3], dim = -1)
  m = MatMul(x1 |> Transpose(1, 2), x2) |> Mean(dim = -1)
  m2 = s |> Permute([0, 2, 1]) |> Conv1d(4, 3) |> BatchNorm1d |> MaxPool1d(2) |> AvgPool1d(1)
        |> AdaptiveAvgPool1d(2) |> AdaptiveMaxPool1d(1) |> Reshape([0, -1])
  sel = s |> Select(1, 0) |> Unflatten(1, [3, 4]) |> Slice(1, 1, 3) |> Sum(dim = [1, 2], keepdim = true)
  d = Concat(c2, c3, l, g, dim = 1) |> Dropout(0.1) |> Mul(0.5) |> Sub(1) |> Div(2.0) |> head: Linear(7)
  cls = tok: Parameter([1, 7]) |> ExpandAs(d)
  o = Softmax(d) + LogSoftmax(d, dim = 0) + (sel |> Flatten) + cls |> Identity
  logits = s |> lm_head: Linear(20, bias = false)
  tie lm_head.weight = emb.weight
  output o, m, r, m2, logits
}
"""

RUNNER = """
import sys, torch
sys.path.insert(0, ".")
from emitted import {name} as Model
assert "specc" not in sys.modules
data = torch.load("data.pt")
model = Model()
assert list(model.state_dict()) == list(data["state"]), "state_dict keys differ"
model.load_state_dict(data["state"], strict=True)
with torch.no_grad():
    out = model.eval()(*data["inputs"])
torch.save(out if isinstance(out, tuple) else (out,), "out.pt")
"""


def _standalone_outputs(compiled, inputs, folder: Path) -> tuple:
    """The emitted file's outputs for `inputs` with the compiled model's weights, run by a fresh
    `python -I` (no site-packages path of this checkout, no current folder: specc is not importable)."""
    (folder / "emitted.py").write_text(emit_python(compiled))
    torch.save({"state": compiled.model.state_dict(), "inputs": inputs}, folder / "data.pt")
    run = subprocess.run([sys.executable, "-I", "-c", RUNNER.format(name=compiled.ir.name)], cwd=folder,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return torch.load(folder / "out.pt")


def _assert_same_outputs(compiled, inputs, folder: Path) -> None:
    with torch.no_grad():
        want = compiled.model.eval()(*inputs)
    got = _standalone_outputs(compiled, inputs, folder)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_every_op_gives_the_compiled_models_outputs(tmp_path):
    spec = tmp_path / "every_op.dlspec"
    spec.write_text(EVERY_OP)
    compiled = specc.compile(spec)
    inputs = [torch.randn(2, 3, 16, 16), torch.randint(0, 20, (2, 6)), torch.randn(2, 6, 12)]
    _assert_same_outputs(compiled, inputs, tmp_path)


INITS_AND_TIES = """model Inits {
  input ids: int64[N, T]
  h = ids |> emb: Embedding(20, 8, padding_idx = 0, init = normal(std = 0.02))
    |> fc: Linear(16, init = xavier) |> norm: LayerNorm |> GELU
    |> proj: Linear(8, init = trunc_normal(std = 0.02)) |> plain: Linear(8)
  y = h |> lm_head: Linear(20, bias = false)
  tie lm_head.weight = emb.weight
  output y
}
"""

FRESH_WEIGHTS = """
import sys, torch
sys.path.insert(0, ".")
from emitted import Inits
torch.manual_seed(0)
torch.save(Inits().state_dict(), "fresh.pt")
"""


def test_fresh_weights_of_the_file_equal_the_compiled_models_for_the_same_seed(tmp_path):
    """Both skip the default init that a spec's `init` or a `tie` overwrites (a layer after such a
    layer drew other numbers in the file, which ran the default init first)."""
    spec = tmp_path / "inits.dlspec"
    spec.write_text(INITS_AND_TIES)
    source = emit_python(specc.compile(spec, device="meta"))
    assert "nn.utils.skip_init(nn.Linear, in_features=8, out_features=20, bias=False)" in source  # lm_head: tied
    assert "nn.utils.skip_init(nn.LayerNorm" not in source and "'plain', nn.Linear(" in source
    (tmp_path / "emitted.py").write_text(source)
    run = subprocess.run([sys.executable, "-I", "-c", FRESH_WEIGHTS], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    torch.manual_seed(0)
    want = specc.compile(spec).model.state_dict()
    got = torch.load(tmp_path / "fresh.pt")
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_the_files_docstring_says_how_builds_weights_load_tied_weights_included(tmp_path):
    import runpy

    from safetensors.torch import load_model

    spec = tmp_path / "inits.dlspec"
    spec.write_text(INITS_AND_TIES)
    assert main(["build", str(spec), "-o", str(tmp_path / "build")]) == 0
    source = emit_python(specc.compile(spec, device="meta"))
    assert "model.safetensors with safetensors.torch.load_model(model, path)" in source
    (tmp_path / "emitted.py").write_text(source)
    model = runpy.run_path(str(tmp_path / "emitted.py"))["Inits"]()
    assert load_model(model, tmp_path / "build" / "model.safetensors", strict=True) == (set(), [])
    assert model.lm_head.weight is model.emb.weight


def test_a_spec_path_with_a_backslash_or_triple_quotes(tmp_path):
    """The path is quoted in the file's docstring: `\\N` there was a SyntaxError, `\"\"\"` ended it."""
    folder = tmp_path / "we\\Nird"
    folder.mkdir()
    spec = folder / 'a"""b.dlspec'
    spec.write_text("model M {\n  input x: float32[N, 4]\n  y = x |> fc: Linear(3)\n  output y\n}\n")
    compiled = specc.compile(spec)
    _assert_same_outputs(compiled, [torch.randn(2, 4)], tmp_path)
    assert f"from {spec}." in ast.get_docstring(ast.parse(emit_python(compiled)))


def test_a_float64_spec_emits_a_float64_model(tmp_path):
    """specc.compile makes float64 weights for float64 inputs; the emitted model did not (a dtype error)."""
    spec = tmp_path / "f64.dlspec"
    spec.write_text("model M {\n  input x: float64[N, 4]\n  y = x |> fc: Linear(3) |> BatchNorm1d\n  output y\n}\n")
    _assert_same_outputs(specc.compile(spec), [torch.randn(2, 4, dtype=torch.float64)], tmp_path)


def test_emit_to_a_path_that_cannot_be_made_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / ("a" * 300 + ".py")  # longer than any file system's name limit
    assert main(["emit", str(ROOT / "specs" / "tutorial_mlp.dlspec"), "--python", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"specc: error: [Errno 36] File name too long: '{out}'" in err and "Traceback" not in err


def test_build_on_a_full_disk_keeps_the_old_weights(tmp_path, capsys, monkeypatch):
    """safetensors reports a full disk as a SafetensorError: a clear message and exit 2, not an
    internal error; the weights already there are kept and no temp file is left."""
    import safetensors.torch
    from safetensors import SafetensorError

    def full_disk(model, filename):
        Path(filename).write_bytes(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_model", full_disk)
    (tmp_path / "model.safetensors").write_bytes(b"old")
    assert main(["build", str(ROOT / "specs" / "tutorial_mlp.dlspec"), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"specc: error: cannot write the weights to {tmp_path / 'model.safetensors'}: " \
           "Error while serializing: I/O error: No space left on device (os error 28)" in err
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    assert (tmp_path / "model.safetensors").read_bytes() == b"old"
