"""`specc convert`: .dlspec <-> YAML, both ways without loss.

The YAML form is the document `specc.frontend.yaml_load` reads: `models: {Name: {params,
inputs, body, outputs}}`, `blocks: {Name: {params, inputs, body}}`, `constants`, `imports`, and
the config sections as mappings (a section's Kind is its `kind` key). Statements are dlspec text:
one-line statements are YAML strings, longer ones `|-` block scalars holding the formatted lines.

What carries over, both ways:
- comments: own-line comments become own-line comments of the other form, before the same
  thing; trailing comments stay trailing; comments inside a multi-line statement stay inside it
  (a comment after the `}` that closes a model, block or section has no YAML line of its own: it
  comes back on its own line just before the `}`);
- blank lines between statements, entries and top-level items;
- a config section written on one line is a YAML flow mapping (`{kind: AdamW, lr: 3e-4}`),
  a longer one a block mapping, and back;
- a setting written as a name (`metrics = [accuracy]`) is a plain YAML scalar, a string
  (`monitor = "val/loss"`) a double-quoted one: both mean the same string, and the way back
  writes each as it was written.

So `dlspec -> yaml -> dlspec` gives the same IR and the same text after `specc fmt`, provided
the items of one kind (imports, constants, models, blocks) are not interleaved with other kinds
(YAML groups them) and a model's inputs come first and its outputs last (YAML keeps them apart
from the body). A parameter default or constant that is no YAML literal (`width = 2 * base`, `none`)
is written `{expr: "2 * base"}`.
"""
from __future__ import annotations

import bisect
import dataclasses
import os
import re
import sys

import yaml

from ..errors import Diagnostic, Failed, SpecError, UsageError
from ..frontend import ast as A
from ..frontend.parse import keywords, parse
from ..frontend.transform import to_ast
from ..frontend.unparse import expr as unparse_expr, literal
from ..frontend.yaml_load import Loader
from ..io import write_text_atomic
from ..source import SourceSpan, is_yaml
from .fmt import Comment, Source, format_source, format_text

STR, INT, FLOAT, NULL = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "null"))
NUMBER = re.compile(r"[-+]?(?:(?:\d[\d_]*\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d[\d_]*[eE][+-]?\d+|\d[\d_]*)")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TOP_LEVEL_KEYWORDS = ("spec", "import", "model", "block", "else")  # a constant's line cannot start with one
TENSOR_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[.*\]")
WIDTH = 100
# the YAML key that holds each kind of top-level item; a section is held under its own name
YAML_KEYS = {A.SpecVersion: "spec", A.Import: "imports", A.Constant: "constants", A.ModelDef: "models",
             A.BlockDef: "blocks"}


