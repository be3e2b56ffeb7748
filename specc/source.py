"""Source positions and the text they point into.

A `SourceSpan` is 1-based (line, col) to (end_line, end_col), end exclusive. Every file the
frontend reads is registered here so that diagnostics can show the offending line later.
"""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

_SOURCES: dict[str, str] = {}
MAX_SHOWN = 100  # columns of a source line shown in a snippet


_LINES: dict[str, list[str]] = {}


def register_source(path: str, text: str) -> None:
    _SOURCES[path] = text
    _LINES.pop(path, None)


def source_line(path: str, line: int) -> str | None:
    """Line `line` (1-based) of a registered file, or None."""
    lines = _LINES.get(path)
    if lines is None:
        text = _SOURCES.get(path)
        if text is None:
            return None
        lines = _LINES[path] = _split_lines(path, text)
    return lines[line - 1] if 0 < line <= len(lines) else None


YAML_SUFFIXES = (".yaml", ".yml")  # a spec file with one of these is YAML, else dlspec
SPEC_SUFFIXES = (".dlspec", *YAML_SUFFIXES)
YAML_LINE_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # PyYAML's line breaks


def is_yaml(path: str) -> bool:
    return path.lower().endswith(YAML_SUFFIXES)


def is_dlspec(path: str) -> bool:
    return path.lower().endswith(".dlspec")


def _split_lines(path: str, text: str) -> list[str]:
    """A file's lines as its reader numbers them (not str.splitlines, which also breaks at \\f, \\x1c, ...):
    the dlspec lexer breaks only at `\\n`, PyYAML at `YAML_LINE_BREAKS`."""
    if is_yaml(path):
        return YAML_LINE_BREAKS.split(text)
    return [line.removesuffix("\r") for line in text.split("\n")]


# shown as one space each: a tab, so that a caret's column is a character's, and the control characters a
# terminal would act on (a carriage return, escape sequences in a comment)
_BLANKED = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029], " ")


def _width(text: str) -> int:
    """Terminal columns of `text`: wide characters (CJK, most emoji) take two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def source_text(path: str) -> str | None:
    return _SOURCES.get(path)


class SourceSpan(NamedTuple):
    """A NamedTuple rather than a frozen dataclass: the parser makes tens of thousands of them."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @staticmethod
    def point(file: str, line: int, col: int, width: int = 1) -> SourceSpan:
        return SourceSpan(file, line, col, line, col + width)

    def cover(self, other: SourceSpan | None) -> SourceSpan:
        """The smallest span holding both (same file)."""
        if other is None or other.file != self.file:
            return self
        start = min((self.line, self.col), (other.line, other.col))
        end = max((self.end_line, self.end_col), (other.end_line, other.end_col))
        return SourceSpan(self.file, start[0], start[1], end[0], end[1])


def snippet(span: SourceSpan, label: str = "") -> list[str]:
    """The source line of `span` with a caret underline, rustc style (without the arrow line)."""
    line = source_line(span.file, span.line)
    if line is None:
        return []
    line = line.translate(_BLANKED)
    gutter = len(str(span.line))
    end_col = span.end_col if span.end_line == span.line else len(line) + 1
    width = max(1, min(end_col, len(line) + 1) - span.col)
    col = span.col
    if len(line) > MAX_SHOWN:  # show a window around the span of a very long line
        start = max(0, min(col - 1 - MAX_SHOWN // 2, len(line) - MAX_SHOWN))
        line = ("…" if start else "") + line[start:start + MAX_SHOWN] + ("…" if start + MAX_SHOWN < len(line) else "")
        col = col - start + (1 if start else 0)
        width = min(width, MAX_SHOWN - col + 2)
    pad = " " * (gutter + 1)
    caret = " " * _width(line[:col - 1]) + "^" * max(1, _width(line[col - 1:col - 1 + width]))
    caret += f" {label}" if label else ""
    return [f"{pad}|", f"{span.line:>{gutter}} | {line}", f"{pad}| {caret}"]
