"""Text -> Lark parse. The grammar lives in grammar/dlspec.lark (shipped in the wheel).

Syntax errors become Diagnostics that say what was expected in words a user knows, with
tailored messages for the common slips (an unclosed bracket, a trailing comma, `=` vs `:`).
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import replace
import re
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import Diagnostic, Failed
from ..source import SourceSpan

MAX_NESTING = 100

OPENERS = {"LPAR": "(", "LSQB": "[", "LBRACE": "{"}
CLOSERS = {"RPAR": "LPAR", "RSQB": "LSQB", "RBRACE": "LBRACE"}
# a newline right after these continues the statement ...
CONTINUE_AFTER = {"LBRACE", "LPAR", "LSQB", "COMMA", "EQUAL", "COLON", "PIPE", "COMPARE", "ADD_OP",
                  "MUL_OP", "AND", "OR", "NOT", "ELSE", "DOT", "AS"}
# blanks and comments, matched one way only (so a failed match backtracks in linear time)
_BLANKS = r"(?:[ \t\f\r\n]|#[^\n]*(?![^\n]))*"
# ... and so does a newline before a line that starts with one of these
CONTINUES_NEXT_LINE = re.compile(_BLANKS + r"(?:\|>|[})\]]|else\b)")
ONLY_BLANKS_LEFT = re.compile(_BLANKS + r"\Z")  # a newline before the end (or a last comment) ends nothing

WORDS = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "PIPE": "`|>`", "COMPARE": "a comparison", "ADD_OP": "`+` or `-`", "MUL_OP": "`*`, `/`, `//` or `%`",
    "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`", "LBRACE": "`{`", "RBRACE": "`}`",
    "COMMA": "`,`", "EQUAL": "`=`", "COLON": "`:`", "DOT": "`.`", "_NL": "a new line", "$END": "the end of the file",
}


def grammar_path() -> Path:
    packaged = Path(__file__).resolve().parent.parent / "_grammar" / "dlspec.lark"
    return packaged if packaged.exists() else Path(__file__).resolve().parents[2] / "grammar" / "dlspec.lark"


class Newlines:
    """Post-lexer: keep a newline only where it ends a statement; limit bracket nesting."""

    always_accept = ("_NL",)

    def __init__(self, file: str, text: str, folded: bool = False):
        self.file, self.text = file, text
        self.folded = folded  # the text is one statement over several lines (a folded YAML scalar)
        self.open: list[Token] = []  # the unclosed brackets, for "missing `)`" messages
        # line -> the token that ended the line before, where a line continues the one before
        # because that one ended in an operator, `,` or an open bracket (for "unfinished" messages)
        self.continued: dict[int, Token] = {}
        self.joined_after: Token | None = None  # a newline was just dropped after this token

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def process(self, stream):
        # No token is held back: Lark's contextual lexer needs the parser to have seen each
        # token before the next is lexed, so the next line is peeked at in the raw text.
        self.open, self.continued, self.joined_after = [], {}, None
        prev: Token | None = None
        for tok in stream:
            kind = tok.type
            if kind == "_NL":
                if self.folded:
                    continue
                if prev is not None and prev.type != "_NL" and (
                        prev.type in CONTINUE_AFTER or (self.open and self.open[-1].type != "LBRACE")):
                    self.joined_after = prev
                    continue
                if (prev is None or prev.type == "_NL" or CONTINUES_NEXT_LINE.match(self.text, tok.end_pos)
                        or ONLY_BLANKS_LEFT.match(self.text, tok.end_pos)):
                    continue
            elif self.joined_after is not None:
                self.continued[tok.line] = self.joined_after
            self.joined_after = None
            if kind in OPENERS:
                self.open.append(tok)
                if len(self.open) > MAX_NESTING:
                    raise Failed(Diagnostic(
                        "E0107", f"brackets nested more than {MAX_NESTING} deep",
                        SourceSpan.point(self.file, tok.line, tok.column), label="too deep",
                        help="split the expression into named steps"))
            elif kind in CLOSERS and self.open and self.open[-1].type == CLOSERS[kind]:
                self.open.pop()
            prev = tok
            yield tok


def lark_options(cache) -> dict:
    return dict(parser="lalr", lexer="contextual", strict=True, propagate_positions=True,
                maybe_placeholders=True, start=["start", "line", "type_line", "expr_line"],
                postlex=_PostlexSlot(), cache=cache)


def _cache_file() -> str | bool:
    """Lark keeps the analysed grammar in a file keyed by the grammar's hash (a cold start then
    skips the LALR analysis and strict-mode checks); fall back to no cache where we can't write."""
    import os
    import tempfile

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "specc")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        folder = tempfile.gettempdir()
    return os.path.join(folder, f"dlspec-{lark_version()}.lark-cache") if os.access(folder, os.W_OK) else False


