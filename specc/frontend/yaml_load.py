"""YAML -> plain document + source map, through PyYAML's safe loader, keeping positions.

The YAML form is the same document as .dlspec: statements, types and expressions are
strings in dlspec syntax, parsed here with the same grammar so errors point into the YAML.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re

import yaml

from . import ast as A
from .parse import parse
from .transform import to_ast
from .unparse import literal
from ..errors import Diagnostic, Failed
from ..ir.evaluate import MAX_INT
from ..schema.values import REFUSED
from ..source import YAML_LINE_BREAKS, SourceSpan

MAX_EXPANDED = 1_000_000  # nodes and characters after alias expansion: more is an alias bomb


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-3` and `2E5` as floats (YAML 1.2 does; PyYAML's YAML 1.1 rules
    want a dot and a signed exponent, so `lr: 3e-4` would be a string)."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


# the tags a mapping or a sequence may have: the ones it gets untagged (`!!set`, `!!omap` and the like are refused)
COLLECTION_TAGS = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}
# ... and those a scalar may have (`!!omap 100` is no scalar; `!!binary` is refused once read)
SCALAR_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "binary")}


def _span(file: str, node) -> SourceSpan:
    s, e = node.start_mark, node.end_mark
    return SourceSpan(file, s.line + 1, s.column + 1, e.line + 1, e.column + 1)


def _expanded_size(node, memo: dict) -> int:
    """Nodes and scalar characters with aliases expanded (a shared node counts every time it is
    used): an alias of a long statement makes the loader parse that statement again each time."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # guards against recursive aliases
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo) for v in node.value)
    else:
        size = 1 + len(node.value)
    memo[key] = min(size, MAX_EXPANDED + 1)
    return memo[key]


