"""specc's exporters: names, dynamic dims, verification failures, atomic artifacts, the CLI.

The per-spec exports (every spec in specs/ to onnx and pt2, aoti for two) are in
tests/test_export_specs.py.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import numpy as np  # noqa: E402

import specc  # noqa: E402
from specc.cli import main  # noqa: E402
from specc.errors import UsageError  # noqa: E402
from specc.exporters import ExportError, export_targets, get  # noqa: E402
from specc.exporters import onnx as onnx_exporter  # noqa: E402
from specc.exporters import pt2 as pt2_exporter  # noqa: E402
from specc.exporters.quiet import reason  # noqa: E402
from specc.exporters.samples import embedding_limit, make_samples, signature  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "specs" / "digits_cnn.dlspec"
FAST = {"latency_batch_sizes": ()}  # most tests need no latency figures

# two inputs (token ids and features) and two outputs whose names are not the layers' ids
TINY = """\
spec 1

model Tiny(vocab = 37) {
  input tokens: int64[N, T]
  input extra: float32[N, 4]

  pooled = tokens |> emb: Embedding(vocab, 16) |> Mean(dim = 1)
  joined = Concat(pooled, extra, dim = 1)
  scores = joined |> fc: Linear(3)
  gate = joined |> gate_fc: Linear(1) |> Sigmoid

  output scores, gate
}
"""


def write_spec(folder: Path, text: str, name: str = "tiny.dlspec") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def leftovers(folder: Path) -> list[str]:
    """Every file or folder an export left in `folder`, hidden staging folders included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return specc.compile(write_spec(tmp_path_factory.mktemp("tiny"), TINY))


@pytest.fixture(scope="module")
def tiny_onnx(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_onnx") / "model.onnx"
    return tiny.export("onnx", path, batch_sizes=[1, 7], latency_batch_sizes=(1,))


# ---------------------------------------------------------------- registry and options

def test_an_unknown_target_suggests_the_closest():
    with pytest.raises(UsageError, match=r"unknown export target `onx`; did you mean `onnx`\?"):
        get("onx")
    with pytest.raises(UsageError, match="targets: onnx, pt2, aoti, tensorrt"):
        get("tflite")


def test_unknown_targets_fail_before_any_work(tiny, tmp_path):
    with pytest.raises(UsageError, match="did you mean `pt2`"):
        export_targets(tiny, ["onnx", "pt3"], tmp_path)
    assert leftovers(tmp_path) == []


def test_options_are_checked(tiny, tmp_path):
    with pytest.raises(UsageError, match="unknown option.*opsett"):
        tiny.export("onnx", tmp_path / "m.onnx", opsett=18)
    with pytest.raises(UsageError, match="opset"):
        tiny.export("onnx", tmp_path / "m.onnx", opset=99)


# ---------------------------------------------------------------- samples

def test_samples_respect_embedding_ranges_and_vary_the_other_symbols(tiny):
    sig = signature(tiny)
    assert sig.input_names == ["tokens", "extra"] and sig.output_names == ["scores", "gate"]
    assert sig.symbols == ("N", "T")
    assert embedding_limit(tiny.ir, "tokens") == 37
    samples = make_samples(tiny, tiny.model.eval(), sig, [2, 7], seed=0)
    assert [s.dims for s in samples] == [{"N": 2, "T": 8}, {"N": 7, "T": 11}]
    tokens = samples[1].inputs[0]
    assert tokens.dtype == torch.int64 and tokens.shape == (7, 11)
    assert 0 <= int(tokens.min()) and int(tokens.max()) < 37
    again = make_samples(tiny, tiny.model, sig, [2, 7], seed=0)
    assert torch.equal(again[1].inputs[1], samples[1].inputs[1])  # a fixed seed


# ---------------------------------------------------------------- onnx

def test_onnx_names_are_the_specs(tiny_onnx):
    import onnx

    proto = onnx.load(str(tiny_onnx.path))
    assert [i.name for i in proto.graph.input] == ["tokens", "extra"]
    assert [o.name for o in proto.graph.output] == ["scores", "gate"]
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input]
    assert dims == [["N", "T"], ["N", 4]]
    assert proto.opset_import[0].version == 18