def lark_version() -> str:
    import lark
    return lark.__version__


def _grammar_cache(grammar: str, variant: str = "") -> str | bool:
    """The cache file for this grammar text; `variant` tells apart parsers built with other options."""
    cache = _cache_file()
    if not cache:
        return cache
    digest = hashlib.sha256(grammar.encode()).hexdigest()[:12]
    return cache.replace(".lark-cache", f"-{variant}{digest}.lark-cache")


@functools.lru_cache(maxsize=None)
def _lark() -> Lark:
    grammar = grammar_path().read_text()
    return Lark(grammar, **lark_options(_grammar_cache(grammar)))


@functools.lru_cache(maxsize=None)
def _comment_lark() -> tuple[Lark, list[Token]]:
    """A second parser from the same grammar, whose lexer appends every COMMENT (which the grammar
    %ignores) to the list returned with it."""
    grammar = grammar_path().read_text()
    comments: list[Token] = []
    options = {**lark_options(_grammar_cache(grammar, "comments-")), "lexer_callbacks": {"COMMENT": comments.append}}
    return Lark(grammar, **options), comments


@functools.lru_cache(maxsize=None)
def keywords() -> frozenset[str]:
    """The words the grammar reserves (`model`, `if`, `true`, ...): its literal terminals that look like names."""
    return frozenset(t.pattern.value for t in _lark().terminals
                     if t.pattern.type == "str" and re.fullmatch(r"[A-Za-z_]\w*", t.pattern.value))


class _PostlexSlot:
    """Lark wants a postlexer at construction; the real one (which knows the file) is swapped in per parse."""

    always_accept = Newlines.always_accept
    current: Newlines | None = None

    def process(self, stream):
        return self.current.process(stream)


def parse(text: str, file: str, start: str = "start", line_offset: int = 0, folded: bool = False):
    """Parse `text` (whose first line is line `line_offset + 1` of `file`); raises Failed on a syntax error.
    `folded`: every line break is a space, as YAML reads a plain or `>` scalar over several lines."""
    lark = _lark()
    postlex = Newlines(file, text, folded)
    lark.options.postlex.current = postlex
    try:
        return lark.parse(text, start=start)
    except UnexpectedInput as err:
        diag = syntax_diagnostic(err, text, file, postlex)
        if line_offset and diag.span is not None:
            s = diag.span
            diag = replace(diag, span=SourceSpan(s.file, s.line + line_offset, s.col, s.end_line + line_offset, s.end_col))
        raise Failed(diag) from None


def parse_with_comments(text: str, file: str) -> tuple[Tree, list[Token]]:
    """A whole file's parse tree and its comment tokens (for `specc fmt`); raises Failed as `parse` does."""
    lark, comments = _comment_lark()
    comments.clear()
    lark.options.postlex.current = Newlines(file, text)
    try:
        return lark.parse(text, start="start"), list(comments)
    except UnexpectedInput:
        parse(text, file)  # raises Failed with the located diagnostic `specc check` gives
        raise


# A line that starts a top-level item at column 1 (`model M`, `block B`, `import "..."`, `spec 1`,
# or the `train` and `export` sections): after a syntax error, parsing resumes at the next one.
ITEM_START = re.compile(r'(?:model|block)[ \t]+[A-Za-z_]|import[ \t]*"|spec[ \t]+\d'
                        r'|(?:train|export)\b(?:[ \t]+[A-Za-z_]\w*)?[ \t]*\{')


def later_syntax_errors(text: str, file: str, first: Diagnostic, limit: int = 20) -> list[Diagnostic]:
    """The syntax errors after `first`, at most one per top-level item, as a compiler that
    resynchronises at the next declaration reports them. The lines before the resume point are
    blanked rather than cut, so positions stay those of the file."""
    lines = text.split("\n")
    found: list[Diagnostic] = []
    after = first.span.line if first.span is not None else len(lines)
    while len(found) < limit:
        resume = next((i for i in range(after, len(lines)) if ITEM_START.match(lines[i])), None)
        if resume is None:  # lines[i] is line i + 1, so every candidate lies after `after`
            return found
        try:
            parse("\n" * resume + "\n".join(lines[resume:]), file)
            return found
        except Failed as failed:
            diagnostic = failed.diagnostic
            if diagnostic.span is None or diagnostic.span.line <= resume:
                return found
            found.append(diagnostic)
            after = diagnostic.span.line
    return found


def _span_of(tok: Token, file: str) -> SourceSpan:
    width = max(1, len(tok.value)) if tok.type not in ("_NL", "$END") else 1
    return SourceSpan(file, tok.line, tok.column, tok.line, tok.column + width)


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the file"
    if tok.type == "_NL":
        return "the end of the line"
    if tok.type in ("NAME", "INT", "FLOAT", "STRING"):
        return f"{WORDS[tok.type].split(' ', 1)[1]} `{tok.value}`"
    return f"`{tok.value}`"