class Lines:
    """Output lines tied to lines of the input, so that the input's comments and blank lines come along.

    `line(text, src)` first writes the comments above input line `src` (and a blank line where
    the input has one), then the text with the comments that trail line `src`. `heading(text, src)`
    writes a line such as `body:` that the comments above `src` come after, not before.
    """

    def __init__(self, comments: list[Comment], blank: set[int]):
        self.comments = sorted(comments, key=lambda c: (c.line, c.col))
        self.lines = [c.line for c in self.comments]
        self.used = [False] * len(self.comments)
        self.first = 0  # comments[:first] are all written
        self.blank = blank
        self.out: list[str] = []
        self.last = 0  # the last input line written
        self.floor = 0  # comments at or above this line belong to something else

    def _blank_before(self, line: int) -> None:
        if self.out and self.out[-1] and any(n in self.blank for n in range(self.last + 1, line)):
            self.out.append("")

    def _pending(self, lo: int, hi: int):
        """Indexes of unwritten comments on lines lo..hi."""
        start = max(self.first, bisect.bisect_left(self.lines, lo))
        return [i for i in range(start, bisect.bisect_right(self.lines, hi)) if not self.used[i]]

    def _use(self, i: int) -> None:
        self.used[i] = True
        while self.first < len(self.used) and self.used[self.first]:
            self.first += 1

    def has_comments(self, first: int, last: int) -> bool:
        return bool(self._pending(first, last))

    def head(self, line: int) -> int:
        """`line`, or the line of the first unwritten comment above it (where a group of lines starts)."""
        pending = self._pending(max(self.floor, self.last) + 1, line - 1)
        return self.comments[pending[0]].line if pending else line

    def line(self, text: str, src: int | None = None, indent: str = "", trailing: bool = True) -> None:
        """One output line, after the comments above input line `src`; with trailing=False the comments
        that trail line `src` wait for the next line."""
        tail = []
        if src is not None:
            for i in self._pending(self.floor + 1, src - 1):
                c = self.comments[i]
                self._blank_before(c.line)
                self.out.append(indent + c.text)
                self._use(i)
                self.last = max(self.last, c.line)
            self._blank_before(src)
            for i in self._pending(src, src) if trailing else ():
                tail.append(self.comments[i].text)
                self._use(i)
            self.last = max(self.last, src)
        self.out.append(indent + text + ("  " + "  ".join(tail) if tail else ""))

    def heading(self, text: str, src: int, indent: str = "") -> None:
        """A line such as `body:` or `params:` that starts a group of lines: the comments above input
        line `src` wait for the group's first line."""
        start = self.head(src)
        self._blank_before(start)
        self.last = max(self.last, start - 1)
        self.out.append(indent + text)

    def inside(self, before: int, min_col: int, indent: str) -> None:
        """Write the comments above line `before` that are indented past column `min_col` (the end of a body)."""
        for i in self._pending(self.floor + 1, before - 1):
            c = self.comments[i]
            if c.col > min_col:
                self._blank_before(c.line)
                self.out.append(indent + c.text)
                self._use(i)
                self.last = max(self.last, c.line)

    def raw(self, text: str) -> None:
        self.out.append(text)

    def consume(self, first: int, last: int) -> None:
        """Mark the comments on lines first..last as written (they are inside copied text)."""
        for i in self._pending(first, last):
            self._use(i)
        self.last = max(self.last, last)

    def gap(self) -> None:
        if self.out and self.out[-1]:
            self.out.append("")

    def text(self) -> str:
        for i in self._pending(0, sys.maxsize):
            c = self.comments[i]
            self._blank_before(c.line)
            self.out.append(c.text)
            self.last = max(self.last, c.line)
        return "\n".join(self.out).strip("\n") + "\n"


def _unconvertible(span, what: str, label: str = "not a literal") -> SpecError:
    return SpecError([Diagnostic("E0202", f"the YAML form cannot hold this {what}", span,
                                 label=label, help="write the value out as a number, string, "
                                 "true/false or a list, or keep this spec in .dlspec")])


# ---- YAML scalars ----------------------------------------------------------------------
_LOADER = Loader("")


def _value(node):
    return _LOADER.construct_object(node, deep=True)


def _reads_as(text: str, tag: str, value, flow: bool) -> bool:
    """Whether `text`, written as a plain YAML scalar (in a flow collection if `flow`), reads back as
    this tag and value. Conservative: some texts YAML would accept get quoted all the same."""
    if not text or text != text.strip() or any(c in text for c in "\n\t") or ": " in text or " #" in text \
            or text.endswith(":") or (flow and any(c in text for c in ",[]{}")):
        return False
    if not (text[0].isalnum() or text[0] in "_(" or (text[0] in "-+." and text[1:2].isdigit())):
        return False  # indicators (`-`, `[`, `&`, `!`, `'`, ...) may not start a plain scalar
    if _LOADER.resolve(yaml.ScalarNode, text, (True, False)) != tag:
        return False
    return tag == STR or _value(yaml.ScalarNode(tag, text)) == value


def yaml_string(text: str, flow: bool = False) -> str:
    """A string plain where it reads back as itself, else single-quoted."""
    return text if _reads_as(text, STR, text, flow) else "'" + text.replace("'", "''") + "'"


