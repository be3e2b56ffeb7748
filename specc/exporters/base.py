"""The values handed between export stages (all frozen) and the export error.

    options -> Job (model, signature, samples, references) -> artifact in a staging folder
            -> Verification -> Latency -> artifact moved into place + manifest -> ExportResult
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Diagnostic, SpecError


class ExportError(SpecError):
    """An export that failed (E0801), did not verify (E0802) or has no exporter here (E0803)."""

    def __init__(self, code: str, message: str, help: str | None = None):
        super().__init__([Diagnostic(code, message, help=help)])

    @property
    def code(self) -> str:
        return self.diagnostics[0].code

    @property
    def message(self) -> str:
        return self.diagnostics[0].message


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: its spec name, dtype and shape (ints, symbol names, expressions)."""

    name: str
    dtype: str
    shape: tuple  # of int | str: ("N", 1, 8, 8)

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    symbols: tuple[str, ...]  # the symbolic dims, batch first: ("N", "T")

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


@dataclass(frozen=True)
class Sample:
    """Inputs at one setting of the symbolic dims, and eager PyTorch's outputs for them."""

    dims: dict  # {"N": 2, "T": 8}
    inputs: tuple  # of torch.Tensor, in signature order
    expected: tuple  # of torch.Tensor, in signature order


@dataclass(frozen=True)
class Job:
    """Everything an exporter needs: the eval-mode model, its signature, samples and options."""

    target: str
    model: object  # torch.nn.Module in eval mode, on `device`
    signature: Signature
    samples: tuple[Sample, ...]  # verified, one per batch size
    example: Sample  # what the exporter traces: batch 2 or more, so the batch dim stays dynamic
    options: dict  # the target's resolved options (spec values, then the caller's)
    device: str = "cpu"
    verbose: bool = False


@dataclass(frozen=True)
class Built:
    """What an exporter's build step reports: the files it wrote and facts for the manifest."""

    files: tuple[Path, ...]  # inside the staging folder; the first is the artifact
    facts: dict = field(default_factory=dict)  # {"opset": 18, "dims": {...}}


@dataclass(frozen=True)
class OutputCheck:
    name: str
    max_abs_error: float
    max_rel_error: float  # over the elements where |expected| > atol
    passed: bool


@dataclass(frozen=True)
class Verification:
    passed: bool
    atol: float
    rtol: float
    batch_sizes: tuple[int, ...]
    samples: tuple[dict, ...]  # the dims of each sample
    outputs: tuple[OutputCheck, ...]  # worst case over the samples, per output

    def to_json(self) -> dict:
        return {
            "passed": self.passed, "atol": self.atol, "rtol": self.rtol,
            "batch_sizes": list(self.batch_sizes), "samples": list(self.samples),
            "outputs": {o.name: {"max_abs_error": o.max_abs_error, "max_rel_error": o.max_rel_error,
                                 "passed": o.passed} for o in self.outputs},
        }


@dataclass(frozen=True)
class Latency:
    """Median milliseconds of one forward at `batch`: the artifact and eager PyTorch."""

    batch: int
    artifact_ms: float | None
    eager_ms: float | None
    runs: int = 0
    skipped: str | None = None  # why it was not measured

    @property
    def ratio(self) -> float | None:
        if self.artifact_ms is None or not self.eager_ms:
            return None
        return self.artifact_ms / self.eager_ms

    def to_json(self) -> dict:
        if self.skipped:
            return {"skipped": self.skipped}
        return {"artifact_ms": round(self.artifact_ms, 4), "eager_ms": round(self.eager_ms, 4),
                "ratio": round(self.ratio, 4), "runs": self.runs}


@dataclass(frozen=True)
class ExportResult:
    target: str
    path: Path
    manifest: Path
    verification: Verification
    latency: tuple[Latency, ...]
    export_seconds: float  # the exporter's own work: capture, convert, save
    total_seconds: float  # with verification and latency

    @property
    def outputs(self) -> tuple[OutputCheck, ...]:
        return self.verification.outputs
