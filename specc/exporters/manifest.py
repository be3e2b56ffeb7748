"""NAME.manifest.json beside each artifact: what it was made from, how, and how well it matches.

The format (`"format": "specc-export-manifest/1"`) is documented in docs/exports.md.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from .base import Built, Job, Latency, Verification

FORMAT = "specc-export-manifest/1"


def manifest_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".manifest.json")


def artifact_files(artifact: Path) -> tuple[Path, ...]:
    """Every file an export may write for this artifact: itself, its manifest and its external
    weights (ONNX's NAME.data)."""
    return artifact, manifest_path(artifact), artifact.with_name(artifact.name + ".data")


def versions(extra: dict | None = None) -> dict:
    import torch

    import specc

    out = {"specc": specc.__version__, "python": platform.python_version(), "torch": torch.__version__}
    for name in ("onnx", "onnxruntime", "onnxscript"):
        module = sys.modules.get(name)
        out[name] = getattr(module, "__version__", None) if module else _installed(name)
    out.update(extra or {})
    return out


def _installed(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(compiled, job: Job, built: Built, verification: Verification,
                   latency: tuple[Latency, ...], export_seconds: float, extra_versions: dict) -> dict:
    artifact, files = built.files[0], built.files
    return {
        "format": FORMAT,
        "target": job.target,
        "artifact": artifact.name,
        "files": [{"name": f.name, "bytes": f.stat().st_size, "sha256": sha256(f)} for f in files],
        "spec": {"path": str(compiled.spec.path), "content_hash": compiled.spec.content_hash,
                 "model": compiled.ir.name, "parameters": compiled.ir.param_count},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(extra_versions),
        "options": _jsonable(job.options),
        "inputs": [t.to_json() for t in job.signature.inputs],
        "outputs": [t.to_json() for t in job.signature.outputs],
        "dynamic_dims": list(job.signature.symbols),
        "export": _jsonable(built.facts),
        "verification": verification.to_json(),
        "latency_ms": {f"batch_{lat.batch}": lat.to_json() for lat in latency},
        "export_seconds": round(export_seconds, 3),
    }


def write_manifest(path: Path, manifest: dict) -> None:
    """Written into the staging folder; the pipeline moves it into place after the artifact."""
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