# the tokens that may start an expression: when all of them would do, the message says "an expression"
EXPRESSION_START = {"NAME", "INT", "FLOAT", "STRING", "LPAR", "LSQB"}


def _expected_words(expected, prev: Token | None = None) -> str:
    names = {e for e in expected if not e.startswith("__")}
    if prev is not None and prev.type in CONTINUE_AFTER:
        names.discard("_NL")  # the post-lexer drops a newline here, so it is never really expected
    words = set()
    if EXPRESSION_START <= names:
        names -= EXPRESSION_START | {"ADD_OP", "NOT"}
        words.add("an expression")
    words = sorted(words | {WORDS.get(e, f"`{e.lower()}`") for e in names})
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def syntax_diagnostic(err: UnexpectedInput, text: str, file: str, postlex: Newlines) -> Diagnostic:
    if isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        span = SourceSpan.point(file, err.line, err.column)
        if char == '"':
            return Diagnostic("E0106", "unterminated string", span, label="this string is not closed",
                              help='close it with `"` on the same line')
        return Diagnostic("E0105", f"unexpected character `{char}`", span, label="not part of the language")
    tok = err.token if isinstance(err, UnexpectedToken) else None
    expected = set(getattr(err, "expected", ()) or ())
    if isinstance(err, UnexpectedEOF) or (tok is not None and tok.type == "$END"):
        tok = Token("$END", "", 0, *_end_position(text))
    span = _span_of(tok, file)
    prev = _previous_token(err)
    slip = _slip(tok, expected, prev, postlex, file)
    if slip is not None:
        return slip
    return Diagnostic("E0101", f"expected {_expected_words(expected, prev)}, found {_describe(tok)}", span,
                      label="unexpected here")


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _previous_token(err) -> Token | None:
    parser = getattr(err, "interactive_parser", None)
    if parser is None:
        return None
    stack = parser.parser_state.value_stack
    for item in reversed(stack):
        if isinstance(item, Token):
            return item
        meta = getattr(item, "meta", None)
        if meta is not None and not meta.empty:
            return Token("TREE", "", 0, meta.end_line, meta.end_column - 1)
        return None
    return None


def _slip(tok: Token, expected: set, prev: Token | None, postlex: Newlines, file: str) -> Diagnostic | None:
    """Tailored messages for the common slips."""
    span = _span_of(tok, file)
    unclosed = postlex.open[-1] if postlex.open else None
    before_item = _unclosed_before_item(tok, postlex)
    if before_item is not None:
        return _never_closed(before_item, file)
    if unclosed is not None and CLOSERS_FOR[unclosed.type] in expected and (
            tok.type in ("$END", "RBRACE")
            or (prev is not None and tok.line > prev.line and not _within(unclosed, tok.line, postlex.lines))):
        return _never_closed(unclosed, file)
    unfinished = _unfinished_line(tok, postlex, file)
    if unfinished is not None:
        return unfinished
    if prev is not None and prev.type == "COMMA" and tok.type in ("RBRACE", "$END", "EQUAL", "_NL"):
        return Diagnostic("E0103", "trailing comma: nothing follows this `,`",
                          SourceSpan.point(file, prev.line, prev.column), label="remove this comma")
    if (tok.type in ("NAME", "INT", "FLOAT", "STRING", "LSQB") and "COMMA" in expected and prev is not None
            and unclosed is not None and unclosed.type in ("LPAR", "LSQB")
            and (prev.line == tok.line or _within(unclosed, tok.line, postlex.lines))):
        return Diagnostic("E0101", f"missing `,` before {_describe(tok)}", span, label="expected `,` before this",
                          help="separate arguments and list items with `,`")
    line_before = postlex.lines[tok.line - 1][:tok.column - 1] if tok.type == "NAME" else ""
    if ("|>" in line_before and "PIPE" in expected and prev is not None and prev.line == tok.line
            and (not postlex.open or postlex.open[-1].type == "LBRACE")):
        return Diagnostic("E0101", f"expected `|>` or the end of the line, found name `{tok.value}`", span,
                          label="unexpected here", help=f"to apply it, chain it with `|>`: `|> {tok.value}`")
    if prev is not None and prev.value == "repeat" and tok.type == "LBRACE":
        return Diagnostic("E0101", "`repeat` needs a count before `{`", span, label="expected a count before this",
                          help="e.g. `repeat 3 { Linear(64) }`, or `repeat layers as i { ... }`")
    if tok.type == "EQUAL" and "COLON" in expected:
        return Diagnostic("E0104", "expected `:` here, not `=`", span, label="use `:`",
                          help="inputs and shape annotations use `:`, as in `input x: float32[N, 8]`")
    if tok.type == "COLON" and "EQUAL" in expected:
        return Diagnostic("E0104", "expected `=` here, not `:`", span, label="use `=`",
                          help="settings are written `key = value`, as in `lr = 0.001`")
    if prev is not None and prev.type == "COLON" and "NAME" in expected and postlex.open \
            and postlex.open[-1].type == "LPAR":
        return Diagnostic("E0104", "keyword arguments use `=`, not `:`",
                          SourceSpan.point(file, prev.line, prev.column), label="use `=`",
                          help="write `name = value` inside a call, as in `Conv2d(64, kernel_size = 3)`")
    return None


