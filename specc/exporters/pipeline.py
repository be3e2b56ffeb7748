"""The stages every target goes through, one function each:

    resolve_options -> prepare (Job) -> build into a staging folder -> load -> verify
    -> latency -> move into place -> manifest -> ExportResult

The artifact is written into a hidden staging folder beside its final path (same file
system), verified there, and only then moved into place with os.replace; a failure at any
stage removes the staging folder, so no unverified or half-written artifact is ever left.
The caller's arguments and the destination are checked (checks.py) before any of it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import UsageError
from ..schema.values import plain
from .base import Built, ExportError, ExportResult, Job, Sample
from .checks import check_destination, check_free, check_options, check_path
from .manifest import artifact_files, build_manifest, manifest_path, write_manifest
from .quiet import quiet, reason
from .samples import make_inputs, make_samples, model_float_dtype, run_eager, sample_dims, signature
from .verify import failure_message, latency, verify

# options every target takes, beside those of its schema (atol, rtol, batch_sizes, ...)
COMMON_OPTIONS = {
    "seed": 0,  # of the sample inputs
    "dims": {},  # sizes of the non-batch symbols at the first sample, e.g. {"T": 16}
    "latency_batch_sizes": (1, 32),  # () skips the latency measurement
    "latency_max_seconds": 30.0,  # skip a batch size predicted to take longer
}


def resolve_options(exporter, spec, options: dict) -> dict:
    """Schema defaults, then the spec's `export` section, then the caller's options."""
    schema = exporter.OPTIONS
    fields = set(schema.model_fields)
    options = {k: plain(v, lists=k in fields) for k, v in options.items()}  # np.int64, (1, 4): a caller's numbers
    extra = dict(COMMON_OPTIONS) | dict(getattr(exporter, "EXTRA_OPTIONS", {}))
    unknown = sorted(set(options) - fields - set(extra))
    if unknown:
        raise UsageError(f"unknown option(s) for the {exporter.TARGET} export: {', '.join(unknown)} "
                         f"(it takes {', '.join(sorted(fields | set(extra)))})")
    section = getattr(spec.export, exporter.TARGET, None) if spec.export is not None else None
    base = section.model_dump() if section is not None else {}
    from pydantic import ValidationError
    try:
        validated = schema.model_validate(base | {k: v for k, v in options.items() if k in fields})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise UsageError(f"bad option for the {exporter.TARGET} export: {problems}") from None
    resolved = extra | validated.model_dump() | {k: v for k, v in options.items() if k not in fields}
    if not resolved["batch_sizes"]:
        raise UsageError("batch_sizes must name at least one batch size")
    return resolved


def prepare(compiled, exporter, options: dict, verbose: bool) -> Job:
    model = getattr(compiled.model, "_orig_mod", compiled.model)  # torch.compile'd: the module inside
    device = exporter.device()
    adapt = getattr(exporter, "adapt_model", None)  # a copy on another device or dtype (tensorrt)
    if adapt is not None:
        model = adapt(model, options)
    model.eval()
    sig = signature(compiled)
    samples = make_samples(compiled, model, sig, options["batch_sizes"], seed=int(options["seed"]),
                           sizes=options["dims"], device=device)
    return Job(exporter.TARGET, model, sig, samples, _example(compiled, model, sig, samples, options, device),
               options, device, verbose)


def _example(compiled, model, sig, samples, options, device) -> Sample:
    """The first sample with batch >= 2 (a batch-1 example makes torch.export specialise the
    batch dim to 1), else one made at batch 2."""
    batch = sig.symbols[0] if sig.symbols else None
    for sample in samples:
        if batch is None or sample.dims[batch] >= 2:
            return sample
    dims = sample_dims(sig, 2, 0, options["dims"])
    inputs = make_inputs(compiled, sig, dims, seed=int(options["seed"]), device=device,
                         float_dtype=model_float_dtype(model))
    return Sample(dims, inputs, run_eager(model, inputs, dims))


def staging_folder(target: str, path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".staging", dir=path.parent))
    except OSError as err:
        raise ExportError("E0801", f"cannot write the {target} artifact into {path.parent}: "
                                   f"{err.strerror or err}") from None


def run(exporter, compiled, path, options: dict, verbose: bool = False) -> ExportResult:
    started = time.perf_counter()
    path = check_path(path)
    options = check_options(resolve_options(exporter, compiled.spec, options), signature(compiled))
    check_destination(exporter.TARGET, path)
    with quiet(verbose):  # importing onnxscript & co. warns about torch internals
        extra_versions = exporter.require()
    was_training = compiled.model.training
    staging = staging_folder(exporter.TARGET, path)
    try:
        job = prepare(compiled, exporter, options, verbose)
        t0 = time.perf_counter()
        built = _build(exporter, job, staging / path.name)
        export_seconds = time.perf_counter() - t0
        runner = _load(exporter, built.files[0], job)
        with quiet(verbose):
            verification = verify(runner, job)
        if not verification.passed:
            raise ExportError("E0802", failure_message(job.target, verification))
        with quiet(verbose):
            timings = latency(runner, job, compiled, batch_sizes=options["latency_batch_sizes"],
                              max_seconds=float(options["latency_max_seconds"]))
        del runner
        staged_manifest = manifest_path(built.files[0])
        write_manifest(staged_manifest, build_manifest(compiled, job, built, verification, timings,
                                                       export_seconds, extra_versions))
        _move_into_place(job.target, built.files + (staged_manifest,), path.parent)
        manifest = manifest_path(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        compiled.model.train(was_training)
    return ExportResult(exporter.TARGET, path, manifest, verification, timings, export_seconds,
                        time.perf_counter() - started)


def _build(exporter, job: Job, path: Path) -> Built:
    try:
        with quiet(job.verbose):
            return exporter.build(job, path)
    except ExportError:
        raise
    except Exception as err:  # noqa: BLE001 - the exporter's own failure, told in one paragraph
        raise ExportError("E0801", f"{job.target} export failed: {reason(err)}",
                          help="run with -v (verbose=True) to see the exporter's own output") from err


def _load(exporter, path: Path, job: Job):
    try:
        with quiet(job.verbose):
            return exporter.load(path, job)
    except ExportError:
        raise
    except Exception as err:  # noqa: BLE001 - an artifact that does not load does not verify
        raise ExportError("E0802", f"the {job.target} artifact does not load back: {reason(err)}") from err


def _move_into_place(target: str, files, folder: Path) -> None:
    """Side files (external weights) first, then the artifact, then its manifest: a manifest
    in place says that everything it describes is in place. Every destination is checked
    before the first move, and a move that fails takes back the ones before it. Last, a side
    file of an earlier export that this one did not write (its external weights) is removed."""
    artifact, *side, manifest = files
    order = [*side, artifact, manifest]
    for f in order:
        check_free(target, folder / f.name)
    moved = []
    for f in order:
        try:
            os.replace(f, folder / f.name)
        except OSError as err:
            for done in moved:
                done.unlink(missing_ok=True)
            raise ExportError("E0801", f"cannot move the {target} artifact into place at {folder / f.name}: "
                                       f"{err.strerror or err}") from None
        moved.append(folder / f.name)
    for stale in set(artifact_files(folder / artifact.name)) - set(moved):
        if stale.is_file():  # a folder there is the user's
            stale.unlink()
