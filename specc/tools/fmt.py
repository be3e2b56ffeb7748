"""`specc fmt`: one layout for .dlspec files, keeping every comment.

The layout, rule by rule:

- Indentation is 2 spaces a level (model and block bodies, `if`/`else` bodies, sections).
- Spacing: one space around `=`, `|>`, binary operators and comparisons; after `,` and after
  the `:` of a layer name, input or annotation (`conv1: Conv2d(...)`); none inside brackets.
  Redundant parentheses are dropped. Numbers keep their spelling (`3e-4`, `1_000`).
- Inside statements, line breaks are the author's where they carry meaning, and only there:
  fmt keeps a break before `|>`, between the items of a list, call or `repeat { }`, and never
  joins such lines; every other break (say after a `+`) is joined. How a broken line goes on
  is fixed:
    * a pipeline goes on with `|>` lines under its first `|>`, or, when its first line has no
      `|>`, 2 spaces past the statement (past the pipeline's source, for one nested in brackets);
    * a bracket broken right after its opener is "hanging": the items 2 spaces in (one or
      more a line), a trailing comma, the closer on its own line; otherwise the broken lines
      line up with the first item.
  Keeping breaks (as gofmt does) keeps the author's grouping of layers, e.g. one
  conv-norm-activation stage a line, and the comments that annotate those lines.
- A statement on one line that is longer than 100 columns, whose value is a pipeline, is
  broken before every `|>`.
- Model and block headers are filled: parameters joined up to 100 columns, then continued
  under the first parameter.
- Config sections (`train`, `export` and the sections in them) stay on one line when written on
  one line (`optimizer AdamW { lr = 3e-4 }`); otherwise one `key = value` a line. A value is
  always written on one line.
- Blank lines: runs collapse to one; none at the start or end of a body; one around every
  top-level model, block and section; elsewhere (between statements, between `spec`, imports
  and constants) they are kept.
- Comments stay where they are: an own-line comment before what follows it, at its
  indentation; a trailing comment at the end of its line, two spaces after the code, aligned
  with the trailing comments of the lines right above and below it. A comment inside a part
  that fmt joins onto one line ends up at the end of that line.

fmt is idempotent, and the syntax tree of its output equals the input's (tests check both).
Comments are collected with Lark's lexer callbacks (COMMENT is %ignore'd by the grammar) and
re-attached by line.
"""
from __future__ import annotations

import bisect
import difflib
import os
import sys
from dataclasses import dataclass

from lark import Token

from ..errors import Failed, UsageError
from ..io import write_text_atomic
from ..source import is_dlspec
from ..frontend import ast as A
from ..frontend.parse import parse_with_comments
from ..frontend.transform import to_ast
from ..frontend.unparse import literal, needs_parens, precedence

WIDTH = 100
INDENT = 2
BIG_ITEMS = (A.ModelDef, A.BlockDef, A.Section)  # the items that get a blank line around them


# ---- reading: syntax tree, comments, number spellings ------------------------------------
@dataclass(frozen=True)
class Comment:
    line: int
    col: int
    text: str


class Source:
    """A .dlspec text read for printing: top-level items (ast nodes with spans), comments, blank lines."""

    def __init__(self, text: str, file: str):
        self.text, self.file = text, file
        lines = text.split("\n")
        self.blank = {i + 1 for i, line in enumerate(lines) if not line.strip()}
        self.starts = [0]
        for line in lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        tree, comments = parse_with_comments(text, file)
        self.items: list[A.Item] = to_ast(tree, file)  # first: it reports a tree too deep to walk as a located error
        # the AST keeps a number's value, fmt keeps its spelling: `3e-4` stays `3e-4`
        self.numbers = {(t.line, t.column): str(t) for t in
                        tree.scan_values(lambda v: isinstance(v, Token) and v.type in ("INT", "FLOAT"))}
        self.comments = [Comment(t.line, t.column, str(t).rstrip()) for t in comments]

    def blank_between(self, a: int, b: int) -> bool:
        """Whether a blank line lies strictly between lines a and b."""
        return any(line in self.blank for line in range(a + 1, b))

    def next_char(self, line: int, col: int) -> tuple[int, int]:
        """The position of the first character at or after (line, col) that is not blank or a comment."""
        text, i = self.text, self.starts[line - 1] + col - 1
        while i < len(text):
            if text[i] == "#":
                while i < len(text) and text[i] != "\n":
                    i += 1
            elif text[i].isspace():
                i += 1
            else:
                break
        row = bisect.bisect_right(self.starts, i)
        return row, i - self.starts[row - 1] + 1