def yaml_quoted(text: str) -> str:
    """A double-quoted YAML string, escaped by YAML's own emitter (JSON's escapes split characters
    beyond U+FFFF into surrogate pairs, which YAML reads as two broken characters)."""
    return yaml.dump(text, default_style='"', allow_unicode=True, width=float("inf")).rstrip("\n")


def _yaml_number(text: str, value, flow: bool) -> str:
    tag = FLOAT if isinstance(value, float) else INT
    for candidate in (text, repr(value)):
        if _reads_as(candidate, tag, value, flow):
            return candidate
    return f"!!{'float' if tag == FLOAT else 'int'} {repr(value)}"


# ---- .dlspec -> YAML ----------------------------------------------------------------------
def to_yaml(text: str, file: str = "<text>") -> str:
    """The YAML form of a .dlspec text (raises Failed on a syntax error, SpecError on what YAML cannot hold)."""
    original = Source(text.replace("\r\n", "\n"), file)
    _refuse_unconvertible(original)
    return _YamlWriter(Source(format_source(original), file)).document()


_NOT_IN_A_YAML_COMMENT = re.compile(f"{yaml.reader.Reader.NON_PRINTABLE.pattern}|[\r\x85\u2028\u2029]")


def _yaml_comment(text: str) -> str:
    """A comment as YAML may hold it: characters YAML does not allow in a file (DEL, other control
    characters) or reads as line breaks (CR, NEL, U+2028/9) written as their escapes."""
    return _NOT_IN_A_YAML_COMMENT.sub(lambda m: ascii(m[0])[1:-1], text)


def _refuse_unconvertible(src: Source) -> None:
    """Report a setting the YAML form cannot hold at its place in the user's file (the YAML is
    written from the formatted text, whose lines may differ). Constants and parameter defaults
    always convert: what is no YAML literal becomes `{expr: ...}`."""
    writer = _YamlWriter(src)

    def check(entries) -> None:
        for entry in entries:
            if isinstance(entry, A.Setting):
                writer.scalar(entry.value, True)
            else:
                check(entry.entries)

    for item in src.items:
        if isinstance(item, A.Section):
            check(item.entries)