CLOSERS_FOR = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}


def _never_closed(unclosed: Token, file: str) -> Diagnostic:
    closing = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}[unclosed.type]
    return Diagnostic("E0102", f"missing `{closing}`: this `{unclosed.value}` is never closed",
                      _span_of(unclosed, file), label="opened here",
                      help=f"add `{closing}` where the {'block' if closing == '}' else 'list or call'} ends")


def _unclosed_before_item(tok: Token, postlex: Newlines) -> Token | None:
    """The innermost open bracket with a top-level item (`model B {` at column 1) on a line after
    it, up to the error: the bracket was never closed, and the parser read on into the next item."""
    for unclosed in reversed(postlex.open):
        if any(ITEM_START.match(postlex.lines[i]) for i in range(unclosed.line, tok.line)):
            return unclosed
    return None


def _indent(line: str) -> int:
    """The width of a line's indentation, a tab reaching the next multiple of 8 (as in Python)."""
    return len(line[:len(line) - len(line.lstrip())].expandtabs(8))


def _within(unclosed: Token, line: int, lines: list[str]) -> bool:
    """Whether `line` is indented deeper than the line where `unclosed` opened, when that is a `(`
    or `[`: it then holds the call's arguments or the list's items, and does not start a statement."""
    return (unclosed.type != "LBRACE" and unclosed.line < line
            and _indent(lines[line - 1]) > _indent(lines[unclosed.line - 1]))


# the start of a statement, as a line that continues another may not read: a keyword, ...
STATEMENT_KEYWORD = re.compile(r"(?:output|return|input|tie|if)\b(?![ \t]*=)")
# ... or an assignment: `y = `, `a, b = `, `x: [N, 4] = `
ASSIGNMENT_START = re.compile(r"[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*\s*(?::[^=\n]*)?=(?!=)")


def _starts_statement(line: int, tok: Token, postlex: Newlines) -> bool:
    """Whether `line`, which continues the line before, reads as a statement of its own. An
    assignment does so only where the parser stopped at its start: past its `=` it was read as a
    keyword argument or a setting, and within an open `(` or `[` it is a keyword argument."""
    text = postlex.lines[line - 1]
    first = text.lstrip()
    if STATEMENT_KEYWORD.match(first):
        return True
    start = ASSIGNMENT_START.match(first)
    if start is None or tok.line != line or tok.column > len(text) - len(first) + start.end():
        return False
    return not (postlex.open and _within(postlex.open[-1], line, postlex.lines))


def _unfinished_line(tok: Token, postlex: Newlines, file: str) -> Diagnostic | None:
    """A line that ends in an operator or an open bracket continues on the next line; when that
    next line reads as a statement of its own (not indented further, starting like one) and the
    error is on it or after it, the earlier line was left unfinished: say so there."""
    lines = postlex.lines
    line = tok.line
    continued = dict(postlex.continued)
    if postlex.joined_after is not None and tok.line > postlex.joined_after.line:  # the lexer stopped at tok
        continued[tok.line] = postlex.joined_after
    while line in continued:
        joiner = continued[line]
        text = lines[line - 1]
        operator = joiner.type not in ("COMMA", *OPENERS)  # `y = x |>` then `}` ends the block unfinished
        if _indent(text) <= _indent(lines[joiner.line - 1]) and (
                (operator and text.lstrip().startswith("}")) or _starts_statement(line, tok, postlex)):
            unclosed = postlex.open[-1] if postlex.open else None
            if unclosed is not None and unclosed.type != "LBRACE" and unclosed.line < line:
                return _never_closed(unclosed, file)
            if joiner.type not in CONTINUE_AFTER:
                return None
            return Diagnostic("E0101", f"unfinished line: nothing follows `{joiner.value}`", _span_of(joiner, file),
                              label="expected more after this",
                              help=f"a line that ends in `{joiner.value}` goes on at the next line; "
                                   f"finish it, or remove the `{joiner.value}`")
        line = joiner.line
    return None