# ---- printing -------------------------------------------------------------------------
class Printer:
    """Writes a Source's items line by line, flushing comments as the source lines they sit on are passed.

    `mark(line)` records the last source line printed; ending an output line attaches every
    comment up to that source line as a trailing comment; starting a new line for something
    at source line L first writes the comments above L on lines of their own.
    """

    def __init__(self, src: Source, comments=None, flat: bool = False):
        self.src = src
        self.comments = src.comments if comments is None else comments
        self.next = 0  # comments[:next] are written
        self.out: list[tuple[str, list[str]]] = []  # (code, trailing comments)
        self.code = ""
        self.last = 0
        self.flat = flat  # never break lines (config values; measuring)
        self.force = None  # the pipeline to break before every `|>`
        self.top = None  # the pipeline that is a statement's value (not nested in brackets)
        self.probing = None  # the statement one_line() prints as it is, to see whether it keeps a break

    # -- output primitives --
    def write(self, text: str) -> None:
        self.code += text

    def mark(self, line: int) -> None:
        self.last = max(self.last, line)

    @property
    def col(self) -> int:
        return len(self.code)

    @property
    def line_indent(self) -> int:
        return len(self.code) - len(self.code.lstrip(" "))

    def _take(self, before: int) -> list[Comment]:
        start = self.next
        while self.next < len(self.comments) and self.comments[self.next].line < before:
            self.next += 1
        return self.comments[start:self.next]

    def comment_before(self, line: int, since: int = 0) -> bool:
        """Whether a comment not yet written sits on lines since..line-1."""
        for c in self.comments[self.next:]:
            if c.line >= line:
                return False
            if c.line >= since:
                return True
        return False

    def end_line(self) -> None:
        trailing = [c.text for c in self._take(self.last + 1)]
        self.out.append((self.code.rstrip(), trailing))
        self.code = ""

    def start(self, indent: int) -> None:
        self.code = " " * indent

    def newline(self, indent: int, next_line: int, comment_indent: int | None = None) -> None:
        """Break the line inside a statement, before something at source line `next_line`."""
        self.end_line()
        for c in self._take(next_line):
            self.out.append((" " * (indent if comment_indent is None else comment_indent) + c.text, []))
        self.start(indent)

    def blank(self) -> None:
        if self.out and self.out[-1][0]:
            self.out.append(("", []))

    def measure(self, fn) -> int:
        """The width of what `fn(printer)` writes, on one line."""
        printer = Printer(self.src, comments=[], flat=True)
        fn(printer)
        return len(printer.code)

    def one_line(self, s, indent: int) -> bool:
        """Whether statement `s` prints on one line, keeping its breaks (one written on two lines may
        keep none: a break inside brackets before the closer is joined)."""
        printer = Printer(self.src, comments=[])
        printer.probing = s
        printer.start(indent)
        printer.stmt(s, indent)
        return not printer.out

    def text(self) -> str:
        return "\n".join(_aligned(self.out)).rstrip("\n") + "\n"

    # -- layout of sequences of lines --
    def document(self, items) -> None:
        prev, prev_item, prev_big = None, False, False
        for item in items:
            span, big = item.span, isinstance(item, BIG_ITEMS)
            forced = prev_item and (prev_big or big)  # blank lines around models, blocks, sections
            for c in self._take(span.line):
                if prev is not None and (forced or self.src.blank_between(prev, c.line)):
                    self.blank()
                self.out.append((c.text, []))
                prev, forced, prev_item = c.line, False, False
            if prev is not None and (forced or self.src.blank_between(prev, span.line)):
                self.blank()
            self.start(0)
            self.mark(span.line)
            self.item(item)
            self.mark(span.end_line)
            self.end_line()
            prev, prev_item, prev_big = span.end_line, True, big
        for c in self._take(sys.maxsize):
            if prev is not None and ((prev_item and prev_big) or self.src.blank_between(prev, c.line)):
                self.blank()
            self.out.append((c.text, []))
            prev, prev_item = c.line, False

    def lines(self, items, indent: int, close_line: int, print_item) -> None:
        """A body: statements (or section entries) one a line, with the comments and blank lines between them."""
        prev = None
        for item in items:
            span = item.span
            prev = self.leading(span.line, indent, prev)
            if prev is not None and self.src.blank_between(prev, span.line):
                self.blank()
            self.start(indent)
            self.mark(span.line)
            print_item(item, indent)
            self.mark(span.end_line)
            self.end_line()
            prev = span.end_line
        self.leading(close_line, indent, prev)

    def leading(self, before: int, indent: int, prev: int | None) -> int | None:
        for c in self._take(before):
            if prev is not None and self.src.blank_between(prev, c.line):
                self.blank()
            self.out.append((" " * indent + c.text, []))
            prev = c.line
        return prev

    def block_body(self, stmts, indent: int, close_line: int) -> None:
        self.write(" {")
        self.end_line()
        self.lines(stmts, indent + INDENT, close_line, self.stmt)
        self.start(indent)
        self.write("}")
        self.mark(close_line)

    # -- top-level items --
    def item(self, item: A.Item) -> None:
        if isinstance(item, A.SpecVersion):
            self.write(f"spec {item.version}")
        elif isinstance(item, A.Import):
            self.write(f"import {literal(item.path)}")
        elif isinstance(item, A.Constant):
            self.write(f"{item.name} = ")
            self.expr(item.value)
        elif isinstance(item, A.ModelDef):
            self.write(f"model {item.name}")
            if item.params:
                self.params(item.params, tail=len(") {"))
            self.block_body(item.body, 0, item.span.end_line)
        elif isinstance(item, A.BlockDef):
            self.write(f"block {item.name}")
            inputs = f" ({', '.join(item.inputs)})"
            self.params(item.params, tail=len(inputs + ") {"))
            self.write(inputs)
            self.block_body(item.body, 0, item.span.end_line)
        else:
            self.section(item, 0)

    def params(self, params, tail: int) -> None:
        """A header's parameters, filled up to WIDTH (`tail` more follow the last) and continued under the first."""
        self.write("(")
        align = self.col
        for i, p in enumerate(params):
            if i:
                self.write(",")
                width = self.measure(lambda printer: printer.param(p)) + (tail if i == len(params) - 1 else 1)
                if self.comment_before(p.span.line, params[i - 1].span.end_line) or self.col + 1 + width > WIDTH:
                    self.newline(align, p.span.line)
                else:
                    self.write(" ")
            self.mark(p.span.line)
            self.param(p)
            self.mark(p.span.end_line)
        self.write(")")

    def param(self, p: A.Param) -> None:
        self.write(p.name)
        if p.default is not None:
            self.write(" = ")
            self.flat_expr(p.default)

    # -- config sections --
    def section(self, section: A.Section, indent: int) -> None:
        span, entries = section.span, section.entries
        self.write(section.name + (f" {section.kind}" if section.kind else "") + " {")
        if not entries and not self.comment_before(span.end_line):
            self.write("}")
        elif self.flat or span.end_line == span.line:
            for i, entry in enumerate(entries):
                self.write(", " if i else " ")
                self.entry(entry, indent)
            self.write(" }")
        else:
            self.end_line()
            self.lines(entries, indent + INDENT, span.end_line, self.entry)
            self.start(indent)
            self.write("}")
            self.mark(span.end_line)

    def entry(self, entry: A.Setting | A.Section, indent: int) -> None:
        if isinstance(entry, A.Setting):
            self.write(f"{entry.name} = ")
            self.flat_expr(entry.value)
        else:
            self.section(entry, indent)

    def flat_expr(self, e) -> None:
        flat, self.flat = self.flat, True
        self.expr(e)
        self.flat = flat

    # -- statements --
    def stmt(self, s, indent: int) -> None:
        if isinstance(s, A.Input):
            self.write(f"input {s.name}: ")
            self.expr(s.type)
        elif isinstance(s, A.Output):
            self.write("output " + ", ".join(s.names))
        elif isinstance(s, A.Assign):
            self.write(", ".join(s.targets))
            if s.annotation is not None:
                self.write(": ")
                self.expr(s.annotation)
            self.write(" = ")
            self.value(s.value, s, indent)
        elif isinstance(s, A.Return):
            self.write("return ")
            for i, v in enumerate(s.values):
                if i:
                    self.write(", ")
                self.value(v, s, indent)
        elif isinstance(s, A.Tie):
            self.write(f"tie {s.target} = {s.source}")
        elif isinstance(s, A.If):
            self.if_stmt(s, indent)
        else:
            raise TypeError(f"cannot print {type(s).__name__}")

    def value(self, v, s, indent: int) -> None:
        """A statement's value; a long pipeline that would be on one line is broken before every `|>`."""
        if isinstance(v, A.Pipe) and not self.flat and s is not self.probing \
                and indent + self.measure(lambda printer: printer.stmt(s, indent)) > WIDTH and self.one_line(s, indent):
            self.force = v
        self.top = v
        self.expr(v)

    def if_stmt(self, s: A.If, indent: int) -> None:
        self.write("if ")
        self.expr(s.test)
        close = self._then_close(s)
        self.block_body(s.body, indent, close)
        if len(s.orelse) == 1 and isinstance(s.orelse[0], A.If):
            self.write(" else ")
            self.if_stmt(s.orelse[0], indent)
        elif s.orelse:
            self.write(" else")
            self.block_body(s.orelse, indent, s.span.end_line)

    def _then_close(self, s: A.If) -> int:
        """The line of the `}` that closes an if's first body (the syntax tree does not keep it)."""
        if s.body:
            line, col = s.body[-1].span.end_line, s.body[-1].span.end_col
        else:
            line, col = self.src.next_char(s.test.span.end_line, s.test.span.end_col)  # the `{`
            col += 1
        return self.src.next_char(line, col)[0]

    # -- expressions --
    def operand(self, e, parent: float, strict: bool = False) -> None:
        if needs_parens(e, parent, strict):
            self.write("(")
            self.expr(e)
            self.write(")")
        else:
            self.expr(e)

    def expr(self, e) -> None:
        self.mark(e.span.line)
        if isinstance(e, A.Literal):
            self.write(self.literal(e))
        elif isinstance(e, A.Name):
            self.write(e.id)
        elif isinstance(e, A.ListExpr):
            self.seq("[", e.items, "]", e.span.line, e.span.end_line, self.expr)
        elif isinstance(e, A.BinOp):
            p = precedence(e)
            self.operand(e.first, p)
            for op, operand in e.rest:
                self.write(f" {op} ")
                self.operand(operand, p, strict=True)
        elif isinstance(e, A.Unary):
            self.write("not " if e.op == "not" else e.op)
            self.operand(e.operand, 2.5 if e.op == "not" else 7)
        elif isinstance(e, A.Compare):
            self.operand(e.left, 4)
            self.write(f" {e.op} ")
            self.operand(e.right, 4)
        elif isinstance(e, A.BoolOp):
            p = precedence(e)
            for i, operand in enumerate(e.operands):
                if i:
                    self.write(f" {e.op} ")
                self.operand(operand, p, strict=True)
        elif isinstance(e, A.Cond):
            self.operand(e.then, 1)
            self.write(" if ")
            self.operand(e.test, 1)
            self.write(" else ")
            self.expr(e.orelse)
        elif isinstance(e, A.Call):
            if e.layer_name:
                self.write(f"{e.layer_name}: ")
            self.call(e)
        elif isinstance(e, A.TensorTypeExpr):
            self.write(e.dtype or "")
            self.seq("[", e.dims, "]", e.span.line, e.span.end_line, self.expr)
        elif isinstance(e, A.Pipe):
            self.pipe(e)
        else:
            raise TypeError(f"cannot print {type(e).__name__}")
        self.mark(e.span.end_line)

    def literal(self, e: A.Literal) -> str:
        if isinstance(e.value, (int, float)) and not isinstance(e.value, bool):
            return self.src.numbers.get((e.span.line, e.span.col)) or literal(e.value)
        return literal(e.value)

    def call(self, c: A.Call) -> None:
        self.write(c.func)
        self.seq("(", c.args, ")", c.func_span.end_line, c.span.end_line, self.arg)

    def arg(self, a: A.Arg) -> None:
        if a.name:
            self.write(f"{a.name} = ")
        self.expr(a.value)

    def seq(self, opener: str, items, closer: str, open_line: int, close_line: int, item) -> None:
        """Comma-separated items in brackets, keeping the author's line breaks between them."""
        self.write(opener)
        if not items:
            self.write(closer)
            return
        hanging = not self.flat and items[0].span.line > open_line
        outer = self.line_indent
        align = outer + INDENT if hanging else self.col
        if hanging:
            self.newline(align, items[0].span.line)
        for i, x in enumerate(items):
            if i:
                self.write(",")
                if not self.flat and x.span.line > items[i - 1].span.end_line:
                    self.newline(align, x.span.line)
                else:
                    self.write(" ")
            item(x)
        if hanging:
            self.write(",")
            self.newline(outer, close_line, comment_indent=align)
        self.write(closer)

    def pipe(self, e: A.Pipe) -> None:
        """Broken lines start with `|>`: under the first `|>` when the first line has one, else 2 spaces
        past the statement (or past the source, for a pipeline nested in brackets)."""
        base = self.line_indent if e is self.top else self.col
        force, self.force = self.force is e, None
        self.operand(e.source, 5)
        prev_end, cont, first = e.source.span.end_line, None, 0
        for i, s in enumerate(e.stages):
            if not self.flat and (force or s.span.line > prev_end):
                if cont is None:
                    cont = base + INDENT if i == 0 else first
                self.newline(cont, s.span.line)
            else:
                self.write(" ")
            if i == 0:
                first = self.col
            self.write("|> ")
            self.stage(s)
            prev_end = s.span.end_line

    def stage(self, s) -> None:
        self.mark(s.span.line)
        if isinstance(s, A.LayerRef):
            self.write(s.name)
        elif isinstance(s, A.LayerCall):
            self.call(s.call)
        elif isinstance(s, A.LayerList):
            self.seq("[", s.items, "]", s.span.line, s.span.end_line, self.stage)
        elif isinstance(s, A.Repeat):
            self.repeat(s)
        elif isinstance(s, A.Named):
            self.write(f"{s.name}: ")
            self.stage(s.layer)
        else:
            raise TypeError(f"cannot print {type(s).__name__}")
        self.mark(s.span.end_line)

    def repeat(self, r: A.Repeat) -> None:
        self.write("repeat ")
        self.operand(r.count, 9)
        if r.var:
            self.write(f" as {r.var}")
        self.write(" {")
        outer = self.line_indent
        hanging = not self.flat and r.stages[0].span.line > r.count.span.end_line
        if hanging:
            self.newline(outer + INDENT, r.stages[0].span.line)
        else:
            self.write(" ")
        base = self.col
        for i, s in enumerate(r.stages):
            if i:
                if not self.flat and s.span.line > r.stages[i - 1].span.end_line:
                    self.newline(base + INDENT, s.span.line)
                else:
                    self.write(" ")
                self.write("|> ")
            self.stage(s)
        if hanging:
            self.newline(outer, r.span.end_line, comment_indent=outer + INDENT)
            self.write("}")
        else:
            self.write(" }")


