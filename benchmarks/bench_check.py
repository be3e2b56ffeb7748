"""Frontend speed: `specc check` cold-process time, and check time of generated N-layer specs.

    python benchmarks/bench_check.py            # prints a table; figures go to README

Targets (issue: frontend): cold check of specs/digits_cnn.dlspec <= 0.35 s median;
10,000 layers <= 1 s; 20,000 layers <= 2.2x the 10,000-layer time (linear growth).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generated_spec(layers: int) -> str:
    """A model of `layers` layers written out one per line (no `repeat`): Linear/ReLU pairs."""
    lines = ["spec 1", "model Deep {", "  input x: float32[N, 64]", "  h = x"]
    for i in range(layers // 2):
        lines.append(f"    |> fc{i}: Linear(64) |> ReLU")
    lines += ["  output h", "}"]
    return "\n".join(lines) + "\n"


def cold_check(path: Path, runs: int = 9) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "specc", "check", str(path)], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def warm_check(path: Path, runs: int = 5) -> float:
    import specc

    specc.check([str(path)])  # warm: imports and grammar
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        diagnostics = specc.check([str(path)])
        times.append(time.perf_counter() - start)
        assert not diagnostics, diagnostics[0].render()
    return statistics.median(times)


def main() -> None:
    print(f"cold `specc check specs/digits_cnn.dlspec`: {cold_check(ROOT / 'specs' / 'digits_cnn.dlspec'):.3f} s (median of 9)")
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for n in (10_000, 20_000):
            path = Path(tmp) / f"deep{n}.dlspec"
            path.write_text(generated_spec(n))
            results[n] = warm_check(path)
            print(f"{n:,}-layer spec: {results[n]:.3f} s (median of 5, in-process)")
        print(f"20,000 / 10,000 ratio: {results[20_000] / results[10_000]:.2f}")


if __name__ == "__main__":
    main()
