"""The TextMate grammar (editors/dlspec.tmLanguage.json), run by a small tokenizer over every spec.

The tokenizer applies the grammar's `match` rules the way a TextMate engine does for one-line
rules: at each position the first rule (in pattern order, includes expanded) that matches there
wins. The regexes are written in the subset that Oniguruma and Python's `re` read alike.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = json.loads((ROOT / "editors" / "dlspec.tmLanguage.json").read_text())
SPECS = sorted((ROOT / "specs").rglob("*.dlspec"))
PLAIN = re.compile(r"[a-z_][A-Za-z0-9_]*|[()\[\]{},.:]")  # value names and punctuation need no scope
ONIGURUMA_ONLY = re.compile(r"\\[hHAzGK]|\(\?<[a-zA-Z]|\(\?[imx]*-|[*+?}]\+|\\p\{")


def _rules(patterns):
    """The grammar's rules in the order an engine tries them, includes expanded."""
    for p in patterns:
        if "include" in p:
            yield from _rules([GRAMMAR["repository"][p["include"][1:]]])
        elif "patterns" in p:
            yield from _rules(p["patterns"])
        else:
            yield p


RULES = [(re.compile(r["match"]), r) for r in _rules(GRAMMAR["patterns"])]


def tokenize(line: str):
    """(start, end, scope) for every scoped piece of `line`; raises on a character nothing covers."""
    out, i = [], 0
    while i < len(line):
        if line[i].isspace():
            i += 1
            continue
        for regex, rule in RULES:
            m = regex.match(line, i)
            if m and m.end() > i:
                if "name" in rule:
                    out.append((m.start(), m.end(), rule["name"]))
                for group, capture in rule.get("captures", {}).items():
                    if m.group(int(group)) is not None:
                        out.append((m.start(int(group)), m.end(int(group)), capture["name"]))
                i = m.end()
                break
        else:
            plain = PLAIN.match(line, i)
            if plain is None:
                raise AssertionError(f"nothing covers {line[i]!r} at column {i + 1}: {line}")
            i = plain.end()
    return out


def test_grammar_regexes_are_portable():
    for regex, rule in RULES:
        assert not ONIGURUMA_ONLY.search(rule["match"]), rule["match"]
    assert GRAMMAR["scopeName"] == "source.dlspec" and "dlspec" in GRAMMAR["fileTypes"]


@pytest.mark.parametrize("path", SPECS, ids=[str(p.relative_to(ROOT / "specs")) for p in SPECS])
def test_every_spec_line_tokenizes(path):
    for line in path.read_text().splitlines():
        tokenize(line)


def _scopes(line: str) -> dict[str, str]:
    return {line[a:b]: scope for a, b, scope in tokenize(line)}


def test_scopes_on_a_sample():
    s = _scopes('model Net(width = 32) {  # a "comment" with model in it')
    assert s["model"] == "storage.type.dlspec" and s["Net"] == "entity.name.type.dlspec"
    assert s['# a "comment" with model in it'].startswith("comment.line")
    assert s["32"] == "constant.numeric.dlspec" and s["="].startswith("keyword.operator")
    s = _scopes('  x = image |> conv1: Conv2d(width, 3, padding = 1) |> Dropout(0.2) |> head: Linear(10)')
    assert s["|>"] == "keyword.operator.pipe.dlspec"
    assert s["Conv2d"] == s["Linear"] == "entity.name.function.dlspec"
    assert s["conv1"] == s["head"] == "entity.name.tag.layer.dlspec"
    assert s["0.2"] == "constant.numeric.dlspec" and "image" not in s
    s = _scopes('  if stride != 1 or not flag { skip = x } else { y = "a # not a comment" }')
    assert s["if"] == s["else"] == "keyword.control.dlspec"
    assert s["or"] == s["not"] == "keyword.operator.logical.dlspec"
    assert s['"a # not a comment"'] == "string.quoted.double.dlspec"
    assert not any(scope.startswith("comment") for scope in s.values())
    s = _scopes("  input tokens: int64[N, T]  // 2 ** x")
    assert s["input"] == "keyword.other.dlspec" and s["int64"] == "support.type.dlspec"
    s = _scopes("  loss cross_entropy { output = logits, lr = 3e-4, eps = .5, on = true }")
    assert "output" not in s  # a setting named output is not the keyword
    assert s["3e-4"] == s[".5"] == "constant.numeric.dlspec" and s["true"] == "constant.language.dlspec"
