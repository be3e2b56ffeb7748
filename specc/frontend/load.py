"""File -> validated Spec. Dispatches on the extension (.dlspec, .yaml/.yml)."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..errors import Diagnostic, Failed, Note, SpecError, did_you_mean
from ..schema import Spec
from ..schema.values import REFUSED
from ..source import SourceSpan, is_yaml, register_source
from .parse import later_syntax_errors, parse
from .transform import DocumentBuilder, to_ast
from .unparse import literal

MAX_FILE_BYTES = 16 * 1024 * 1024


def read_source(path: str | Path) -> str:
    """Read a spec file's text, registering it for diagnostics. Raises Failed(E0901)."""
    file = str(path)
    p = Path(path)
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):  # a device or a pipe: its size says nothing, and reading may not end
            raise Failed(Diagnostic("E0901", f"{file} is not a regular file", _whole(file)))
        if st.st_size > MAX_FILE_BYTES:
            raise Failed(Diagnostic("E0602", f"{file} is {st.st_size:,} bytes; "
                                    f"specs are limited to {MAX_FILE_BYTES:,}", _whole(file)))
        text = p.read_bytes().decode("utf-8").removeprefix("\ufeff")  # the byte-order mark some editors write
    except FileNotFoundError:
        gone = f"{file} is a link to a missing file" if p.is_symlink() else f"no such file: {file}"
        raise Failed(Diagnostic("E0901", gone, _whole(file))) from None
    except IsADirectoryError:
        raise Failed(Diagnostic("E0901", f"{file} is a folder, not a spec file", _whole(file))) from None
    except UnicodeDecodeError as err:
        line = p.read_bytes()[: err.start].count(b"\n") + 1
        raise Failed(Diagnostic("E0105", "the file is not valid UTF-8 text",
                                SourceSpan.point(file, line, 1))) from None
    except OSError as err:
        raise Failed(Diagnostic("E0901", f"cannot read {file}: {err.strerror}", _whole(file))) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        register_source(file, text)
        raise Failed(Diagnostic("E0105", "unexpected NUL byte: this is not a text file",
                                SourceSpan.point(file, line, 1)))
    register_source(file, text)
    return text


def _whole(file: str) -> SourceSpan:
    """Where a problem with the file as a whole is reported (SARIF consumers need a location)."""
    return SourceSpan.point(file, 1, 1)


def document(text: str, file: str) -> tuple[dict, dict, list[Diagnostic]]:
    """Text -> (plain document, source map, diagnostics). Raises Failed on a syntax error."""
    if is_yaml(file):
        from .yaml_load import load_yaml
        return load_yaml(text, file)
    items = to_ast(parse(text, file), file)
    return DocumentBuilder(file).build(items)


def load_text(text: str, file: str) -> Spec:
    """Parse and validate; raises SpecError with every diagnostic found."""
    register_source(file, text)
    try:
        doc, source_map, diagnostics = document(text, file)
    except Failed as failed:
        found = [failed.diagnostic]
        if failed.diagnostic.code.startswith("E01") and not is_yaml(file):  # a syntax error
            found += later_syntax_errors(text, file, failed.diagnostic)
        raise SpecError(found) from None
    try:
        spec = Spec.model_validate(doc)
    except ValidationError as err:
        diagnostics += schema_diagnostics(err, doc, source_map, file)
    if diagnostics:
        raise SpecError(diagnostics, sound_part=_sound_part(doc, source_map, diagnostics, text, file))
    return _finished(spec, source_map, text, file)


def _finished(spec: Spec, source_map: dict, text: str, file: str) -> Spec:
    spec._path = file
    if not file.startswith("<"):  # "<memory>", "<--set>": no file
        spec._folder = str(Path(file).resolve().parent)
    spec._source_map = source_map
    spec._text_hash = hashlib.sha256(text.encode()).hexdigest()
    return spec


def _sound_part(doc: dict, source_map: dict, diagnostics: list[Diagnostic], text: str, file: str) -> Spec | None:
    """The spec without the models and the train or export sections that hold these errors (each is
    placed in the top-level item that starts last before it), or None when an error is elsewhere
    (a block, a constant, an import: the rest of the file depends on those) or the rest is no spec."""
    starts = sorted((((span.line, span.col), path) for path, span in source_map.items()
                     if len(path) == 1 or (len(path) == 2 and path[0] in ("models", "blocks", "constants"))),
                    key=lambda start: start[0])  # paths may mix names and numbers: sort by place only
    in_error = set()
    for d in diagnostics:
        if d.span is None or d.span.file != file:
            return None
        before = [path for at, path in starts if at <= (d.span.line, d.span.col)]
        if not before or before[-1][0] not in ("train", "export", "models"):
            return None
        in_error.add(before[-1])
    if any(path[0] == "models" for path in in_error):  # the sections are for a model, maybe the one left out
        in_error |= {("train",), ("export",)}
    rest = {key: value for key, value in doc.items() if (key,) not in in_error}
    if isinstance(doc.get("models"), dict):  # else the schema error is about `models` itself: nothing is sound
        rest["models"] = {name: m for name, m in doc["models"].items() if ("models", name) not in in_error}
    try:
        return _finished(Spec.model_validate(rest), source_map, text, file)
    except ValidationError:
        return None