def test_onnx_dynamic_batch_runs_in_onnxruntime_at_batch_1_and_7(tiny, tiny_onnx):
    sess = onnx_exporter.session(tiny_onnx.path)
    model = tiny.model.eval()
    for batch, length in ((1, 5), (7, 13)):
        tokens = torch.randint(0, 37, (batch, length))
        extra = torch.randn(batch, 4)
        scores, gate = sess.run(None, {"tokens": tokens.numpy(), "extra": extra.numpy()})
        with torch.no_grad():
            want = model(tokens, extra)
        assert scores.shape == (batch, 3) and gate.shape == (batch, 1)
        np.testing.assert_allclose(scores, want[0].numpy(), atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(gate, want[1].numpy(), atol=1e-5, rtol=1e-4)
    assert tiny_onnx.verification.batch_sizes == (1, 7)
    assert tiny_onnx.verification.passed


def test_the_manifest_describes_the_artifact(tiny, tiny_onnx):
    manifest = json.loads(tiny_onnx.manifest.read_text())
    assert tiny_onnx.manifest.name == "model.onnx.manifest.json"
    assert manifest["format"] == "specc-export-manifest/1"
    assert manifest["spec"]["content_hash"] == tiny.spec.content_hash
    assert manifest["spec"]["model"] == "Tiny"
    assert set(manifest["versions"]) >= {"specc", "torch", "onnx", "onnxruntime"}
    assert manifest["inputs"] == [{"name": "tokens", "dtype": "int64", "shape": ["N", "T"]},
                                  {"name": "extra", "dtype": "float32", "shape": ["N", 4]}]
    assert manifest["outputs"] == [{"name": "scores", "dtype": "float32", "shape": ["N", 3]},
                                   {"name": "gate", "dtype": "float32", "shape": ["N", 1]}]
    check = manifest["verification"]
    assert check["passed"] and check["atol"] == 1e-4 and check["rtol"] == 1e-3 and check["batch_sizes"] == [1, 7]
    assert set(check["outputs"]) == {"scores", "gate"}
    assert all(o["max_abs_error"] <= 1e-4 for o in check["outputs"].values())
    lat = manifest["latency_ms"]["batch_1"]
    assert lat["artifact_ms"] > 0 and lat["eager_ms"] > 0
    assert manifest["export_seconds"] > 0
    assert manifest["files"][0]["name"] == "model.onnx" and len(manifest["files"][0]["sha256"]) == 64


def test_large_weights_go_to_external_data(tiny, tmp_path):
    result = tiny.export("onnx", tmp_path / "model.onnx", external_data=True, **FAST)
    assert leftovers(tmp_path) == ["model.onnx", "model.onnx.data", "model.onnx.manifest.json"]
    assert result.verification.passed
    assert json.loads(result.manifest.read_text())["export"]["external_data"] is True


def test_re_exporting_without_external_data_removes_the_earlier_weights_file(tiny, tmp_path):
    tiny.export("onnx", tmp_path / "model.onnx", external_data=True, **FAST)
    result = tiny.export("onnx", tmp_path / "model.onnx", external_data=False, **FAST)
    assert leftovers(tmp_path) == ["model.onnx", "model.onnx.manifest.json"]
    assert [f["name"] for f in json.loads(result.manifest.read_text())["files"]] == ["model.onnx"]


GRU_SEQUENCE = """\
spec 1

model Seq {
  input x: float32[N, T, 4]

  h = x |> enc: GRU(6)
  flat = h |> Reshape([0, -1])

  output flat
}
"""


def test_onnx_keeps_the_sequence_length_dynamic_after_a_gru_every_time(tmp_path):
    """torch.onnx used to bake the example's T into ops after a GRU (flat: Reshape to [N, 8 * 6]),
    and a second export in the same process specialised T outright."""
    import onnxruntime as ort

    compiled = specc.compile(write_spec(tmp_path, GRU_SEQUENCE, "seq.dlspec"))
    for _ in range(2):
        result = compiled.export("onnx", tmp_path / "out" / "model.onnx", **FAST)
    sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 13, 4)
    with torch.no_grad():
        expected = compiled.model.eval()(x)
    np.testing.assert_allclose(sess.run(None, {"x": x.numpy()})[0], expected.numpy(), atol=1e-5, rtol=1e-4)


