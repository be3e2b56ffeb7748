"""`specc check`: every error of every spec file, torch-free."""
from __future__ import annotations

import fnmatch
import gc
import glob
import os
import traceback
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .errors import REPORT_URL, Diagnostic, Failed, Note, SpecError
from .ir.build import MAX_PARAMS, build_all
from .source import SPEC_SUFFIXES, SourceSpan

INTERNAL_ERROR = "E0999"  # specc failed on a file: a bug in specc (the CLI exits 3)
PLAN_INDEPENDENT = ("E0601",)  # model errors that leave its graph whole: the train section is still checked



def expand_paths(paths) -> list[str]:
    """Files, folders (searched recursively for specs) and globs -> spec files, each once.

    A glob picks what a folder would: the spec files it matches and those in the folders it matches.
    A path or glob that matches nothing is returned as is, so that reading it reports the problem.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if isinstance(paths, (bytes, dict)) or not hasattr(paths, "__iter__"):
        raise TypeError(f"paths must be a path or a list of paths, got {type(paths).__name__}")
    files: list[str] = []
    for raw in paths:
        if not isinstance(raw, (str, os.PathLike)) or not str(raw):
            raise TypeError(f"each path must be a non-empty str or os.PathLike, got {raw!r}")
        p = str(raw)
        if os.path.isdir(p):
            files += _specs_in(p)
        elif glob.has_magic(p) and not os.path.lexists(p):
            matches = _glob(p)
            for m in matches:
                files += _specs_in(m) if os.path.isdir(m) else [m] if _is_spec(m) else []
            if not matches:
                files.append(p)
        else:
            files.append(p)
    seen: set[str] = set()  # `x.dlspec`, `./x.dlspec` and a link to it are one file
    return [f for f in files if not (os.path.realpath(f) in seen or seen.add(os.path.realpath(f)))]


def _is_spec(path: str) -> bool:
    name = os.path.basename(path)
    return name.lower().endswith(SPEC_SUFFIXES) and not name.startswith(".")  # .pre-commit-config.yaml


def _specs_in(folder: str) -> list[str]:
    """The spec files under a folder, sorted; hidden ones and links to folders are skipped."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [os.path.join(root, n) for n in sorted(names) if _is_spec(n)]
    return files


def _glob(pattern: str) -> list[str]:
    """The files and folders a glob matches (`**`: any folders), sorted. Unlike glob.glob it enters
    neither hidden folders nor links to folders: with a link loop, `**` would run for ever."""
    base, parts = pattern, []
    while glob.has_magic(base):
        base, part = os.path.split(base)
        parts.insert(0, part)
    parts = [part for part in parts if part]  # `specs//*`, `specs/*/`
    top = base or os.curdir
    found = []
    for root, dirs, names in os.walk(top):
        rel = [] if root == top else os.path.relpath(root, top).split(os.sep)
        found += [os.path.join(base, *rel, n) for n in sorted(dirs + names)
                  if not n.startswith(".") and _matches(rel + [n], parts)]
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and _may_match(rel + [d], parts))
    return found


def _matches(names: list[str], parts: list[str]) -> bool:
    """Whether a path (its names) matches a glob (its parts)."""
    if not parts:
        return not names
    if parts[0] == "**":
        return _matches(names, parts[1:]) or bool(names) and _matches(names[1:], parts)
    return bool(names) and fnmatch.fnmatchcase(names[0], parts[0]) and _matches(names[1:], parts[1:])


def _may_match(names: list[str], parts: list[str]) -> bool:
    """Whether something inside the folder `names` may match the glob `parts`."""
    if not names or parts[:1] == ["**"]:
        return True
    return len(parts) > 1 and fnmatch.fnmatchcase(names[0], parts[0]) and _may_match(names[1:], parts[1:])


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
    """(diagnostics, graphs) for one file. An unexpected exception (a bug in specc) becomes an
    E0999 diagnostic for this file, so that the other files are still checked and reported."""
    with gc_paused():
        try:
            return _check_file(path, max_params)
        except Exception as err:  # noqa: BLE001 - a bug in specc, told as a diagnostic of this file
            return [internal_error(path, err)], {}


