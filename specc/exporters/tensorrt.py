"""tensorrt: Torch-TensorRT's dynamo path, behind the `specc[tensorrt]` extra.

The model is exported with torch.export (the spec's symbols as shared torch.export.Dim with
the engine's bounds), compiled with torch_tensorrt.compile(ir="dynamo") with one
torch_tensorrt.Input(min_shape, opt_shape, max_shape) per input, saved with
torch_tensorrt.save(output_format="exported_program"), loaded back with torch_tensorrt.load
and verified on the GPU against eager PyTorch at the same precision. The batch dim ranges
over [1, max_batch] (optimised for the first verification batch size); other symbols over
the sizes the verification samples use.

TensorRT's libraries come from NVIDIA's own package index and need an NVIDIA GPU, so this
target is written against Torch-TensorRT's documented API and tested only where both exist.
"""
from __future__ import annotations

import copy
import inspect
from pathlib import Path

from ..schema.export import TensorRTTarget
from .base import Built, ExportError, Job
from .capture import dim_ranges, export_program

TARGET = "tensorrt"
FILENAME = "model.trt.ep"
OPTIONS = TensorRTTarget
EXTRA_OPTIONS = {"max_batch": 32}
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def require() -> dict:
    missing = []
    try:
        import torch_tensorrt
    except ImportError:
        torch_tensorrt = None
        missing.append("the torch-tensorrt package (pip install 'specc[tensorrt]')")
    import torch
    if not torch.cuda.is_available():
        missing.append("an NVIDIA GPU that torch can use (CUDA)")
    if missing:
        raise ExportError("E0803", f"the tensorrt target needs {' and '.join(missing)}, which this machine does not have")
    return {"torch_tensorrt": torch_tensorrt.__version__, "tensorrt": _tensorrt_version()}


def _tensorrt_version() -> str | None:
    try:
        import tensorrt
        return tensorrt.__version__
    except ImportError:
        return None


def device() -> str:
    return "cuda"


def adapt_model(model, options: dict):
    """A copy of the model on the GPU, in the precision the engine is built for."""
    import torch

    dtype = getattr(torch, PRECISIONS[options["precision"]])
    return copy.deepcopy(model).to(device="cuda", dtype=dtype)


def bounds(job: Job) -> dict:
    """{symbol: (min, max)}: batch [1, max_batch], the others over the sample sizes."""
    sig = job.signature
    out = {}
    for k, sym in enumerate(sig.symbols):
        sizes = [s.dims[sym] for s in job.samples] + [job.example.dims[sym]]
        if k == 0:
            out[sym] = (1, max([int(job.options["max_batch"])] + sizes))
        else:
            out[sym] = (min(sizes), max(sizes))
    return out


def trt_inputs(job: Job, ranges: dict) -> list:
    import torch_tensorrt

    inputs = []
    for spec, example in zip(job.signature.inputs, job.example.inputs):
        if any(isinstance(d, str) and d not in ranges for d in spec.shape):
            raise ExportError("E0801", f"the tensorrt target takes input axes that are single symbols or sizes; "
                                       f"`{spec.name}` has {list(spec.shape)}")
        lo = [ranges[d][0] if isinstance(d, str) else d for d in spec.shape]
        hi = [ranges[d][1] if isinstance(d, str) else d for d in spec.shape]
        opt = list(example.shape)
        inputs.append(torch_tensorrt.Input(min_shape=lo, opt_shape=opt, max_shape=hi, dtype=example.dtype,
                                           name=spec.name))
    return inputs


def build(job: Job, path: Path) -> Built:
    import torch
    import torch_tensorrt

    ranges = bounds(job)
    ep = export_program(job, ranges)
    dtype = getattr(torch, PRECISIONS[job.options["precision"]])
    trt_module = torch_tensorrt.compile(ep, ir="dynamo", arg_inputs=trt_inputs(job, ranges),
                                        enabled_precisions={dtype}, min_block_size=1)
    _save(trt_module, path, job)
    return Built((path,), {"precision": job.options["precision"], "dims": dim_ranges(ep, job.signature),
                           "engine_bounds": {s: {"min": lo, "max": hi} for s, (lo, hi) in ranges.items()}})


def _save(trt_module, path: Path, job: Job) -> None:
    import torch_tensorrt

    kwargs = {"output_format": "exported_program", "arg_inputs": list(job.example.inputs)}
    params = inspect.signature(torch_tensorrt.save).parameters
    if "dynamic_shapes" in params:  # newer torch-tensorrt: keep the symbolic shapes when re-exporting
        from .capture import dynamic_shapes
        kwargs["dynamic_shapes"] = dynamic_shapes(job.signature, bounds(job))
        kwargs["retrace"] = True
    torch_tensorrt.save(trt_module, str(path), **kwargs)


def load(path: Path, job: Job):
    import torch
    import torch_tensorrt

    module = torch_tensorrt.load(str(path)).module()

    def run(inputs):
        with torch.no_grad():
            return module(*inputs)
    return run