MAX_OVER_TIME = """\
spec 1

model MaxOverTime {
  input tokens: int64[N, T]

  pooled = tokens |> emb: Embedding(11, 4) |> Transpose(1, 2) |> conv: Conv1d(5, 3) |> AdaptiveMaxPool1d(1)
  logits = pooled |> Flatten |> fc: Linear(2)

  output logits
}
"""


def test_the_pt2_manifest_names_the_sizes_a_guard_refuses(tmp_path):
    """The conv needs T >= 3, and tracing also assumes its output is not of length 1: the program
    refuses T = 3, which the range (min 3) alone would claim it takes."""
    result = specc.compile(write_spec(tmp_path, MAX_OVER_TIME)).export("pt2", tmp_path / "model.pt2", **FAST)
    facts = json.loads(result.manifest.read_text())["export"]
    assert facts["dims"]["T"]["min"] == 3 and "((-2) + T) != 1" in facts["guards"]
    program = torch.export.load(str(result.path)).module()
    with pytest.raises(Exception, match="Guard failed"):
        program(torch.zeros(2, 3, dtype=torch.int64))
    # torch inferred T's range alone: N keeps its stated one, from 1 (it was 2, though batch 1 runs)
    assert facts["dims"]["N"] == {"min": 1, "max": None}
    assert program(torch.zeros(1, 4, dtype=torch.int64)).shape == (1, 2)


def test_an_opset_the_converter_cannot_reach_is_an_error(tiny, tmp_path):
    with pytest.raises(ExportError, match="opset 18 model, not the requested opset 13") as err:
        tiny.export("onnx", tmp_path / "model.onnx", opset=13, **FAST)
    assert err.value.code == "E0801"
    assert re.search(r"could not convert it \(\w.+\)$", err.value.diagnostics[0].message)  # the converter's reason
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- failures leave nothing behind

def test_tolerance_zero_fails_with_the_max_error_through_the_cli(tmp_path, capsys):
    spec = write_spec(tmp_path, DIGITS.read_text().replace("onnx { opset = 18 }",
                                                           "onnx { opset = 18, atol = 0, rtol = 0 }"), "digits.dlspec")
    out = tmp_path / "out"
    assert main(["build", str(spec), "-o", str(out)]) == 1
    text = capsys.readouterr().out
    assert "onnx: FAILED error[E0802]" in text and "max abs error" in text and "no artifact written" in text
    assert leftovers(out) == ["model.safetensors"]


def test_a_garbage_artifact_fails_and_leaves_nothing(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_exporter, "_save", lambda program, path, external: Path(path).write_bytes(b"garbage"))
    with pytest.raises(ExportError, match="the onnx artifact does not load back") as err:
        tiny.export("onnx", tmp_path / "model.onnx", **FAST)
    assert err.value.code == "E0802"
    assert leftovers(tmp_path) == []


def test_corrupted_weights_fail_with_the_max_error(tiny, tmp_path, monkeypatch):
    save = pt2_exporter._save

    def corrupt(ep, path):  # a loadable artifact whose weights are off
        with torch.no_grad():
            ep.state_dict["fc.weight"].add_(0.5)
        save(ep, path)
    monkeypatch.setattr(pt2_exporter, "_save", corrupt)
    with pytest.raises(ExportError, match=r"`scores` max abs error [0-9.e+-]+, max rel error") as err:
        tiny.export("pt2", tmp_path / "model.pt2", **FAST)
    assert err.value.code == "E0802" and "`gate`" not in err.value.message
    assert leftovers(tmp_path) == []