class _YamlWriter:
    def __init__(self, src: Source):
        self.src = src
        self.text_lines = src.text.split("\n")
        self.out = Lines([dataclasses.replace(c, text=_yaml_comment(c.text)) for c in src.comments], src.blank)

    def document(self) -> str:
        groups: dict[str, list] = {}  # YAML key -> [(item, the last line of the item before it)]
        previous_end = 0
        for item in self.src.items:
            groups.setdefault(YAML_KEYS.get(type(item)) or item.name, []).append((item, previous_end))
            previous_end = item.span.end_line
        for key, items in groups.items():
            big = isinstance(items[0][0], (A.ModelDef, A.BlockDef, A.Section))
            if big:
                self.out.gap()
            for n, (item, previous_end) in enumerate(items):
                self.out.floor = self.out.last = previous_end
                if isinstance(item, A.SpecVersion):
                    self.out.line(f"spec: {item.version}", item.span.line)
                    continue
                if isinstance(item, A.Section):
                    self.section_entry(item, "")
                    continue
                if n == 0:
                    self.out.heading(f"{key}:", item.span.line)
                if n and big:
                    self.out.gap()
                if isinstance(item, A.Import):
                    self.out.line(f"- {yaml_string(item.path)}", item.span.line, "  ")
                elif isinstance(item, A.Constant):
                    value = self.literal(item.value, "constant", flow=False)
                    self.out.line(f"{yaml_string(item.name)}: {value}", item.span.line, "  ")
                elif isinstance(item, A.ModelDef):
                    self.model(item)
                else:
                    self.block(item)
        self.out.floor = 0  # the comments after the last item belong to no item
        return self.out.text()

    # -- pieces of text --
    def slice(self, span) -> str:
        line = self.text_lines[span.line - 1]
        return line[span.col - 1: span.end_col - 1] if span.end_line == span.line else line[span.col - 1:]

    def literal(self, e, what: str, flow: bool = True) -> str:
        """A parameter default or constant: a YAML literal where it is one, else `{expr: "2 * base"}`
        (YAML would read a name as a string, and `none` as no value)."""
        try:
            return self._yaml_literal(e, what, flow)
        except SpecError:
            return "{expr: " + yaml_quoted(unparse_expr(e)) + "}"

    def _yaml_literal(self, e, what: str, flow: bool = True) -> str:
        if isinstance(e, A.ListExpr):
            return "[" + ", ".join(self._yaml_literal(x, what) for x in e.items) + "]"
        if isinstance(e, A.Literal) and e.value is not None:
            return self.scalar(e, flow)
        if isinstance(e, A.Unary) and e.op in "+-" and isinstance(e.operand, A.Literal) \
                and isinstance(e.operand.value, (int, float)) and not isinstance(e.operand.value, bool):
            return self.scalar(e, flow)
        none = isinstance(e, A.Literal)  # YAML's null is taken for "no value given"
        raise _unconvertible(e.span, what, "`none` would read back as no value" if none else "not a literal")

    def scalar(self, e, flow: bool) -> str:
        """A setting's value: number, string, true/false/none, name, tensor type, or a list of them."""
        if isinstance(e, A.ListExpr):
            return "[" + ", ".join(self.scalar(x, True) for x in e.items) + "]"
        if isinstance(e, A.Unary) and e.op in "+-" and isinstance(e.operand, A.Literal) \
                and isinstance(e.operand.value, (int, float)) and not isinstance(e.operand.value, bool):
            value = e.operand.value if e.op == "+" else -e.operand.value
            return _yaml_number(self.slice(e.span), value, flow)
        if isinstance(e, A.Literal):
            v = e.value
            if v is None or isinstance(v, bool):
                return {None: "null", True: "true", False: "false"}[v]
            if isinstance(v, str):
                return yaml_quoted(v)
            return _yaml_number(self.slice(e.span), v, flow)
        if isinstance(e, A.Name):
            return yaml_string(e.id, flow)
        if isinstance(e, A.TensorTypeExpr):
            return yaml_string(self.slice(e.span), flow)
        raise _unconvertible(e.span, "setting")

    def params(self, params, span, indent: str) -> None:
        """`params:` as one flow mapping when it fits and holds no comments, else one a line."""
        entries = [(p, f"{yaml_string(p.name, True)}: " +
                    ("null" if p.default is None else self.literal(p.default, "parameter default")))
                   for p in params]
        flow = f"params: {{{', '.join(text for _, text in entries)}}}"
        last = params[-1].span.end_line
        if len(indent + flow) <= WIDTH and not self.out.has_comments(span.line + 1, last):
            self.out.line(flow, span.line, indent)
            return
        self.out.heading("params:", params[0].span.line, indent)
        for i, (p, text) in enumerate(entries):  # a comment after a header line goes with its last parameter
            last_on_line = i + 1 == len(entries) or entries[i + 1][0].span.line > p.span.end_line
            self.out.line(text, p.span.line, indent + "  ", trailing=last_on_line)

    # -- models and blocks --
    def model(self, model: A.ModelDef) -> None:
        span = model.span
        self.out.line(f"{yaml_string(model.name)}:", span.line, "  ")
        if model.params:
            self.params(model.params, span, "    ")
        inputs = [s for s in model.body if isinstance(s, A.Input)]
        outputs = [s for s in model.body if isinstance(s, A.Output)]
        stmts = [s for s in model.body if not isinstance(s, (A.Input, A.Output))]
        if inputs:
            self.out.heading("inputs:", inputs[0].span.line, "    ")
            for s in inputs:
                text = self.slice(s.type.span) if s.type.span.end_line == s.type.span.line else unparse_expr(s.type)
                self.out.line(f"{yaml_string(s.name)}: {yaml_string(text)}", s.span.line, "      ")
        self.body(stmts, "    ")
        if len(outputs) == 1:
            names = ", ".join(yaml_string(n, True) for n in outputs[0].names)
            self.out.line(f"outputs: [{names}]", outputs[0].span.line, "    ")
        elif outputs:
            self.out.heading("outputs:", outputs[0].span.line, "    ")
            for s in outputs:
                for n in s.names:
                    self.out.line(f"- {yaml_string(n)}", s.span.line, "      ")
        self.out.inside(span.end_line + 1, 0, "    ")

    def block(self, block: A.BlockDef) -> None:
        span = block.span
        self.out.line(f"{yaml_string(block.name)}:", span.line, "  ")
        if block.params:
            self.params(block.params, span, "    ")
        self.out.line(f"inputs: [{', '.join(yaml_string(n, True) for n in block.inputs)}]", None, "    ")
        self.body(block.body, "    ")
        self.out.inside(span.end_line + 1, 0, "    ")

    def body(self, stmts, indent: str) -> None:
        if not stmts:
            return
        self.out.heading("body:", stmts[0].span.line, indent)
        for s in stmts:
            self.statement(s, indent + "  ")

    def statement(self, s, indent: str) -> None:
        """One-line statements as YAML strings; longer ones as `|-` blocks of their formatted lines."""
        first, last, col = s.span.line, s.span.end_line, s.span.col
        if first == last:
            self.out.line(f"- {yaml_string(self.slice(s.span))}", first, indent)
            return
        self.out.line("- |-", first, indent, trailing=False)
        self.out.consume(first, last)  # comments inside the statement are copied with its lines
        for n in range(first, last + 1):
            line = self.text_lines[n - 1]
            self.out.raw(indent + "  " + line[col - 1:] if line.strip() else "")

    # -- config sections --
    def section_entry(self, section: A.Section, indent: str, lead: str | None = None) -> None:
        """`name: {flow}` for a section written on one line, else `name:` with its entries below."""
        lead = indent if lead is None else lead
        key = f"{yaml_string(section.name)}:"
        if _one_line(section):
            self.out.line(f"{key} {self.flow_section(section)}", section.span.line, lead)
        else:
            self.out.line(key, section.span.line, lead)
            self.section_block(section, indent + "  ")

    def list_item(self, section: A.Section, indent: str) -> None:
        """One of several sections of the same name: `- {flow}`, or a block mapping after `- `."""
        if _one_line(section):
            self.out.line(f"- {self.flow_section(section)}", section.span.line, indent)
        else:
            self.section_block(section, indent + "  ", lead=indent + "- ")

    def section_block(self, section: A.Section, indent: str, lead: str | None = None) -> None:
        lead = indent if lead is None else lead
        if section.kind:
            self.out.line(f"kind: {yaml_string(section.kind)}", section.span.line, lead)
            lead = indent
        for name, group in _grouped(section.entries):
            first = group[0]
            if isinstance(first, A.Setting):
                self.out.line(f"{yaml_string(name)}: {self.scalar(first.value, False)}", first.span.line, lead)
            elif len(group) == 1:
                self.section_entry(first, indent, lead)
            else:
                self.out.heading(f"{yaml_string(name)}:", first.span.line, lead)
                for item in group:
                    self.list_item(item, indent + "  ")
            lead = indent
        self.out.inside(section.span.end_line + 1, 0, indent)

    def flow_section(self, section: A.Section) -> str:
        parts = [f"kind: {yaml_string(section.kind, True)}"] if section.kind else []
        for name, group in _grouped(section.entries):
            key = yaml_string(name, True)
            if isinstance(group[0], A.Setting):
                parts.append(f"{key}: {self.scalar(group[0].value, True)}")
            elif len(group) == 1:
                parts.append(f"{key}: {self.flow_section(group[0])}")
            else:
                parts.append(f"{key}: [{', '.join(self.flow_section(e) for e in group)}]")
        return "{" + ", ".join(parts) + "}"