class YamlDocument:
    def __init__(self, file: str):
        self.file = file
        self.source_map: dict[tuple, SourceSpan] = {}
        self.diagnostics: list[Diagnostic] = []
        self._scalars = Loader("")
        # `|` and `>` scalars and plain ones over several lines, by path: parsed from the file's own lines
        self._block_scalars: dict[tuple, yaml.ScalarNode] = {}

    def load(self, text: str):
        root = self._compose(text)
        if root is None:
            return {}
        if _expanded_size(root, {}) > MAX_EXPANDED:
            raise Failed(Diagnostic("E0205", f"YAML aliases expand to more than {MAX_EXPANDED:,} nodes and characters",
                                    _span(self.file, root), label="refused before expanding",
                                    help="this looks like an alias bomb; write the document out without aliases"))
        try:
            plain = self._plain(root, ())
        except RecursionError:
            raise self._too_deep(_deepest(root).start_mark) from None
        if not isinstance(plain, dict):
            raise Failed(Diagnostic("E0202", "a spec document must be a mapping", _span(self.file, root)))
        self._parse_dlspec_strings(plain)
        return plain

    def _compose(self, text: str):
        try:
            loader = Loader(text)  # the reader refuses characters YAML does not allow already here
            try:
                return loader.get_single_node()
            finally:
                loader.dispose()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            span = SourceSpan.point(self.file, mark.line + 1, mark.column + 1) if mark else None
            raise Failed(Diagnostic("E0204", f"invalid YAML: {err.problem or err.context}", span,
                                    label="here")) from None
        except yaml.reader.ReaderError as err:  # a character YAML refuses: PyYAML gives its offset, not its line
            before = YAML_LINE_BREAKS.split(text[:err.position])
            raise Failed(Diagnostic("E0204", f"invalid YAML: the character #x{err.character:04x} is not allowed in YAML",
                                    SourceSpan.point(self.file, len(before), len(before[-1]) + 1), label="here")) from None
        except yaml.YAMLError as err:
            raise Failed(Diagnostic("E0204", f"invalid YAML: {err}", SourceSpan.point(self.file, 1, 1))) from None
        except RecursionError:
            event = loader.current_event  # what the composer was looking at when it gave up
            raise self._too_deep(event.start_mark if event is not None else loader.get_mark()) from None

    def _too_deep(self, mark) -> Failed:
        return Failed(Diagnostic("E0204", "invalid YAML: nested too deeply to read",
                                 SourceSpan.point(self.file, mark.line + 1, mark.column + 1), label="too deep"))

    def _plain(self, node, path: tuple):
        self.source_map.setdefault(path, _span(self.file, node))
        if type(node) in COLLECTION_TAGS and node.tag != COLLECTION_TAGS[type(node)]:
            self._error("E0202", f"unsupported YAML tag {_tag(node)}", node)  # its content is still read and checked
        if isinstance(node, yaml.MappingNode):
            out = {}
            for key_node, value_node in node.value:
                key = self._plain(key_node, path + ("<key>",))
                if not isinstance(key, (str, int)):
                    self._error("E0202", "mapping keys must be strings", key_node)
                    continue
                if key in out:
                    self._error("E0207", f"`{key}` is set twice", key_node)
                    continue
                self.source_map[path + (key,)] = _span(self.file, key_node).cover(_span(self.file, value_node))
                out[key] = self._plain(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._plain(v, path + (i,)) for i, v in enumerate(node.value)]
        if node.style in ("|", ">") or (node.style is None and node.end_mark.line > node.start_mark.line):
            self._block_scalars[path] = node
        constructor = Loader.yaml_constructors.get(node.tag) if node.tag in SCALAR_TAGS else None
        if constructor is None:
            self._error("E0202", f"unsupported YAML tag {_tag(node)}", node)
            return REFUSED
        try:
            value = constructor(self._scalars, node)
        except Exception as err:  # noqa: BLE001 - a tag's constructor refuses values in its own ways
            if "integer string conversion" not in str(err):  # `!!int x`, `!!bool maybe`, `!!float`, `!!binary x`
                self._error("E0202", f"{literal(str(node.value))} is not a valid {_tag(node)}", node)
                return REFUSED
            value = MAX_INT + 1  # an integer of thousands of digits: Python refuses to convert it
        if isinstance(value, bytes):
            self._error("E0202", f"unsupported YAML tag {_tag(node)}", node)
            return REFUSED
        if isinstance(value, int) and abs(value) > MAX_INT:
            self._error("E0602", "this integer is too large: specc's integers fit in 64 bits (at most 2**63 - 1)", node)
            return REFUSED
        if isinstance(value, float) and math.isinf(value):
            self._error("E0602", "numbers must be finite", node)
            return REFUSED
        if not isinstance(value, (str, int, float, bool, type(None))):
            value = str(value)  # timestamps and the like: keep the text
        return value

    def _error(self, code: str, message: str, node) -> None:
        self.diagnostics.append(Diagnostic(code, message, _span(self.file, node)))

    # ---- dlspec syntax inside strings ----
    def _parse_dlspec_strings(self, doc: dict) -> None:
        for section in ("models", "blocks"):
            defs = doc.get(section)
            if not isinstance(defs, dict):
                continue
            for name, d in defs.items():
                if not isinstance(d, dict):
                    continue
                base = (section, name)
                self.source_map[base + ("span",)] = self.source_map.get(base)
                if isinstance(d.get("body"), list):
                    d["body"] = [self._parse(s, base + ("body", i), "line") for i, s in enumerate(d["body"])]
                if section == "models" and isinstance(d.get("inputs"), dict):
                    d["inputs"] = {k: self._parse(v, base + ("inputs", k), "type_line") for k, v in d["inputs"].items()}
                if isinstance(d.get("params"), dict):
                    d["params"] = {k: self._value(v, base + ("params", k)) for k, v in d["params"].items()}
        if isinstance(doc.get("constants"), dict):
            doc["constants"] = {k: self._constant(v, ("constants", k)) for k, v in doc["constants"].items()}

    def _value(self, value, path: tuple):
        """A parameter default or constant: a YAML scalar/list, `{expr: TEXT}` for a dlspec expression, or
        `null` for a required parameter."""
        if value is None:
            return None
        if isinstance(value, dict) and list(value) == ["expr"] and isinstance(value["expr"], str):
            return self._parse(value["expr"], path + ("expr",), "expr_line")  # `{expr: "2 * base"}`
        span = self.source_map[path]
        if _holds_mapping(value):
            self.diagnostics.append(Diagnostic("E0202", "a constant or parameter default is a number, string, "
                                               "boolean or list, or {expr: TEXT} for a dlspec expression", span,
                                               label="a mapping", help='e.g. {expr: "2 * base"}'))
            return REFUSED
        return _literal_ast(value, span)

    def _constant(self, value, path: tuple):
        """A constant: YAML's null is the constant `none` (`c = none` in dlspec)."""
        return A.Literal(None, self.source_map[path]) if value is None else self._value(value, path)

    def _parse(self, text, path: tuple, start: str):
        if not isinstance(text, str):
            return text  # the schema reports the wrong type
        node_span = self.source_map[path]
        offset = node_span.line - 1
        node = self._block_scalars.get(path)
        folded = node is not None and node.style != "|"
        move = None  # where escapes in a quoted scalar shift the columns: moves a span onto the file
        if node is not None and node.style is None:  # plain, over several lines: the file's text as it stands
            offset = node.start_mark.line
            text = " " * node.start_mark.column + _source_text(self.file)[node.start_mark.index:node.end_mark.index]
        elif node is not None:  # `|` or `>`: the text starts below the header, indented
            offset = node.start_mark.line + 1
            end = node.end_mark.line + (node.end_mark.column > 0)  # the end mark is just past the last line
            text = _reindent(text, self.file, offset) if node.style == "|" else \
                "\n".join(_source_line(self.file, line + 1) for line in range(offset, end))
        else:
            # Keep columns exact for one-line scalars (plain or quoted); the line is always right.
            raw = _source_line(self.file, node_span.line)
            columns = _quoted_columns(raw, node_span.col - 1, text)
            col = columns[0] if columns else raw.find(text.split("\n", 1)[0], node_span.col - 1) if raw else -1
            text = (" " * col if col >= 0 else "") + text
            if columns and columns[-1] - columns[0] != len(text) - col:
                move = functools.partial(_column_moved, columns=columns, pad=col, where=(self.file, node_span.line))
        try:
            tree = parse(text, self.file, start=start, line_offset=offset, folded=folded)
            return _moved(to_ast(tree, self.file, offset), move)
        except Failed as failed:
            self.diagnostics.append(_moved(failed.diagnostic, move))
            return REFUSED