def load_file(path: str | Path) -> Spec:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TypeError(f"path must be a non-empty str or os.PathLike, got {path!r}")
    try:
        text = read_source(path)
    except Failed as failed:
        raise SpecError([failed.diagnostic]) from None
    return load_text(text, str(path))


# ---- schema errors -> diagnostics --------------------------------------------------------
def _real_path(doc, loc: tuple) -> tuple:
    """Pydantic's error location minus union tags: the path that exists in the document."""
    path, node = [], doc
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, (dict, list)) or part in ("<key>",):
            continue
        else:
            break
        path.append(part)
    return tuple(path)


def _repeated_section(doc, path: tuple, source_map: dict) -> bool:
    """A section written twice where one is allowed: the parser made a list of them (as for `loss`)."""
    node = doc
    for part in path:
        node = node[part]
    return isinstance(node, list) and path + (1,) in source_map and path + (0,) in source_map


def _span_for(source_map: dict, path: tuple, file: str) -> SourceSpan:
    for n in range(len(path), 0, -1):
        if path[:n] in source_map and source_map[path[:n]] is not None:
            return source_map[path[:n]]
    return SourceSpan.point(file, 1, 1)


def _model_at(loc: tuple):
    """The pydantic model class that owns the last key of `loc` (for did-you-mean)."""
    candidates = [Spec]
    for part in loc[:-1]:
        nxt = []
        for model in candidates:
            if isinstance(part, str) and isinstance(model, type) and issubclass(model, BaseModel):
                field = model.model_fields.get(part)
                if field is not None:
                    nxt += _models_in(field.annotation)
                elif part in _kinds(model):  # a tagged union's member, named in `loc` by its kind
                    nxt.append(model)
            else:
                nxt += [model]
        candidates = nxt or candidates
    return [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]


def _models_in(annotation) -> list:
    from typing import get_args
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in get_args(annotation):
        out += _models_in(arg)
    return out


def _kinds(model) -> tuple:
    """The values a model's `kind` field takes (the tag of its union: `digits`, `AdamW`, ...)."""
    from typing import get_args
    field = model.model_fields.get("kind")
    return get_args(field.annotation) if field is not None else ()


def schema_diagnostics(err: ValidationError, doc: dict, source_map: dict, file: str) -> list[Diagnostic]:
    out, seen = [], set()
    for e in err.errors(include_url=False):
        if e.get("input") is REFUSED:  # reported by the loader already
            continue
        loc = tuple(e["loc"])
        path = _real_path(doc, loc)
        span = _span_for(source_map, path, file)
        where = ".".join(str(p) for p in path) or "the document"
        kind = e["type"]
        if kind in ("dict_type", "model_type", "model_attributes_type") and not is_yaml(file) \
                and _repeated_section(doc, path, source_map):
            diag = Diagnostic("E0208", f"section `{path[-1]}` appears twice", source_map[path + (1,)],
                              label="second one", notes=(Note(f"first at {source_map[path + (0,)]}"),))
        elif kind == "extra_forbidden":
            key = loc[-1]
            fields = sorted({f for m in _model_at(loc) for f in m.model_fields})
            help_ = did_you_mean(key, fields) or (f"known keys: {', '.join(fields)}" if fields else None)
            diag = Diagnostic("E0201", f"unknown key `{key}` in {'.'.join(map(str, path[:-1])) or 'the document'}",
                              span, label="not a known setting", help=help_)
        elif kind == "missing":
            diag = Diagnostic("E0203", f"`{loc[-1]}` is required in {where}", span, label="missing here")
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            ctx = e.get("ctx", {})
            tags = ctx.get("expected_tags", "")
            got = ctx.get("tag", "")
            names = [t.strip().strip("'") for t in str(tags).split(",")]
            help_ = did_you_mean(got, names) or f"choose one of: {', '.join(names)}"
            section = next((str(part) for part in reversed(path) if not isinstance(part, int)), "")
            at = _span_for(source_map, path + ("kind",), file) if path + ("kind",) in source_map else span
            diag = Diagnostic("E0206", f"unknown {section} kind `{got}`" if got else
                              f"{where} needs a kind ({', '.join(names)})", at, label="unknown kind", help=help_)
        else:
            msg = e["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            value = e.get("input")
            label = f"got {literal(value)}" if isinstance(value, (bool, int, float, str)) else "invalid value"
            diag = Diagnostic("E0202", f"{where}: {msg[0].lower() + msg[1:]}", span, label=label)
        key = (diag.code, diag.message, span)
        if key not in seen:
            seen.add(key)
            out.append(diag)
    return out
