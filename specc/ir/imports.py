"""A spec's library: its own blocks and constants and those of the files it imports (transitively),
each imported file read and checked once."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from ..errors import Diagnostic, Note, SpecError
from ..frontend import unparse
from ..source import SPEC_SUFFIXES, SourceSpan


class Definition(NamedTuple):
    node: object  # a BlockDef, or a constant's expression
    home: object  # the Spec of the file that defines it


@dataclass
class Library:
    """Blocks and constants visible to a spec: its own and those of its imports (transitively)."""

    blocks: dict[str, Definition] = field(default_factory=dict)
    constants: dict[str, Definition] = field(default_factory=dict)
    import_failed: bool = False  # then an unknown name may be the failed import's: its error is the one told

    def define(self, kind: str, name: str, definition: Definition, span: SourceSpan | None) -> Diagnostic | None:
        """Add a block or constant; the same name from two files is an error (a file imported twice,
        or by two of the imports, brings the same definitions and is no clash)."""
        names = self.blocks if kind == "block" else self.constants
        first = names.get(name)
        if first is not None and Path(first.home.path).resolve() != Path(definition.home.path).resolve():
            return Diagnostic("E0208", f"{kind} `{name}` is defined both in {display_path(Path(first.home.path))} "
                              f"and in {display_path(Path(definition.home.path))}", span, label="second definition",
                              help=f"rename one of them: specc has one namespace for the {kind}s of a file and "
                              "its imports")
        names[name] = definition
        return None


def load_library(spec, import_stack: tuple = (), loaded: dict | None = None) -> tuple[Library, list[Diagnostic]]:
    """The library of `spec` and the diagnostics of its imports. `import_stack`: the files importing
    this one (a cycle is an error); `loaded`: resolved path -> (Library, diagnostics) of the files already
    imported in this build: a file imported by several others is read and checked once (two imports of
    the next file at each level of a chain would otherwise double the work at every level)."""
    loaded = {} if loaded is None else loaded
    import_stack += (str(Path(spec.path).resolve()),)
    library, diagnostics = Library(), []
    here: set[str] = set()  # the files this one has imported already: a repeated import adds nothing
    for i, rel in enumerate(spec.imports):
        span = spec.span("imports", i)
        unusable = _unusable_file_name(rel)
        if unusable:
            diagnostics.append(Diagnostic("E0501", f"cannot import {unparse.literal(rel)}: {unusable}", span,
                                          label="not a file name"))
            library.import_failed = True
            continue
        target = display_path(spec.folder / rel)
        key = str(Path(target).resolve())
        if key in here:
            continue
        here.add(key)
        theirs = _imported_library(rel, target, key, span, import_stack, loaded, diagnostics)
        if theirs is None:
            library.import_failed = True
            continue
        library.import_failed |= theirs.import_failed
        for kind, names in (("block", theirs.blocks), ("constant", theirs.constants)):
            for name, definition in names.items():
                _add(library, kind, name, definition, span, diagnostics)
    for kind, section, defined in (("block", "blocks", spec.blocks), ("constant", "constants", spec.constants)):
        for name, node in defined.items():
            _add(library, kind, name, Definition(node, spec), spec.span(section, name), diagnostics)
    return library, diagnostics


def _add(library: Library, kind: str, name: str, definition: Definition, span, diagnostics: list) -> None:
    clash = library.define(kind, name, definition, span)
    if clash is not None:
        diagnostics.append(clash)


def _imported_library(rel: str, target: str, key: str, span, import_stack: tuple, loaded: dict,
                      diagnostics: list) -> Library | None:
    """The library of the file an import names (`rel`, found at `target`), its diagnostics added to
    `diagnostics` the first time it is loaded; None where it cannot be imported (the error added)."""
    if key in import_stack:
        chain = " -> ".join(Path(p).name for p in import_stack[import_stack.index(key):]) + f" -> {Path(target).name}"
        diagnostics.append(Diagnostic("E0502", f"import cycle: {chain}", span, label="this import closes the cycle"))
        return None
    problem = _not_a_spec_file(target)
    if problem:  # nothing else is read (a line of /etc/passwd would show in the syntax error)
        why, label = problem
        diagnostics.append(Diagnostic("E0501", f"cannot import \"{rel}\": {why}", span, label=label,
                                      help="imports are relative to the importing file"))
        return None
    if key not in loaded:
        try:
            imported = _load_spec(target)
        except SpecError as err:
            diagnostics += _imported_at(err.diagnostics, span)
            return None
        loaded[key] = load_library(imported, import_stack, loaded)
        diagnostics += _imported_at(loaded[key][1], span)
    return loaded[key][0]


def _unusable_file_name(path: str) -> str | None:
    """Why no file can have this name (the system refuses it before looking), or None."""
    if "\0" in path:
        return "a file name cannot hold a NUL character"
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        return "it has characters no file name on this system can hold"
    return None


def _not_a_spec_file(target: str) -> tuple[str, str] | None:
    """(why, label) when `target` cannot be imported: no spec file there, or one the system cannot look at."""
    path = Path(target)
    try:
        if path.is_file():
            return None if target.lower().endswith(SPEC_SUFFIXES) else \
                (f"{target} is not a spec file ({', '.join(SPEC_SUFFIXES)})", "not a spec file")
        if path.is_dir():
            return f"{target} is a folder", "not a spec file"
        if path.exists():
            return f"{target} is not a regular file", "not a spec file"
    except OSError as err:  # a name too long, a folder that cannot be entered
        return f"{target}: {err.strerror}", "cannot be read"
    return f"no such file {target}", "file not found"


def _imported_at(diagnostics: list[Diagnostic], span: SourceSpan | None) -> list[Diagnostic]:
    """An imported file's diagnostics, each noting where the file is imported."""
    return [replace(d, notes=d.notes + (Note("the file is imported", span),)) for d in diagnostics]


_PARSED: dict[tuple, object] = {}  # (resolved path, mtime, size) -> Spec


def _load_spec(path: str):
    """An imported file's Spec, parsed once per process while the file is unchanged (like Python's
    module cache: a block library such as std/resnet.dlspec is imported by many specs)."""
    from ..frontend.load import load_file

    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        _PARSED[key] = load_file(path)  # a SpecError is not cached: the file is read again next time
    return _PARSED[key]


def display_path(path: Path) -> str:
    """A path as diagnostics show it: relative to the working directory when inside it."""
    text = os.path.normpath(str(path))
    rel = os.path.relpath(os.path.abspath(text))
    return rel if not rel.startswith("..") else os.path.abspath(text)