def test_a_failed_target_removes_the_stale_artifact_of_an_earlier_build(tiny, tmp_path, monkeypatch, capsys):
    assert export_targets(tiny, ["pt2"], tmp_path, options={"pt2": FAST}) == 0
    assert leftovers(tmp_path) == ["model.pt2", "model.pt2.manifest.json"]
    monkeypatch.setattr(pt2_exporter, "_save", lambda ep, path: Path(path).write_bytes(b"garbage"))
    assert export_targets(tiny, ["pt2"], tmp_path, options={"pt2": FAST}) == 1
    assert "(the one from an earlier build was removed)" in capsys.readouterr().out
    assert leftovers(tmp_path) == []


def test_a_build_removes_the_artifacts_an_earlier_build_exported_from_other_weights(tmp_path, capsys):
    """Only specc's own artifacts (a manifest beside them) go; the user's files stay."""
    spec = write_spec(tmp_path, TINY)
    out = tmp_path / "out"
    assert main(["build", str(spec), "-o", str(out), "--export", "pt2"]) == 0
    (out / "model.onnx").write_bytes(b"the user's own file, no manifest")
    assert main(["build", str(spec), "-o", str(out)]) == 0
    assert f"note: removed {out / 'model.pt2'}, exported from an earlier build's weights" in capsys.readouterr().err
    assert leftovers(out) == ["model.onnx", "model.safetensors"]


def test_an_exporter_crash_is_told_in_one_paragraph(tiny, tmp_path, monkeypatch, capsys):
    def crash(job):
        try:
            raise KeyError("aten::frobnicate")
        except KeyError as inner:
            raise RuntimeError("Failed to export the model.\n\n" + "x\n" * 200) from inner
    monkeypatch.setattr(onnx_exporter, "convert", crash)
    assert export_targets(tiny, ["onnx"], tmp_path) == 1
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and len(out) < 900
    assert "onnx export failed: KeyError: 'aten::frobnicate'" in out
    assert leftovers(tmp_path) == []


def test_reason_takes_torch_onnx_exception_summary():
    err = RuntimeError("Failed to export the model with torch.export. \x1b[96mThis is step 1/3\x1b[0m\n"
                       "- Modify the model code\n\n## Exception summary\n\n<class 'ValueError'>: T is 8\n"
                       "\n(Refer to the full stack trace above for more information.)")
    assert reason(err) == "RuntimeError: T is 8"


# ---------------------------------------------------------------- quiet, weights, CLI

@pytest.mark.filterwarnings("ignore")  # verbose lets the exporters' own warnings through, as it should
def test_exporters_are_quiet_unless_verbose(tiny, tmp_path, capfd):
    tiny.export("onnx", tmp_path / "a.onnx", **FAST)
    captured = capfd.readouterr()
    assert "[torch.onnx]" not in captured.out + captured.err
    tiny.export("onnx", tmp_path / "b.onnx", verbose=True, **FAST)
    captured = capfd.readouterr()
    assert "[torch.onnx]" in captured.out + captured.err


def test_cli_build_exports_onnx_with_its_manifest(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["build", str(DIGITS), "--export", "onnx", "-o", str(out)]) == 0
    assert leftovers(out) == ["model.onnx", "model.onnx.manifest.json", "model.safetensors"]
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("onnx:")]
    assert len(line) == 1 and "verified at batch 2,7" in line[0] and "logits max abs err" in line[0]
    manifest = json.loads((out / "model.onnx.manifest.json").read_text())
    assert manifest["target"] == "onnx" and manifest["artifact"] == "model.onnx"
    assert manifest["spec"]["content_hash"] == specc.load(DIGITS).content_hash
    assert manifest["inputs"] == [{"name": "image", "dtype": "float32", "shape": ["N", 1, 8, 8]}]
    assert manifest["outputs"] == [{"name": "logits", "dtype": "float32", "shape": ["N", 10]}]
    assert manifest["verification"]["passed"] and manifest["verification"]["batch_sizes"] == [2, 7]
    assert set(manifest["latency_ms"]) == {"batch_1", "batch_32"}
    assert all(v["artifact_ms"] > 0 and v["eager_ms"] > 0 for v in manifest["latency_ms"].values())
    assert manifest["export_seconds"] > 0
    assert manifest["versions"]["onnxruntime"]


