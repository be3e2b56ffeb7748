"""aoti: an AOTInductor package (ahead-of-time compiled C++/OpenMP kernels in a .pt2 zip),
made from the same ExportedProgram as the pt2 target, loaded back with
torch._inductor.aoti_load_package and verified. Needs a C++ compiler; the first compile of a
model takes tens of seconds (later ones hit the inductor's cache)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..schema.export import AotiTarget
from .base import Built, ExportError, Job
from .capture import export_program, shape_facts

TARGET = "aoti"
FILENAME = "model.aoti.pt2"  # aoti_compile_and_package wants the .pt2 suffix
OPTIONS = AotiTarget
COMPILERS = ("g++", "c++", "clang++")


def require() -> dict:
    cxx = os.environ.get("CXX")
    if not ((cxx and shutil.which(cxx)) or any(shutil.which(c) for c in COMPILERS)):
        raise ExportError("E0803", "the aoti target needs a C++ compiler (g++ or clang++) on PATH, and none was found")
    return {}


def device() -> str:
    return "cpu"


def build(job: Job, path: Path) -> Built:
    import torch

    ep = export_program(job)
    torch._inductor.aoti_compile_and_package(ep, package_path=str(path))
    return Built((path,), shape_facts(ep, job.signature))


def load(path: Path, job: Job):
    import torch

    runner = torch._inductor.aoti_load_package(str(path))

    def run(inputs):
        with torch.no_grad():
            return runner(*inputs)
    return run