def _one_line(section: A.Section) -> bool:
    return section.span.end_line == section.span.line or not (section.kind or section.entries)


def _grouped(entries) -> list[tuple[str, list]]:
    """Section entries by name, in first-seen order: a name given several sections is a list of them."""
    groups: dict[str, list] = {}
    for entry in entries:
        groups.setdefault(entry.name, []).append(entry)
    return list(groups.items())


# ---- YAML -> .dlspec ----------------------------------------------------------------------
def yaml_comments(text: str) -> list[Comment]:
    """The comments of a YAML text: `#` outside scalars, at a line start or after a blank (a block
    scalar's text starts on the line after its `|-` header, which may end with a comment)."""
    def start(t) -> int:
        return (text.find("\n", t.start_mark.index) + 1 or len(text)) if t.style in ("|", ">") else t.start_mark.index

    scalars = sorted((start(t), t.end_mark.index)
                     for t in yaml.scan(text, Loader=Loader) if isinstance(t, yaml.ScalarToken))
    starts = [s for s, _ in scalars]
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    out, i = [], text.find("#")
    while i != -1:
        k = bisect.bisect_right(starts, i) - 1
        inside = k >= 0 and scalars[k][0] <= i < scalars[k][1]
        if inside or (i and text[i - 1] not in " \t\n"):
            i = text.find("#", i + 1)
            continue
        end = text.find("\n", i)
        end = len(text) if end == -1 else end
        row = bisect.bisect_right(line_starts, i)
        col = i - line_starts[row - 1] + 1
        out.append(Comment(row, col, text[i:end].rstrip()))
        i = text.find("#", end)
    return out


