"""The Python API as a user meets it: specc.load / check / compile and the Compiled object."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specc

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "specs" / "tutorial_mlp.dlspec"


def test_importing_specc_changes_no_global_state():
    code = ("import logging, signal, sys, warnings\n"
            "filters, handlers = list(warnings.filters), list(logging.root.handlers)\n"
            "sigint, sigterm = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)\n"
            "import specc\n"
            "assert 'torch' not in sys.modules\n"
            "assert warnings.filters == filters and logging.root.handlers == handlers\n"
            "assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == (sigint, sigterm)\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_lazy_names_are_listed_and_every_public_callable_is_documented():
    assert {"Spec", "Compiled"} <= set(dir(specc))
    assert specc.Compiled is type(specc.compile(MLP, device="meta"))
    for f in (specc.load, specc.check, specc.compile, *(getattr(specc.Compiled, n) for n in
                                                        ("train", "export", "summary", "plan"))):
        assert (f.__doc__ or "").strip(), f


def test_params_keys_must_be_names():
    with pytest.raises(TypeError, match=r"params must map parameter names \(str\) to values, got the keys \[1\]"):
        specc.compile(MLP, params={1: 5})


def test_numpy_scalars_are_plain_values():
    from specc.schema.values import plain

    assert type(plain(np.float64(0.5))) is float and type(plain(np.True_)) is bool
    model = specc.compile(MLP, params={"classes": np.int64(3)}).model
    assert model.fc3.out_features == 3
    with pytest.raises(specc.SpecError) as err:  # numpy's float is named as the number it is
        specc.compile(MLP, params={"classes": np.float64(5.0)})
    assert "got 5.0" in str(err.value) and "np.float64" not in str(err.value)


def test_a_numpy_bool_sets_a_boolean_parameter(tmp_path):
    path = tmp_path / "m.dlspec"
    path.write_text("spec 1\nmodel M(b = true) {\n  input x: float32[N, 8]\n"
                    "  y = x |> fc: Linear(4, bias = b)\n  output y\n}\n")
    assert specc.compile(path, params={"b": np.False_}).model.fc.bias is None


def test_dtype_names_as_torch_prints_them():
    import torch

    assert specc.compile(MLP, dtype=str(torch.float64)).model.fc1.weight.dtype == torch.float64
    with pytest.raises(ValueError, match=r"floating-point dtype such as 'float32' or 'bfloat16', got 'nn'$"):
        specc.compile(MLP, dtype="nn")


def test_a_meta_model_is_not_trained_or_exported(tmp_path):
    compiled = specc.compile(MLP, device="meta")
    with pytest.raises(specc.UsageError, match="cannot train a model built on the meta device"):
        compiled.train(tmp_path / "run", epochs=1, verbose=False)
    with pytest.raises(specc.UsageError, match="cannot export a model built on the meta device"):
        compiled.export("onnx", tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_wrong_argument_types_are_type_errors(tmp_path):
    compiled = specc.compile(MLP, device="meta")
    with pytest.raises(TypeError, match="target must be the name of an export target such as 'onnx', got None"):
        compiled.export(None, tmp_path / "model.onnx")
    with pytest.raises(TypeError, match="depth must be a whole number or None, got '2'"):
        compiled.summary(depth="2")


def test_compiled_is_a_short_repr_and_hashable():
    path = ROOT / "specs" / "resnet18.dlspec"
    compiled = specc.compile(path, device="meta")
    assert repr(compiled) == f"Compiled(model 'ResNet18' of {path}, 11,689,512 parameters)"
    assert compiled in {compiled} and compiled != specc.compile(compiled.spec, device="meta")


def test_a_compiled_spec_deep_copies_and_errors_hash_by_identity():
    import copy

    compiled = specc.compile(ROOT / "specs" / "tutorial_mlp.dlspec")
    twin = copy.deepcopy(compiled)
    assert twin.ir == compiled.ir and twin.model is not compiled.model
    error = specc.SpecError([])
    assert len({error, specc.SpecError([])}) == 2


def test_a_loaded_spec_keeps_its_folder_when_the_working_directory_changes(tmp_path, monkeypatch):
    (tmp_path / "lib.dlspec").write_text("spec 1\nblock B(o) (x) {\n  return x |> Linear(o)\n}\n")
    (tmp_path / "m.dlspec").write_text('spec 1\nimport "lib.dlspec"\nmodel M {\n  input x: float32[N, 4]\n'
                                       "  y = x |> B(3)\n  output y\n}\n")
    monkeypatch.chdir(tmp_path)
    spec = specc.load("m.dlspec")
    monkeypatch.chdir(ROOT)
    assert specc.compile(spec).ir.param_count == 4 * 3 + 3


def test_a_model_compiled_in_another_dtype_trains_on_data_in_that_dtype(tmp_path):
    import torch

    compiled = specc.compile(ROOT / "specs" / "digits_cnn.dlspec", dtype="float64")
    metrics = compiled.train(tmp_path / "run", epochs=1, verbose=False)
    assert metrics["val/accuracy"] > 0.5 and compiled.model.head.weight.dtype == torch.float64


@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(__file__).parent.parent / "benchmarks").glob("bench_*.py")))
def test_the_benchmarks_still_import(name):
    """They reach into specc's modules; a refactor that moves a name must not break them unseen."""
    import importlib.util

    path = Path(__file__).parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