def internal_error(path: str, err: BaseException) -> Diagnostic:
    """E0999: specc itself failed on this file. Names the exception and the place in specc that raised it."""
    frames = traceback.extract_tb(err.__traceback__)
    package = Path(__file__).resolve().parent
    ours = [f for f in frames if _inside(f.filename, package)]
    notes = []
    if frames:
        notes.append(Note(f"raised at {_frame(frames[-1], package)}"))
    if ours and ours[-1] is not frames[-1]:
        notes.append(Note(f"from specc at {_frame(ours[-1], package)}"))
    try:
        text = str(err).strip().splitlines()
    except Exception:  # noqa: BLE001 - an exception that cannot even say what it is
        text = []
    detail = f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__
    return Diagnostic(INTERNAL_ERROR, f"internal error while checking this file ({detail}); this is a bug in "
                      "specc, not in your spec", SourceSpan.point(str(path), 1, 1), label="specc failed on this file",
                      notes=tuple(notes), help=f"please report it, with the spec, at {REPORT_URL}")


def _inside(filename: str, folder: Path) -> bool:
    try:
        Path(filename).resolve().relative_to(folder)
    except (ValueError, OSError):
        return False
    return True


def _frame(frame, package: Path) -> str:
    """`specc/ir/build.py:123, in build_model` (paths inside specc relative to the package's parent)."""
    name = os.path.relpath(Path(frame.filename).resolve(), package.parent) if _inside(frame.filename, package) \
        else frame.filename
    return f"{name}:{frame.lineno}, in {frame.name}"


def _check_file(path: str, max_params: int):
    from .frontend.load import load_file

    try:
        spec, found = load_file(path), []
    except SpecError as err:
        if err.sound_part is None:
            return err.diagnostics, {}
        spec, found = err.sound_part, list(err.diagnostics)  # and the errors of the rest of the file
    try:
        graphs, diagnostics = build_all(spec, max_params=max_params)
    except Failed as failed:
        return found + [failed.diagnostic], {}
    if spec.train is not None:
        diagnostics = list(diagnostics) + [_missing_data_warns(d) for d in train_diagnostics(spec, graphs, diagnostics)]
    return found + diagnostics, graphs if not found else {}


def _missing_data_warns(d: Diagnostic) -> Diagnostic:
    """A data file that is not there is a warning for `check` (CI often runs without the data
    sets); `specc train` stops on it."""
    from .train.data import MISSING_FILE

    if d.code == "E0702" and d.label == MISSING_FILE:
        return replace(d, severity="warning")
    return d


def train_diagnostics(spec, graphs: dict, build_diagnostics) -> list[Diagnostic]:
    """The training plan's checks (what `specc train` checks before it runs), torch-free.

    Skipped when a model has errors (the plan would only repeat them). The train section goes
    with the file's model; where the file has several (`specc.compile(spec, model=...)` picks
    one), a problem is reported when it holds whichever model is trained."""
    if any(d.severity == "error" and d.code not in PLAN_INDEPENDENT for d in build_diagnostics):
        return []
    graphs = {name: g for name, g in graphs.items() if g is not None}
    if not graphs:
        return []
    from .train.plan import check_plan

    found = {}
    for name, graph in graphs.items():
        plan, diagnostics = check_plan(spec, graph)
        if plan is not None:
            return []
        found[name] = diagnostics
    if len(found) == 1:
        return next(iter(found.values()))
    def key(d: Diagnostic) -> tuple:
        return d.code, d.message, d.span

    common = set.intersection(*({key(d) for d in ds} for ds in found.values()))
    first = next(iter(found.values()))
    shared = [d for d in first if key(d) in common]
    if shared:
        return shared
    notes = tuple(Note(f"for model {name}: {ds[0].message}", ds[0].span) for name, ds in found.items() if ds)
    return [Diagnostic("E0701", f"the train section fits none of the {len(found)} models of this file "
                       f"({', '.join(found)})", spec.span("train"), label="fits no model", notes=notes)]


def check(paths, max_params: int | None = None) -> list[Diagnostic]:
    if max_params is not None and (not isinstance(max_params, int) or isinstance(max_params, bool) or max_params < 1):
        raise ValueError(f"max_params must be a whole number of at least 1, got {max_params!r}")
    out: list[Diagnostic] = []
    seen = set()
    for path in expand_paths(paths):
        diagnostics, _ = check_file(path, MAX_PARAMS if max_params is None else max_params)
        for d in diagnostics:
            if d.span is None:  # SARIF consumers (GitHub code scanning) refuse a result without a location
                d = replace(d, span=SourceSpan.point(path, 1, 1))
            key = (d.code, d.message, os.path.realpath(d.span.file), *d.span[1:])
            if key not in seen:  # an imported file's errors are reported once, however its path is written
                seen.add(key)
                out.append(d)
    return out