def to_dlspec(text: str, file: str = "<text>") -> str:
    """The .dlspec form of a YAML spec (which should have loaded without errors), formatted."""
    root = yaml.compose(text, Loader=Loader)
    blank = {i + 1 for i, line in enumerate(text.split("\n")) if not line.strip()}
    writer = _DlspecWriter(Lines(yaml_comments(text), blank), file)
    if isinstance(root, yaml.MappingNode):
        writer.document(root)
    rough = writer.out.text()
    try:
        return format_text(rough, file)
    except Failed as failed:  # a bug in this converter, not in the spec
        raise RuntimeError(f"converted text does not parse ({failed.diagnostic.message}):\n{rough}") from None


def _line(node) -> int:
    return node.start_mark.line + 1


class _DlspecWriter:
    def __init__(self, out: Lines, file: str):
        self.out, self.file = out, file

    def document(self, root: yaml.MappingNode) -> None:
        for key, value in root.value:
            name = key.value
            if name == "spec":
                self.out.line(f"spec {_value(value)}", _line(key))  # `0x1` is 1: the loader took it
            elif name == "imports":
                for item in value.value:
                    self.out.line(f"import {literal(item.value)}", _line(item))
            elif name == "constants":
                for k, v in value.value:
                    self.out.line(f"{self.name(k, TOP_LEVEL_KEYWORDS)} = {self.literal(v)}", _line(k))
            elif name in ("models", "blocks"):
                for k, v in value.value:
                    self.definition(name[:-1], k, v)
            else:
                self.entry(key, value, "")

    # -- names and values --
    def span(self, node) -> SourceSpan:
        start, end = node.start_mark, node.end_mark
        return SourceSpan(self.file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)

    def name(self, node, keywords=()) -> str:
        """A YAML key (or list item) that the .dlspec form writes as a name; `keywords`: the words that
        begin something else where it stands (a constant named `model` would begin a model)."""
        if not NAME.fullmatch(node.value) or node.value in keywords:
            raise SpecError([Diagnostic("E0202", f"the .dlspec form cannot hold the name `{node.value}`",
                                        self.span(node), label="a keyword here" if NAME.fullmatch(node.value)
                                        else "not a name", help="a .dlspec name is letters, digits and `_`, not "
                                        "starting with a digit, and not a keyword: rename it, or keep this spec in YAML")])
        return node.value

    def literal(self, node) -> str:
        """A parameter default or constant: YAML values are literals (a string stays a string), and
        `{expr: TEXT}` is the dlspec expression TEXT."""
        if isinstance(node, yaml.MappingNode) and [k.value for k, _ in node.value] == ["expr"]:
            return node.value[0][1].value
        if isinstance(node, yaml.SequenceNode):
            return "[" + ", ".join(self.literal(x) for x in node.value) + "]"
        if node.tag in (INT, FLOAT):
            return self.number(node)
        return literal(_value(node))

    def number(self, node) -> str:
        """A YAML number as written, where dlspec reads that spelling as the same number."""
        value = _value(node)
        text = node.value
        if NUMBER.fullmatch(text) and any(c in text for c in ".eE") == isinstance(value, float):
            digits = text.replace("_", "")
            if (float(digits) if isinstance(value, float) else int(digits)) == value:
                return text
        return repr(value)

    def setting(self, node) -> str:
        """A setting's value: a plain (or single-quoted) name or tensor type is written bare, other strings quoted."""
        if isinstance(node, yaml.SequenceNode):
            return "[" + ", ".join(self.setting(x) for x in node.value) + "]"
        if isinstance(node, yaml.MappingNode):
            raise SpecError([Diagnostic("E0202", "the .dlspec form has no list that mixes sections and values",
                                        self.span(node), label="a mapping in a list of values")])
        if node.tag in (INT, FLOAT):
            return self.number(node)
        value = _value(node)
        if isinstance(value, str) and node.style in (None, "'"):
            if NAME.fullmatch(value) and value not in keywords():
                return value
            if TENSOR_TYPE.fullmatch(value) and _is_tensor_type(value):
                return value
        return literal(value)

    # -- models and blocks --
    def definition(self, kind: str, key, node: yaml.MappingNode) -> None:
        fields = {k.value: v for k, v in node.value}
        params = fields.get("params")
        params = params.value if isinstance(params, yaml.MappingNode) else []
        head, line = f"{kind} {self.name(key)}", _line(key)
        if kind == "block" or params:  # one parameter a line, each with its comments; fmt fills the lines
            self.out.line(head + "(", line)
            for k, v in params:
                default = "" if v.tag == NULL else f" = {self.literal(v)}"
                self.out.line(f"{self.name(k)}{default},", _line(k), "    ")
            head = ")"
        if kind == "block":
            head += f" ({', '.join(self.name(x) for x in fields['inputs'].value)})"
        self.out.line(head + " {", line)
        if kind == "model":
            for k, v in fields["inputs"].value:
                self.out.line(f"input {self.name(k)}: {v.value}", _line(k), "  ")
        for item in getattr(fields.get("body"), "value", []):
            self.statement(item)
        if kind == "model":
            outputs = fields["outputs"]
            names = [self.name(x) for x in (outputs.value if isinstance(outputs, yaml.SequenceNode) else [outputs])]
            self.out.line("output " + ", ".join(names), _line(outputs), "  ")
        self.out.inside(node.end_mark.line + 1, key.start_mark.column + 1, "  ")
        self.out.line("}")

    def statement(self, node) -> None:
        lines = str(node.value).split("\n")
        self.out.line(lines[0], _line(node), "  ")
        for line in lines[1:]:
            self.out.raw("  " + line if line else "")
        # a block scalar's end mark is where the next line starts (after any blank lines): count its lines
        end = _line(node) + len(lines) if node.style in ("|", ">") else node.end_mark.line + 1
        self.out.last = max(self.out.last, end)

    # -- config sections --
    def entry(self, key, node, indent: str) -> None:
        if isinstance(node, yaml.MappingNode):
            self.section(key, node, indent)
        elif isinstance(node, yaml.SequenceNode) and node.value and \
                all(isinstance(x, yaml.MappingNode) for x in node.value):
            for item in node.value:
                self.section(key, item, indent, _line(item))
        else:
            self.out.line(f"{self.name(key)} = {self.setting(node)}", _line(key), indent)

    def section(self, key, node: yaml.MappingNode, indent: str, line: int | None = None) -> None:
        """A flow mapping is a one-line section, a block mapping one entry a line."""
        head, line = self.section_head(key, node), line or _line(key)
        if node.flow_style or not node.value:
            self.out.line(f"{head} {{{self.flow_entries(node)}}}", line, indent)
            return
        self.out.line(head + " {", line, indent)
        for k, v in node.value:
            if not self._is_kind(k, v):
                self.entry(k, v, indent + "  ")
        self.out.inside(node.end_mark.line + 1, key.start_mark.column + 1, indent + "  ")
        self.out.line("}", None, indent)

    def section_head(self, key, node) -> str:
        kind = next((v.value for k, v in node.value if self._is_kind(k, v)), None)
        return self.name(key) + (f" {kind}" if kind else "")

    @staticmethod
    def _is_kind(k, v) -> bool:
        return k.value == "kind" and isinstance(v, yaml.ScalarNode) and v.style in (None, "'") \
            and bool(NAME.fullmatch(v.value)) and v.value not in keywords()

    def flow_entries(self, node) -> str:
        parts = []
        for k, v in node.value:
            if self._is_kind(k, v):
                continue
            if isinstance(v, yaml.MappingNode):
                parts.append(f"{self.section_head(k, v)} {{{self.flow_entries(v)}}}")
            elif isinstance(v, yaml.SequenceNode) and v.value and all(isinstance(x, yaml.MappingNode) for x in v.value):
                parts += [f"{self.section_head(k, x)} {{{self.flow_entries(x)}}}" for x in v.value]
            else:
                parts.append(f"{self.name(k)} = {self.setting(v)}")
        return f" {', '.join(parts)} " if parts else ""