def _aligned(out) -> list[str]:
    """Lines with their trailing comments; consecutive lines' trailing comments share a column."""
    lines, i = [], 0
    while i < len(out):
        if not out[i][1]:
            lines.append(out[i][0])
            i += 1
            continue
        j = i
        while j < len(out) and out[j][1] and out[j][0]:
            j += 1
        j = max(j, i + 1)
        col = max(len(code) for code, _ in out[i:j]) + 2
        lines += [code.ljust(col) + "  ".join(comments) for code, comments in out[i:j]]
        i = j
    return lines


# ---- the API and the command -------------------------------------------------------------
def format_source(src: Source) -> str:
    printer = Printer(src)
    printer.document(src.items)
    return printer.text()


def format_text(text: str, file: str = "<text>") -> str:
    """Canonical text of a .dlspec document; raises Failed (a located syntax error) if it does not parse."""
    crlf = "\r\n" in text
    out = format_source(Source(text.replace("\r\n", "\n"), file))
    return out.replace("\n", "\r\n") if crlf else out


def _files(paths) -> list[str]:
    from ..checker import expand_paths

    files = []
    for path in expand_paths(paths):
        if not os.path.exists(path):
            raise UsageError(f"no such file or folder: {path}")
        if is_dlspec(path):
            files.append(path)
        elif path in map(str, paths):
            raise UsageError(f"{path}: fmt formats .dlspec files (`specc convert` turns YAML into .dlspec)")
    if not files:
        raise UsageError("no .dlspec files in " + ", ".join(map(str, paths)))
    return files


def cmd_fmt(args) -> int:
    from ..frontend.load import read_source

    status, changed = 0, []
    for path in _files(args.paths):
        try:
            text = read_source(path)
            new = format_text(text, path)
        except Failed as failed:
            print(failed.diagnostic.render(), file=sys.stderr)
            status = 1
            continue
        if new == text:
            continue
        changed.append(path)
        if args.check:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                       f"{path} (now)", f"{path} (formatted)"))
            status = 1
        else:
            write_text_atomic(path, new)
            print(f"formatted {path}", file=sys.stderr)
    if args.check and changed:
        print(f"{len(changed)} file{'s' if len(changed) != 1 else ''} would be reformatted by `specc fmt`",
              file=sys.stderr)
    return status
