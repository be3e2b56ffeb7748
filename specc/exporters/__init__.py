"""Exporters: a compiled spec -> a deployment artifact, verified against eager PyTorch.

    result = specc.compile("specs/digits_cnn.dlspec").export("onnx", "out/model.onnx")
    result.verification.outputs     # max abs / rel error per output
    result.latency                  # artifact vs eager PyTorch at batch 1 and 32

Targets sit behind a name -> module registry and are imported only when used: each module
names its TARGET, FILENAME and OPTIONS (the schema of its spec section) and provides
require() (the packages and hardware it needs, or an E0803 error), device(), build(job, path)
and load(path, job). The stages they share are in pipeline.py; docs/exports.md has the details.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from ..errors import UsageError, did_you_mean
from .base import ExportError, ExportResult, Latency, OutputCheck, Verification

__all__ = ["TARGETS", "export", "export_targets", "get", "ExportError", "ExportResult", "Latency",
           "OutputCheck", "Verification"]

TARGETS = {
    "onnx": "specc.exporters.onnx",
    "pt2": "specc.exporters.pt2",
    "aoti": "specc.exporters.aoti",
    "tensorrt": "specc.exporters.tensorrt",
}


def get(target: str):
    """The exporter module of a target; UsageError with a suggestion for an unknown name."""
    key = target.strip().lower()
    if key not in TARGETS:
        guess = did_you_mean(key, TARGETS, cutoff=0.5)
        hint = f"; {guess}" if guess else ""
        raise UsageError(f"unknown export target `{target}`{hint} (targets: {', '.join(TARGETS)})")
    return importlib.import_module(TARGETS[key])


def export(compiled, target: str, path, *, verbose: bool = False, **options) -> ExportResult:
    """Export `compiled` to `target` at `path`, verify it against PyTorch and write the manifest
    beside it; raises ExportError (E0801 export failed, E0802 verification failed, E0803 the
    exporter is missing) and leaves nothing behind when anything fails."""
    from .pipeline import run
    return run(get(target), compiled, path, options, verbose=verbose)


def default_path(out_dir, target: str) -> Path:
    """Where `specc build` and `specc train` put a target's artifact: out_dir/model.onnx, ..."""
    return Path(out_dir) / get(target).FILENAME


def export_targets(compiled, targets, out_dir, verbose: bool = False, *, options: dict | None = None,
                   out=None) -> int:
    """`specc build --export ...`: each target into out_dir (model.onnx, model.pt2, ...), one line
    per target. Returns the exit code: 0 when all verified, 1 when any failed to export or verify
    (a target this machine lacks the packages or hardware for too: E0803). `options` maps a target
    to its options."""
    out = out or sys.stdout
    exporters = {t: get(t) for t in targets}  # unknown names fail before any work
    failures = set()
    for target in exporters:
        path = default_path(out_dir, target)
        try:
            result = export(compiled, target, path, verbose=verbose, **(options or {}).get(target, {}))
        except ExportError as err:
            failures.add(err.diagnostics[0].code)
            print(failure_line(target, err, _remove_stale(path)), file=out, flush=True)
            continue
        print(result_line(result), file=out, flush=True)
    return 1 if failures else 0


def remove_other_artifacts(out_dir, targets) -> list[Path]:
    """New weights were written to out_dir: the artifacts an earlier build exported there for targets
    other than `targets` would not match them, so they are removed (only where specc's manifest shows
    that specc made them). Returns the artifacts removed."""
    from .manifest import manifest_path
    kept = {get(t).TARGET for t in targets}
    others = [default_path(out_dir, t) for t in TARGETS if t not in kept]
    return [path for path in others if manifest_path(path).is_file() and _remove_stale(path)]


def _remove_stale(path: Path) -> bool:
    """A failed target must not leave an earlier build's artifact beside the new weights."""
    from .manifest import artifact_files
    existed = path.is_file()
    for p in artifact_files(path):
        if p.is_file():  # a folder there is the user's, and the reason it failed
            p.unlink()
    return existed


def failure_line(target: str, err: ExportError, removed_stale: bool) -> str:
    diag = err.diagnostics[0]
    line = f"{target}: FAILED error[{diag.code}]: {diag.message}"
    if diag.help:
        line += f" ({diag.help})"
    line += "; no artifact written"
    if removed_stale:
        line += " (the one from an earlier build was removed)"
    return line


def result_line(result: ExportResult) -> str:
    v = result.verification
    sizes = ",".join(map(str, v.batch_sizes))
    errors = ", ".join(f"{o.name} max abs err {o.max_abs_error:.2g} rel {o.max_rel_error:.2g}" for o in v.outputs)
    parts = [f"{result.target}: {result.path} verified at batch {sizes} (atol {v.atol:g}, rtol {v.rtol:g}): {errors}"]
    timings = [_latency_text(lat) for lat in result.latency]
    if timings:
        parts.append("; ".join(timings))
    parts.append(f"export {result.export_seconds:.1f} s")
    return " | ".join(parts)


def _latency_text(lat: Latency) -> str:
    if lat.skipped:
        return f"batch {lat.batch}: latency not measured ({lat.skipped})"
    return f"batch {lat.batch}: {lat.artifact_ms:.3g} ms vs eager {lat.eager_ms:.3g} ms"