def _is_tensor_type(text: str) -> bool:
    try:
        e = to_ast(parse(text, "<value>", start="expr_line"), "<value>")
    except Failed:
        return False
    return isinstance(e, A.TensorTypeExpr) and e.dtype is not None and unparse_expr(e) == text


# ---- the command -------------------------------------------------------------------------
def convert_text(text: str, file: str, to: str, out_dir: str | None = None) -> str:
    """`text` (of `file`) in the `to` form; `out_dir`: where it will be written, which its relative
    imports are rewritten for (they are relative to the importing file's folder)."""
    if is_yaml(file):
        text = to_dlspec(text, file)
    if out_dir is not None:
        text = _imports_from(text, file, out_dir)
    return to_yaml(text, file) if to == "yaml" else format_text(text, file)


def _imports_from(text: str, file: str, out_dir: str) -> str:
    """The .dlspec text with its relative imports made relative to `out_dir` instead of file's folder."""
    src = Source(text, file)
    here = os.path.dirname(os.path.realpath(file))  # as the loader resolves imports: from the real file

    def moved(path: str) -> str:
        if os.path.isabs(path):
            return path
        return os.path.relpath(os.path.join(here, path), os.path.realpath(out_dir)).replace(os.sep, "/")
    src.items = [dataclasses.replace(item, path=moved(item.path)) if isinstance(item, A.Import) else item
                 for item in src.items]
    return format_source(src)


def cmd_convert(args) -> int:
    from ..frontend.load import load_text, read_source

    if not os.path.isfile(args.spec):
        raise UsageError(f"{args.spec} is a folder, not a spec file" if os.path.isdir(args.spec)
                         else f"no such file: {args.spec}")
    try:
        text = read_source(args.spec)
    except Failed as failed:
        raise SpecError([failed.diagnostic]) from None
    load_text(text, args.spec)  # a spec with errors is reported, not converted
    out = convert_text(text, args.spec, args.to, os.path.dirname(os.path.abspath(args.out)) if args.out else None)
    if args.out and os.path.exists(args.out) and os.path.samefile(args.out, args.spec):
        raise UsageError(f"-o {args.out} is the spec being converted; write the {args.to} form to another file")
    if args.out:
        write_text_atomic(args.out, out)
    else:
        sys.stdout.write(out)
    return 0
