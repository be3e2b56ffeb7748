"""Exported artifacts against eager PyTorch, each runtime measured in its own process.

    python benchmarks/bench_export.py [--specs digits_cnn resnet18] [--repeats 3]

Targets (issue 5): onnxruntime latency at batch 1 for digits_cnn and resnet18 against eager
PyTorch: ratio <= 0.8; AOTInductor against eager at batch 32; export wall time per target.

How: one process exports every target of a spec (a fresh inductor cache, so the AOTI time is
a cold compile) and saves the weights. Then every (runtime, batch) latency is measured in a
fresh process that loads only what it needs (the onnxruntime process never imports torch),
runs a warm-up, and reports the median of many timed calls; processes alternate in order
over `--repeats` rounds and the reported figure is the median over the rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("onnx", "pt2", "aoti")
RUNTIMES = {"onnx": "model.onnx", "aoti": "model.aoti.pt2", "eager": "model.safetensors"}


# ---------------------------------------------------------------- workers (run in subprocesses)

def worker_export(spec: str, out: Path) -> dict:
    import torch

    import specc
    from specc.build import save_weights
    from specc.exporters import get

    torch.manual_seed(0)
    compiled = specc.compile(ROOT / "specs" / f"{spec}.dlspec")
    save_weights(compiled.model, out / "model.safetensors")
    figures = {}
    for target in TARGETS:
        path = out / get(target).FILENAME
        start = time.perf_counter()
        result = compiled.export(target, path, latency_batch_sizes=())
        figures[target] = {"export_s": round(result.export_seconds, 2),
                           "with_verification_s": round(time.perf_counter() - start, 2)}
    return figures


def _input_arrays(manifest: dict, batch: int):
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {}
    for spec in manifest["inputs"]:
        shape = [batch if i == 0 and isinstance(d, str) else (8 if isinstance(d, str) else d)
                 for i, d in enumerate(spec["shape"])]
        if spec["dtype"].startswith("float"):
            arrays[spec["name"]] = rng.standard_normal(shape).astype(spec["dtype"])
        else:
            arrays[spec["name"]] = np.zeros(shape, dtype=spec["dtype"])
    return arrays


def _median_ms(fn, budget_s: float, max_runs: int) -> tuple[float, int]:
    for _ in range(3):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < max_runs and (len(times) < 5 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, len(times)


def worker_latency(runtime: str, folder: Path, spec: str, batch: int, budget_s: float) -> dict:
    manifest = json.loads((folder / "model.onnx.manifest.json").read_text())
    arrays = _input_arrays(manifest, batch)
    if runtime == "onnx":  # onnxruntime alone, as deployed: no torch in this process
        sys.path.insert(0, str(ROOT))
        from specc.exporters.onnx import session
        assert "torch" not in sys.modules
        sess = session(folder / "model.onnx")
        ms, runs = _median_ms(lambda: sess.run(None, arrays), budget_s, 2000)
        return {"ms": ms, "runs": runs, "threads": "onnxruntime default"}
    import torch
    tensors = [torch.from_numpy(a) for a in arrays.values()]
    if runtime == "aoti":
        runner = torch._inductor.aoti_load_package(str(folder / "model.aoti.pt2"))
        call = lambda: runner(*tensors)  # noqa: E731
    else:
        import specc
        from specc.build import load_weights
        model = specc.compile(ROOT / "specs" / f"{spec}.dlspec").model.eval()
        load_weights(model, folder / "model.safetensors")
        call = lambda: model(*tensors)  # noqa: E731
    with torch.no_grad():
        ms, runs = _median_ms(call, budget_s, 2000)
    return {"ms": ms, "runs": runs, "threads": torch.get_num_threads()}


# ---------------------------------------------------------------- the driver

def _run_worker(*args: str, env: dict | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"worker {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def latency_ratio(folder: Path, spec: str, runtime: str, batch: int, repeats: int, budget_s: float):
    """Median over rounds of (runtime ms, eager ms), each measured in its own process."""
    got, eager = [], []
    for i in range(repeats):
        order = (runtime, "eager") if i % 2 == 0 else ("eager", runtime)
        for which in order:
            ms = _run_worker("latency", which, str(folder), spec, str(batch), str(budget_s))["ms"]
            (got if which == runtime else eager).append(ms)
    a, e = statistics.median(got), statistics.median(eager)
    return a, e, a / e


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", nargs="+", default=["digits_cnn", "resnet18"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timed calls per process")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "export":
            print(json.dumps(worker_export(rest[0], Path(rest[1]))))
        else:
            runtime, folder, spec, batch, budget = rest
            print(json.dumps(worker_latency(runtime, Path(folder), spec, int(batch), float(budget))))
        return

    import onnxruntime
    import torch
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}, "
          f"{os.cpu_count()} CPUs; median over {args.repeats} rounds, each runtime in its own process")
    print(_load("load average before"))
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.specs:
            folder = Path(tmp) / spec
            folder.mkdir()
            times = _run_worker("export", spec, str(folder), env={"TORCHINDUCTOR_CACHE_DIR": str(folder / "cache")})
            print(f"\n{spec}: export wall time (s): " + ", ".join(
                f"{t} {v['export_s']:.1f} ({v['with_verification_s']:.1f} with verification)" for t, v in times.items()))
            a, e, r = latency_ratio(folder, spec, "onnx", 1, args.repeats, args.budget)
            verdict = "ok" if r <= 0.8 else "MISSED (target <= 0.8)"
            print(f"{spec}: onnxruntime batch 1: {a:.3f} ms vs eager {e:.3f} ms: ratio {r:.2f} {verdict}")
            a, e, r = latency_ratio(folder, spec, "aoti", 32, args.repeats, args.budget)
            print(f"{spec}: AOTInductor batch 32: {a:.2f} ms vs eager {e:.2f} ms: ratio {r:.2f}")
    print(_load("\nload average after"))


def _load(label: str) -> str:
    """Other processes on the machine skew every figure (eager PyTorch's OpenMP threads most)."""
    one, five, _ = os.getloadavg()
    return f"{label}: {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
