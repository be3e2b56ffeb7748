"""Diagnostics for CI: text, JSON, GitHub workflow annotations, SARIF 2.1.0."""
from __future__ import annotations

import json

from . import __version__
from .errors import Diagnostic


def text(diagnostics: list[Diagnostic], files: int) -> str:
    out = [d.render() for d in diagnostics]
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    status = "ok" if not errors else f"{errors} error{'s' if errors != 1 else ''}"
    if warnings:
        status += f", {warnings} warning{'s' if warnings != 1 else ''}"
    out.append(f"checked {files} file{'s' if files != 1 else ''}: {status}")
    return "\n\n".join(out[:-1] + [out[-1]]) if len(out) > 1 else out[0]


def as_json(diagnostics: list[Diagnostic], files: int) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    return json.dumps({"version": __version__, "files": files, "errors": errors,
                       "warnings": len(diagnostics) - errors,
                       "diagnostics": [d.to_json() for d in diagnostics]}, indent=2)


def _full_message(d: Diagnostic) -> str:
    """The message with its label, notes and help: what the text format shows around the snippet."""
    lines = [d.message + (f" ({d.label})" if d.label else "")]
    lines += [f"note: {n.message}" + (f" at {n.span}" if n.span else "") for n in d.notes]
    return "\n".join(lines + ([f"help: {d.help}"] if d.help else []))


def _escape(s: str, prop: bool = False) -> str:
    s = s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return s.replace(":", "%3A").replace(",", "%2C") if prop else s


def github(diagnostics: list[Diagnostic], files: int) -> str:
    lines = []
    for d in diagnostics:
        props = [f"title={_escape(d.code, True)}"]
        if d.span is not None:
            s = d.span
            props = [f"file={_escape(s.file, True)}", f"line={s.line}", f"col={s.col}",
                     f"endLine={s.end_line}", f"endColumn={s.end_col}"] + props
        lines.append(f"::{d.severity} {','.join(props)}::{_escape(_full_message(d))}")
    return "\n".join(lines)


def _uri(path: str) -> str:
    """A file path as a SARIF artifact URI: relative paths percent-encoded with `/`, absolute ones file:// URIs.
    The file name's bytes are encoded, so a name that is not UTF-8 (which Linux allows) has a URI too."""
    import os
    from pathlib import Path
    from urllib.parse import quote

    if not os.path.isabs(path):
        return quote(os.fsencode(path.replace("\\", "/")))
    return Path(path).as_uri() if os.name == "nt" else "file://" + quote(os.fsencode(path))


def sarif(diagnostics: list[Diagnostic], files: int) -> str:
    """SARIF 2.1.0 (validated against the OASIS schema in tests/data); columns count code points."""
    from .errors import CODES

    codes = sorted({d.code for d in diagnostics})
    rules = [{"id": c, "name": CODES.get(c, c), "shortDescription": {"text": CODES.get(c, c)},
              "helpUri": "https://github.com/specc-dev/specc/blob/main/docs/diagnostics.md#" + c.lower()}
             for c in codes]
    results = []
    for d in diagnostics:
        result = {"ruleId": d.code, "ruleIndex": codes.index(d.code), "level": d.severity,
                  "message": {"text": _full_message(d)}}
        if d.span is not None:
            s = d.span
            result["locations"] = [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(s.file)},
                "region": {"startLine": s.line, "startColumn": s.col, "endLine": s.end_line, "endColumn": s.end_col}}}]
        results.append(result)
    return json.dumps({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "specc", "version": __version__,
                                      "informationUri": "https://github.com/specc-dev/specc", "rules": rules}},
                  "columnKind": "unicodeCodePoints", "results": results}]}, indent=2)


FORMATS = {"text": text, "json": as_json, "github": github, "sarif": sarif}
