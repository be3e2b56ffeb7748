"""`specc check`: every error of every spec file, torch-free."""
from __future__ import annotations

import gc
import glob
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import Diagnostic, Failed, SpecError
from .ir.build import MAX_PARAMS, build_all

SPEC_SUFFIXES = (".dlspec", ".yaml", ".yml")


def expand_paths(paths) -> list[str]:
    """Files, folders (searched recursively for specs) and globs -> sorted spec files.

    A path that matches nothing is returned as is, so that reading it reports the problem.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[str] = []
    for raw in paths:
        p = str(raw)
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith(SPEC_SUFFIXES)]
        elif any(c in p for c in "*?[") and not os.path.exists(p):
            files += sorted(f for f in glob.glob(p, recursive=True) if os.path.isfile(f)) or [p]
        else:
            files.append(p)
    seen: set[str] = set()
    return [f for f in files if not (f in seen or seen.add(f))]


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector: the front end makes many small objects and no
    cycles worth collecting mid-way, and a big spec otherwise spends a third of its time in GC."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_file(path: str, max_params: int = MAX_PARAMS):
    """(diagnostics, graphs) for one file."""
    with gc_paused():
        return _check_file(path, max_params)


def _check_file(path: str, max_params: int):
    from .frontend.load import load_file

    try:
        spec = load_file(path)
    except SpecError as err:
        return err.diagnostics, {}
    try:
        graphs, diagnostics = build_all(spec, max_params=max_params)
    except Failed as failed:
        return [failed.diagnostic], {}
    return diagnostics, graphs


def check(paths, max_params: int | None = None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen = set()
    for path in expand_paths(paths):
        diagnostics, _ = check_file(path, max_params or MAX_PARAMS)
        for d in diagnostics:
            key = (d.code, d.message, d.span)
            if key not in seen:  # an imported file's errors are reported once
                seen.add(key)
                out.append(d)
    return out
