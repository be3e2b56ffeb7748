"""Every model of every spec in specs/ exports to ONNX and pt2 and verifies against PyTorch;
AOTInductor for digits_cnn and resnet18.

Big models (over 20M parameters or 100 layers applied) and the AOTInductor compiles are
marked slow; CI runs them too. Models heavier than 1 GMAC per sample verify at batch sizes
2 and 3 instead of 2 and 7; the latency figures are measured by test_export.py and
benchmarks/bench_export.py, not here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import specc  # noqa: E402
from specc.compiled import build_ir  # noqa: E402
from specc.exporters.samples import signature  # noqa: E402
from specc.ir.dims import substitute  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.dlspec"))
BIG_PARAMS = 20_000_000
BIG_NODES = 100
HEAVY_MACS = 1_000_000_000  # per sample, at T = 8


def cases():
    for path in SPECS:
        try:
            spec = specc.load(path)
            models = list(spec.models)
        except specc.SpecError as err:  # a spec being written: fail its own case, not the collection
            yield pytest.param(path, None, str(err), id=path.stem)
            continue
        for model in models:
            graph = build_ir(spec, model)
            big = graph.param_count > BIG_PARAMS or len(graph.nodes) > BIG_NODES
            yield pytest.param(path, model, _batch_sizes(graph), id=f"{path.stem}.{model}",
                               marks=[pytest.mark.slow] if big else [])


def _batch_sizes(graph) -> list[int]:
    macs = substitute(graph.macs, {s: (1 if i == 0 else 8) for i, s in enumerate(graph.symbols)})
    return [2, 3] if macs > HEAVY_MACS else [2, 7]


def assert_verified(result, compiled):
    assert result.verification.passed, result.verification
    names = [o.name for o in result.outputs]
    assert names == list(compiled.spec.models[compiled.ir.name].outputs)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["verification"]["passed"]
    assert [i["name"] for i in manifest["inputs"]] == list(compiled.ir.inputs)
    assert [o["name"] for o in manifest["outputs"]] == names


@pytest.mark.parametrize("path, model, batch_sizes", list(cases()))
def test_spec_exports_to_onnx_and_pt2(path, model, batch_sizes, tmp_path):
    import onnx

    if model is None:
        pytest.fail(f"{path.name} does not load:\n{batch_sizes}")
    compiled = specc.compile(path, model=model)
    options = {"batch_sizes": batch_sizes, "latency_batch_sizes": ()}

    result = compiled.export("onnx", tmp_path / "model.onnx", **options)
    assert_verified(result, compiled)
    proto = onnx.load(str(result.path), load_external_data=False)
    assert [i.name for i in proto.graph.input] == list(compiled.ir.inputs)
    assert [o.name for o in proto.graph.output] == [o.name for o in result.outputs]
    symbols = signature(compiled).symbols
    if symbols:  # the batch dim is a named dynamic axis
        assert {i.type.tensor_type.shape.dim[0].dim_param for i in proto.graph.input} == {symbols[0]}

    result = compiled.export("pt2", tmp_path / "model.pt2", **options)
    assert_verified(result, compiled)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.onnx", "model.onnx.manifest.json", "model.pt2", "model.pt2.manifest.json"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits_cnn", "resnet18"])
def test_aoti_package_verifies(name, tmp_path):
    compiled = specc.compile(ROOT / "specs" / f"{name}.dlspec")
    result = compiled.export("aoti", tmp_path / "model.aoti.pt2", latency_batch_sizes=(1,))
    assert_verified(result, compiled)
    assert result.latency[0].artifact_ms > 0 and result.latency[0].eager_ms > 0
    runner = torch._inductor.aoti_load_package(str(result.path))
    x = torch.randn(1, *compiled.ir.values[compiled.ir.inputs[0]].type.shape[1:])
    with torch.no_grad():  # batch 1 too: the batch dim stays dynamic
        torch.testing.assert_close(runner(x), compiled.model.eval()(x), atol=1e-4, rtol=1e-3)