def _quoted_columns(raw: str, start: int, value: str) -> list[int] | None:
    """For a one-line quoted scalar whose quote is at raw[start]: the file column (0-based) of each
    character of its value, then of the closing quote. None if it is not such a scalar."""
    quote = raw[start:start + 1]
    if quote not in ('"', "'") or "\n" in value:
        return None
    columns, i = [], start + 1
    while i < len(raw) and len(columns) <= len(value):
        if raw[i] == quote and not (quote == "'" and raw[i + 1:i + 2] == "'"):
            break
        columns.append(i)
        # an escape is one character of the value: \" \\ \t (2 file columns), \xNN, \uNNNN, \UNNNNNNNN; ''
        i += 2 if quote == "'" and raw[i] == "'" else \
            {"x": 4, "u": 6, "U": 10}.get(raw[i + 1:i + 2], 2) if quote == '"' and raw[i] == "\\" else 1
    return columns + [i] if len(columns) == len(value) and i < len(raw) else None


def _column_moved(span: SourceSpan, columns: list[int], pad: int, where: tuple[str, int]) -> SourceSpan:
    """A span of the unescaped text (its value starting at column pad + 1) moved onto the file's columns;
    a span elsewhere (another file or line, as a note may have) is left as it is."""
    if (span.file, span.line) != where:
        return span

    def moved(col: int) -> int:
        k = col - 1 - pad
        return columns[k] + 1 if 0 <= k < len(columns) else col
    return span._replace(col=moved(span.col), end_col=moved(span.end_col))


def _moved(obj, move):
    """`obj` (a syntax tree, or a diagnostic) with every SourceSpan in it passed through `move`."""
    if move is None:
        return obj
    if isinstance(obj, SourceSpan):
        return move(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_moved(x, move) for x in obj)
    if isinstance(obj, dict):
        return {k: _moved(v, move) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _moved(getattr(obj, f.name), move)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


def _source_text(file: str) -> str:
    from ..source import source_text
    return source_text(file) or ""


def _source_line(file: str, line: int) -> str:
    from ..source import source_line
    return source_line(file, line) or ""


def _reindent(text: str, file: str, offset: int) -> str:
    """A literal block scalar's text, indented as in the file (its lines are the file's lines from `offset`)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        raw = _source_line(file, offset + i + 1)
        if line.strip() and raw.endswith(line):
            indent = " " * (len(raw) - len(line))
            return "\n".join(indent + x if x else x for x in lines)
    return text


def _deepest(root):
    """The most deeply nested node, found with a loop (recursing is what failed); a shared node counts once."""
    deepest, most, seen = root, -1, set()
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if depth > most:
            deepest, most = node, depth
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _tag(node) -> str:
    """A node's tag as written: `!!bool` for YAML's own, `!custom` for others."""
    return node.tag.replace("tag:yaml.org,2002:", "!!")


def _holds_mapping(value) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and any(_holds_mapping(v) for v in value))


def _literal_ast(value, span: SourceSpan):
    if isinstance(value, list):
        return A.ListExpr(tuple(_literal_ast(v, span) for v in value), span)
    return A.Literal(value, span)


def load_yaml(text: str, file: str):
    loader = YamlDocument(file)
    doc = loader.load(text)
    # in the file's order: statements and types are parsed after the whole document is read
    diagnostics = sorted(loader.diagnostics, key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
    return doc, loader.source_map, diagnostics
