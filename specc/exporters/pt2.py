"""pt2: a torch.export ExportedProgram with the spec's symbols as torch.export.Dim,
saved with torch.export.save and verified after torch.export.load."""
from __future__ import annotations

from pathlib import Path

from ..schema.export import Pt2Target
from .base import Built, Job
from .capture import export_program, shape_facts

TARGET = "pt2"
FILENAME = "model.pt2"
OPTIONS = Pt2Target


def require() -> dict:
    return {}


def device() -> str:
    return "cpu"


def build(job: Job, path: Path) -> Built:
    ep = export_program(job)
    _save(ep, path)
    return Built((path,), shape_facts(ep, job.signature))


def _save(ep, path: Path) -> None:
    import torch
    torch.export.save(ep, str(path))


def load(path: Path, job: Job):
    import torch

    module = torch.export.load(str(path)).module()

    def run(inputs):
        with torch.no_grad():
            return module(*inputs)
    return run
