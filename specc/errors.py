"""Diagnostics: what went wrong, where, and what to do about it.

Every stage reports problems as `Diagnostic`s with a stable code (E0301). `check` collects
them all; `load` and `compile` raise `SpecError` holding them. Codes by range:

  E01xx syntax           E02xx document/schema     E03xx shapes and types
  E04xx names and args   E05xx imports             E06xx limits
  E07xx training plan    E08xx export              E09xx files and environment
"""
from __future__ import annotations

import difflib

from dataclasses import dataclass, field

from .source import SourceSpan, snippet

REPORT_URL = "https://github.com/specc-dev/specc/issues"

# Stable codes: they are SARIF rule ids and JSON `code` fields; never renumber one.
CODES = {
    "E0101": "unexpected-token", "E0102": "unclosed-bracket", "E0103": "trailing-comma",
    "E0104": "equals-vs-colon", "E0105": "bad-character", "E0106": "unterminated-string",
    "E0107": "nesting-too-deep",
    "E0201": "unknown-key", "E0202": "invalid-value", "E0203": "missing-key", "E0204": "bad-yaml",
    "E0205": "yaml-alias-bomb", "E0206": "unknown-kind", "E0207": "duplicate-key", "E0208": "duplicate-definition",
    "E0301": "input-size-mismatch", "E0302": "incompatible-shapes", "E0303": "concat-mismatch",
    "E0304": "shape-assertion-failed", "E0305": "wrong-rank", "E0306": "wrong-dtype", "E0307": "bad-op-argument",
    "E0308": "tie-shape-mismatch",
    "E0401": "undefined-name", "E0402": "unknown-op", "E0403": "duplicate-layer-name", "E0404": "unknown-argument",
    "E0405": "wrong-type", "E0406": "missing-argument", "E0407": "too-many-arguments", "E0408": "wrong-input-count",
    "E0409": "misplaced-statement", "E0410": "wrong-result-count", "E0411": "ambiguous-model",
    "E0412": "reserved-name",
    "E0501": "missing-import", "E0502": "import-cycle",
    "E0601": "too-many-parameters", "E0602": "too-large", "E0603": "blocks-too-deep",
    "E0701": "bad-training-plan", "E0702": "missing-data", "E0703": "training-failed",
    "E0801": "export-failed", "E0802": "verification-failed", "E0803": "exporter-missing",
    "E0901": "cannot-read-file", "E0999": "internal-error",
}


@dataclass(frozen=True, slots=True)
class Note:
    message: str
    span: SourceSpan | None = None


def _shown(text: str) -> str:
    """`text` with the characters a terminal would act on written as escapes (`\x1b`); lines stay lines."""
    return "".join(c if c.isprintable() or c in "\n\t" else ascii(c)[1:-1] for c in text)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: SourceSpan | None = None
    label: str = ""  # printed beside the caret
    notes: tuple[Note, ...] = ()
    help: str | None = None
    severity: str = "error"  # "error" | "warning"

    def __post_init__(self):
        # a spec's own text (a file name, a YAML string) may hold an escape sequence a terminal or CI log would act on
        for name in ("message", "label", "help"):
            text = getattr(self, name)
            if text and not text.isprintable():
                object.__setattr__(self, name, _shown(text))

    def render(self) -> str:
        out = [f"{self.severity}[{self.code}]: {self.message}"]
        if self.span is not None:
            out.append(f"  --> {self.span}")
            out.extend(snippet(self.span, self.label))
        for note in self.notes:
            where = f" at {note.span}" if note.span else ""
            out.append(f"   = note: {note.message}{where}")
        if self.help:
            out.append(f"   = help: {self.help}")
        return "\n".join(out)

    def to_json(self) -> dict:
        span = self.span
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": span.file if span else None,
            "line": span.line if span else None,
            "column": span.col if span else None,
            "end_line": span.end_line if span else None,
            "end_column": span.end_col if span else None,
            "label": self.label or None,
            "notes": [{"message": n.message, "file": n.span.file if n.span else None,
                       "line": n.span.line if n.span else None, "column": n.span.col if n.span else None}
                      for n in self.notes],
            "help": self.help,
        }


@dataclass(eq=False)  # an exception: compared and hashed by identity
class SpecError(Exception):
    """Raised by `load`/`compile` when a spec has errors; `.diagnostics` holds all of them."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    # the file less its models and sections in error, when that still is a valid spec: `check` goes on
    # with it, to report the errors of the rest of the file too
    sound_part: object = None

    def __str__(self) -> str:
        return "\n\n".join(d.render() for d in self.diagnostics)


class UsageError(Exception):
    """The command or API was used wrongly (exit code 2)."""


class Failed(Exception):
    """A diagnostic that stops the current stage at once (used by `build`, which stops at the first error)."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def closest(name, choices, cutoff: float = 0.6) -> str | None:
    """The choice `name` most likely misspells: one that differs only in case (`Adamw`: AdamW, not
    Adam), else the most similar one (difflib), if any is similar enough."""
    choices = [str(c) for c in choices]
    same = [c for c in choices if c.lower() == str(name).lower()]
    if same:
        return same[0]
    guess = difflib.get_close_matches(str(name), choices, n=1, cutoff=cutoff)
    return guess[0] if guess else None


def did_you_mean(name, choices, cutoff: float = 0.6) -> str | None:
    guess = closest(name, choices, cutoff)
    return f"did you mean `{guess}`?" if guess else None


def guess_or_known(name, choices) -> str | None:
    """A help line: a guess at what `name` misspells, or else the choices there are."""
    choices = list(choices)
    return did_you_mean(name, choices) or (f"known: {', '.join(map(str, choices))}" if choices else None)