def test_cli_build_exports_the_weights_given(tmp_path):
    from safetensors.torch import save_model

    model = specc.compile(DIGITS).model
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.25)
    weights = tmp_path / "trained.safetensors"
    save_model(model, str(weights))
    out = tmp_path / "out"
    assert main(["build", str(DIGITS), "--export", "onnx", "-o", str(out), "--weights", str(weights)]) == 0
    x = torch.randn(3, 1, 8, 8)
    got = onnx_exporter.session(out / "model.onnx").run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        want = model.eval()(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # importing torch.compile's internals
def test_exporting_a_torch_compiled_module_exports_the_module_inside(tmp_path):
    compiled = specc.compile(DIGITS, compile=True)
    result = compiled.export("onnx", tmp_path / "model.onnx", **FAST)
    assert result.verification.passed


# ---------------------------------------------------------------- tensorrt

def _tensorrt_ready() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import torch_tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_tensorrt_ready(), reason="this machine has CUDA and torch_tensorrt")
def test_tensorrt_without_gpu_or_package_says_what_is_missing_in_one_sentence(tmp_path, capsys):
    # exit 1 (the issue's); the onnx target of the spec's export section still verifies
    assert main(["build", str(DIGITS), "--export", "tensorrt", "-o", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    line = [x for x in out if x.startswith("tensorrt:")]
    assert len(line) == 1 and "error[E0803]: the tensorrt target needs" in line[0]
    assert any(x.startswith(f"onnx: {tmp_path / 'model.onnx'} verified") for x in out)
    assert line[0].count(". ") == 0
    assert not (tmp_path / "model.trt.ep").exists()


@pytest.mark.slow
@pytest.mark.skipif(not _tensorrt_ready(), reason="needs an NVIDIA GPU and torch_tensorrt")
def test_tensorrt_exports_and_verifies(tmp_path):
    compiled = specc.compile(DIGITS)
    result = compiled.export("tensorrt", tmp_path / "model.trt.ep", batch_sizes=[1, 7])
    assert result.verification.passed
    assert json.loads(result.manifest.read_text())["versions"]["torch_tensorrt"]


# ---------------------------------------------------------------- torch.compile

@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # importing torch.compile's internals
def test_compile_true_returns_a_torch_compiled_module_that_matches_eager():
    compiled = specc.compile(DIGITS, compile=True)
    assert isinstance(compiled.model, torch._dynamo.eval_frame.OptimizedModule)
    eager = compiled.model._orig_mod  # the fx GraphModule torch.compile wraps
    compiled.model.eval()
    for batch in (4, 9):
        x = torch.randn(batch, 1, 8, 8)
        with torch.no_grad():
            torch.testing.assert_close(compiled.model(x), eager(x), atol=1e-5, rtol=1e-4)


def test_no_staging_folder_survives_an_export(tiny, tmp_path):
    tiny.export("pt2", tmp_path / "model.pt2", **FAST)
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


# ---------------------------------------------------------------- dtypes, names, files, arguments

# a float64 input beside float32 ones: the weights are float32, `flag` stays float64
MULTI = """\
spec 1
model Multi(vocab = 50) {
  input tokens: int64[N, T]
  input feats: float32[N, S, 6]
  input flag: float64[N, 3]
  e = tokens |> emb: Embedding(vocab, 16) |> Mean(dim = 1)
  f = feats |> fc: Linear(16) |> Mean(dim = 1)
  h = e + f
  logits = h |> head: Linear(4)
  g = flag |> Sum(dim = 1)
  seq = feats |> proj: Linear(2)
  output logits, seq, g
}
"""

# a model that returns one of its inputs
SAME = """\
spec 1
model Same {
  input x: float32[N, 4]
  y = x |> fc: Linear(4)
  output x, y
}
"""


def test_samples_keep_each_inputs_declared_dtype(tmp_path):
    spec = write_spec(tmp_path, MULTI, "multi.dlspec")
    compiled = specc.compile(spec)
    sample = make_samples(compiled, compiled.model.eval(), signature(compiled), [2], seed=0)[0]
    assert [t.dtype for t in sample.inputs] == [torch.int64, torch.float32, torch.float64]
    assert [t.dtype for t in sample.expected] == [torch.float32, torch.float32, torch.float64]
    cast = specc.compile(spec, dtype="float64")  # an explicit dtype: the float32 inputs follow the weights
    sample = make_samples(cast, cast.model.eval(), signature(cast), [2], seed=0)[0]
    assert [t.dtype for t in sample.inputs] == [torch.int64, torch.float64, torch.float64]


def test_a_float64_input_stays_float64_in_onnx(tmp_path):
    import onnx

    compiled = specc.compile(write_spec(tmp_path, MULTI, "multi.dlspec"))
    result = compiled.export("onnx", tmp_path / "out" / "model.onnx", **FAST)
    assert result.verification.passed
    proto = onnx.load(str(result.path))
    types = {v.name: v.type.tensor_type.elem_type for v in [*proto.graph.input, *proto.graph.output]}
    assert types["flag"] == onnx.TensorProto.DOUBLE and types["g"] == onnx.TensorProto.DOUBLE
    assert types["feats"] == onnx.TensorProto.FLOAT
    flag = np.random.default_rng(0).standard_normal((3, 3))  # float64, as the manifest says
    feeds = {"tokens": np.zeros((3, 5), np.int64), "feats": np.ones((3, 2, 6), np.float32), "flag": flag}
    g = onnx_exporter.session(result.path).run(["g"], feeds)[0]
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, flag.sum(axis=1))


def test_verification_fails_on_an_output_of_another_dtype(tiny, tmp_path, monkeypatch):
    from specc.exporters import verify as verify_module

    sample = make_samples(tiny, tiny.model.eval(), signature(tiny), [2], seed=0)[0]
    job = type("J", (), {"target": "onnx", "options": {"atol": 1e-4, "rtol": 1e-3, "batch_sizes": [2]},
                         "signature": signature(tiny), "samples": (sample,)})()
    with pytest.raises(ExportError, match="output `scores` is float64, PyTorch's is float32"):
        verify_module.verify(lambda inputs: [t.double() for t in sample.expected], job)


def test_an_output_that_is_an_input_exports_to_onnx(tmp_path):
    import onnx

    compiled = specc.compile(write_spec(tmp_path, SAME, "same.dlspec"))
    result = compiled.export("onnx", tmp_path / "model.onnx", **FAST)
    assert result.verification.passed and [o.name for o in result.outputs] == ["x", "y"]
    proto = onnx.load(str(result.path))
    assert [i.name for i in proto.graph.input] == ["x"]
    assert [o.name for o in proto.graph.output] == ["x_out", "y"]
    assert json.loads(result.manifest.read_text())["export"]["renamed_outputs"] == {"x": "x_out"}
    x = torch.randn(3, 4)
    got_x, got_y = onnx_exporter.session(result.path).run(None, {"x": x.numpy()})
    np.testing.assert_array_equal(got_x, x.numpy())
    with torch.no_grad():
        same, y = compiled.model.eval()(x)  # the model itself is unchanged
    assert torch.equal(same, x)
    np.testing.assert_allclose(got_y, y.numpy(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_the_weights_file_gets_the_mode_of_any_other_file(tmp_path, umask):
    from specc.build import save_weights

    old = os.umask(umask)
    try:
        (tmp_path / "plain.txt").write_text("x")
        save_weights(specc.compile(DIGITS).model, tmp_path / "model.safetensors")
    finally:
        os.umask(old)
    mode = (tmp_path / "model.safetensors").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert leftovers(tmp_path) == ["model.safetensors", "plain.txt"]


def test_cli_build_writes_the_weights_0644_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["build", str(ROOT / "specs" / "tutorial_mlp.dlspec"), "-o", str(tmp_path / "b")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "b" / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_a_folder_where_the_manifest_goes_fails_before_anything_is_moved(tiny, tmp_path, capsys):
    (tmp_path / "model.pt2.manifest.json").mkdir()
    assert export_targets(tiny, ["pt2"], tmp_path, options={"pt2": FAST}) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith("pt2: FAILED error[E0801]: cannot write the pt2 artifact: ")
    assert f"{tmp_path / 'model.pt2.manifest.json'} is a folder" in line and "\n" not in line
    assert leftovers(tmp_path) == ["model.pt2.manifest.json"]


def test_a_folder_that_appears_during_the_export_stops_the_move(tiny, tmp_path, monkeypatch):
    build = pt2_exporter.build

    def build_then_block(job, path):  # someone makes a folder where the manifest goes, mid-export
        (tmp_path / "model.pt2.manifest.json").mkdir()
        return build(job, path)
    monkeypatch.setattr(pt2_exporter, "build", build_then_block)
    with pytest.raises(ExportError, match="model.pt2.manifest.json is a folder"):
        tiny.export("pt2", tmp_path / "model.pt2", **FAST)
    assert leftovers(tmp_path) == ["model.pt2.manifest.json"]


@pytest.mark.parametrize("options, error, message", [
    ({"seed": "a"}, TypeError, "seed must be an integer"),
    ({"seed": -1}, ValueError, "seed must be at least 0"),
    ({"latency_batch_sizes": 5}, TypeError, "latency_batch_sizes must be a list or tuple"),
    ({"latency_batch_sizes": [1, 0]}, ValueError, "each of latency_batch_sizes must be at least 1"),
    ({"latency_max_seconds": "x"}, TypeError, "latency_max_seconds must be a number"),
    ({"latency_max_seconds": -1.0}, ValueError, "latency_max_seconds must be a positive"),
    ({"dims": 5}, TypeError, "dims must be a dict"),
    ({"dims": {"Q": 3}}, ValueError, r"dims names `Q`, which is not a symbol of the model \(its other symbols are T\)"),
    ({"dims": {"N": 3}}, ValueError, "dims cannot set the batch dim `N`"),
    ({"dims": {"T": "16"}}, TypeError, r"dims\['T'\] must be an integer"),
])
def test_bad_arguments_fail_before_any_work_naming_the_argument(tiny, tmp_path, monkeypatch, options, error, message):
    monkeypatch.setattr(pt2_exporter, "build", lambda job, path: pytest.fail("exported despite a bad argument"))
    with pytest.raises(error, match=message) as err:
        tiny.export("pt2", tmp_path / "model.pt2", **options)
    assert str(err.value).count(". ") == 0
    assert leftovers(tmp_path) == []


def test_a_folder_or_a_non_path_as_destination_fails_before_any_work(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_exporter, "convert", lambda job: pytest.fail("exported to a bad destination"))
    with pytest.raises(ExportError, match=f"cannot write the onnx artifact: {tmp_path} is a folder"):
        tiny.export("onnx", tmp_path)
    with pytest.raises(TypeError, match="path must be a file path"):
        tiny.export("onnx", 5)
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="file is not a folder"):
        tiny.export("onnx", tmp_path / "file" / "model.onnx")
    assert leftovers(tmp_path) == ["file"]


def test_good_arguments_of_other_types_are_taken(tiny, tmp_path):
    result = tiny.export("pt2", tmp_path / "model.pt2", seed=np.int64(3), dims={"T": 5},
                         latency_batch_sizes=[1], latency_max_seconds=5, batch_sizes=(np.int64(2), 6))
    options = json.loads(result.manifest.read_text())["options"]
    assert options["seed"] == 3 and options["dims"] == {"T": 5} and options["batch_sizes"] == [2, 6]
    assert options["latency_batch_sizes"] == [1] and options["latency_max_seconds"] == 5.0
    assert result.verification.samples == ({"N": 2, "T": 5}, {"N": 6, "T": 8})
