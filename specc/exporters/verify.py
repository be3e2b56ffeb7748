"""Verification of an artifact against eager PyTorch, and latency measurement.

An output passes when every element satisfies |got - expected| <= atol + rtol * |expected|
(numpy.allclose; NaN must meet NaN) and the shapes agree. The figures reported per output
are the worst over all samples: the max absolute error, and the max relative error
|got - expected| / |expected| over the elements where |expected| > atol (elsewhere the
relative error says nothing about the match).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from .base import ExportError, Job, Latency, OutputCheck, Verification
from .quiet import reason
from .samples import as_tuple, make_inputs, sample_dims


def to_numpy(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    import torch
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def compare(name: str, got, expected, atol: float, rtol: float) -> OutputCheck:
    got, expected = to_numpy(got), to_numpy(expected)
    if got.shape != expected.shape:
        return OutputCheck(name, float("inf"), float("inf"), False)
    if got.dtype == np.bool_ or expected.dtype == np.bool_:
        got, expected = got.astype(np.int8), expected.astype(np.int8)
    g, e = got.astype(np.float64), expected.astype(np.float64)
    if g.size == 0:
        return OutputCheck(name, 0.0, 0.0, True)
    both_nan = np.isnan(g) & np.isnan(e)
    diff = np.where(both_nan, 0.0, np.abs(g - e))
    diff = np.where(np.isnan(diff), np.inf, diff)
    scale = np.abs(e)
    big = scale > atol
    max_rel = float(np.max(diff[big] / scale[big])) if big.any() else 0.0
    passed = bool(np.all(diff <= atol + rtol * np.where(np.isnan(scale), 0.0, scale)))
    return OutputCheck(name, float(np.max(diff)), max_rel, passed)


def verify(run, job: Job) -> Verification:
    """Run the artifact on every sample; the worst figures per output over the samples."""
    atol, rtol = float(job.options["atol"]), float(job.options["rtol"])
    names = job.signature.output_names
    worst: dict[str, OutputCheck] = {}
    for sample in job.samples:
        try:
            got = as_tuple(run(sample.inputs))
        except Exception as err:  # noqa: BLE001 - an artifact that cannot run does not verify
            shown = ", ".join(f"{k}={v}" for k, v in sample.dims.items())
            raise ExportError("E0802", f"the {job.target} artifact fails to run at {shown}: {reason(err)}") from err
        if len(got) != len(names):
            raise ExportError("E0802", f"the {job.target} artifact returns {len(got)} outputs, "
                                       f"the spec declares {len(names)} ({', '.join(names)})")
        for name, g, e in zip(names, got, sample.expected):
            if _shape(g) != tuple(e.shape):
                shown = ", ".join(f"{k}={v}" for k, v in sample.dims.items())
                raise ExportError("E0802", f"the {job.target} artifact's output `{name}` has shape "
                                           f"{list(_shape(g))} at {shown}, PyTorch's is {list(e.shape)}")
            if dtype_name(g) != dtype_name(e):
                raise ExportError("E0802", f"the {job.target} artifact's output `{name}` is {dtype_name(g)}, "
                                           f"PyTorch's is {dtype_name(e)}")
            worst[name] = _worse(worst.get(name), compare(name, g, e, atol, rtol))
    outputs = tuple(worst[n] for n in names)
    return Verification(all(o.passed for o in outputs), atol, rtol, tuple(job.options["batch_sizes"]),
                        tuple(dict(s.dims) for s in job.samples), outputs)


def _shape(x) -> tuple:
    return tuple(getattr(x, "shape", ()))


def dtype_name(x) -> str:
    """"float32", "int64", ...: a torch tensor's or a numpy array's dtype, named alike."""
    dtype = getattr(x, "dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else type(x).__name__


def _worse(a: OutputCheck | None, b: OutputCheck) -> OutputCheck:
    if a is None:
        return b
    return OutputCheck(b.name, max(a.max_abs_error, b.max_abs_error), max(a.max_rel_error, b.max_rel_error),
                       a.passed and b.passed)


def failure_message(target: str, v: Verification) -> str:
    bad = [o for o in v.outputs if not o.passed]
    parts = [f"`{o.name}` max abs error {o.max_abs_error:.3g}, max rel error {o.max_rel_error:.3g}" for o in bad]
    return (f"the {target} artifact does not match PyTorch within atol {v.atol:g}, rtol {v.rtol:g} "
            f"(batch sizes {', '.join(map(str, v.batch_sizes))}): " + "; ".join(parts))


# ---------------------------------------------------------------- latency

def median_ms(fn, *, runs: int, budget_s: float) -> tuple[float, int]:
    """Median wall time of fn() in ms after one warm-up call: `runs` calls, fewer (at least 3)
    when they would take longer than `budget_s`."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < runs and (len(times) < 3 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, len(times)


def latency(run, job: Job, compiled, *, batch_sizes, runs: int = 15, budget_s: float = 1.0,
            max_seconds: float = 30.0) -> tuple[Latency, ...]:
    """The artifact and eager PyTorch at each batch size, interleaved per batch size. A batch
    size whose predicted cost (from the smaller ones) exceeds `max_seconds` is skipped."""
    import torch

    from .samples import model_float_dtype

    sig = job.signature
    out = []
    per_item_s = None  # eager seconds per batch item, from the last measured batch size
    for batch in batch_sizes:
        if not sig.symbols and batch != 1:
            out.append(Latency(batch, None, None, skipped="the model has no batch dim"))
            continue
        if per_item_s is not None and per_item_s * batch * 2 * 5 > max_seconds:
            out.append(Latency(batch, None, None, skipped=f"predicted to take over {max_seconds:g} s"))
            continue
        dims = sample_dims(sig, batch, 0, job.options.get("dims"))
        inputs = make_inputs(compiled, sig, dims, seed=int(job.options.get("seed", 0)), device=job.device,
                             float_dtype=model_float_dtype(job.model))
        sync = _sync(job.device)
        try:
            with torch.no_grad():
                eager_ms, n = median_ms(lambda: sync(job.model(*inputs)), runs=runs, budget_s=budget_s)
            artifact_ms, m = median_ms(lambda: sync(run(inputs)), runs=runs, budget_s=budget_s)
        except Exception as err:  # noqa: BLE001 - timing is a report: a batch size the model refuses is noted
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            out.append(Latency(batch, None, None, skipped=f"the model fails at this batch size: {reason}"))
            continue
        per_item_s = eager_ms / 1e3 / batch
        out.append(Latency(batch, artifact_ms, eager_ms, min(n, m)))
    return tuple(out)


def _sync(device: str):
    if device.startswith("cuda"):
        import torch

        def sync(x):
            torch.cuda.synchronize()
            return x
        return sync
    return lambda x: x
