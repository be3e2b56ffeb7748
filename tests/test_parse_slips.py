"""Syntax slips over several lines, a missing `}` before the next item, deep nesting and YAML tags:
each is reported with the message that names it, where it is (the golden cases in
tests/diagnostics/err show the rendered messages)."""
import pytest

import specc

HEAD = "spec 1\nmodel M {\n  input x: float32[N, 8]\n"


def _first(tmp_path, text: str, name: str = "m.dlspec"):
    path = tmp_path / name
    path.write_text(text)
    diagnostics = specc.check([str(path)])
    assert diagnostics, text
    d = diagnostics[0]
    return d.code, d.message, (d.span.line, d.span.col)


@pytest.mark.parametrize("body, expected", [
    # `Linear(...)(x)`: the error is the second `(`, not the `,` two lines up
    ("  z = Linear(\n      4,\n      bias=false\n  )(x)\n  output z\n}\n", ("E0101", "expected", (7, 4))),
    # a statement at the call's own indentation: the `(` is never closed
    ("  y = x |> Linear(4\n  z = 3\n  output y\n}\n", ("E0102", "missing `)`", (4, 18))),
    ("  y = x |> Linear(\n      4\n  z = x |> ReLU\n  output z\n}\n", ("E0102", "missing `)`", (4, 18))),
    # within the call, a line `name = value` is a keyword argument
    ("  y = x |> Linear(\n      4,\n      bias = false\n      out = 3)\n  output y\n}\n",
     ("E0101", "missing `,` before name `out`", (7, 7))),
    # a list item that starts with `[` on the next line
    ("  y = x |> [\n      Linear(4)\n      [Linear(4), ReLU],\n  ]\n  output y\n}\n",
     ("E0101", "missing `,` before `[`", (6, 7))),
    # a body's `,` at the end of a line, then a statement: the line with the `,` is unfinished
    ("  y = x\n  output y,\n  z = 3\n}\n", ("E0101", "unfinished line: nothing follows `,`", (5, 11))),
    # arguments indented with a tab are inside the call as those indented with spaces are
    ("  y = Concat(x,\n\tx\n\tdim = 1)\n  output y\n}\n", ("E0101", "missing `,` before name `dim`", (6, 2))),
], ids=["call_of_a_call", "statement_after_open_call", "statement_after_argument", "keyword_argument",
        "list_in_a_list", "comma_ends_a_statement", "tab_indented_arguments"])
def test_a_slip_across_lines_is_reported_where_it_is(tmp_path, body, expected):
    code, message, where = _first(tmp_path, HEAD + body)
    assert (code, where) == (expected[0], expected[2]) and message.startswith(expected[1]), message


def test_a_missing_comma_in_a_parameter_list_across_lines(tmp_path):
    text = "spec 1\nmodel M(a = 1\n        b = 2) {\n  input x: float32[N, 8]\n  output x\n}\n"
    assert _first(tmp_path, text) == ("E0101", "missing `,` before name `b`", (3, 9))


def test_settings_after_a_comma_are_read_as_settings(tmp_path):
    text = "spec 1\ntrain {\n  optimizer AdamW {\n    lr = 1e-3,\n    betas = [0.9, 0.99]\n    wd =\n  }\n}\n"
    assert _first(tmp_path, text) == ("E0101", "unfinished line: nothing follows `=`", (6, 8))


@pytest.mark.parametrize("text, where", [
    ("spec 1\ntrain {\n  epochs = 1\n\nmodel B {\n  input x: float32[N, 8]\n  output x\n}\n", (2, 7)),
    (HEAD + "  output x\nimport \"other.dlspec\"\n", (2, 9)),
    (HEAD + "  output x\nexport onnx {\n  opset = 17\n}\n", (2, 9)),
    # the innermost bracket left open is the one reported
    (HEAD + "  y = x |> Linear(4\n\nmodel B {\n  input x: float32[N, 8]\n  output x\n}\n", (4, 18)),
], ids=["section_then_model", "model_then_import", "model_then_export", "call_then_model"])
def test_an_unclosed_bracket_before_the_next_item_is_named(tmp_path, text, where):
    code, message, at = _first(tmp_path, text)
    assert (code, at) == ("E0102", where) and message.endswith("is never closed"), message


@pytest.mark.parametrize("expression", ["-" * 5000 + "4", "not " * 5000 + "true", "1 if true else " * 3000 + "1"],
                         ids=["minus", "not", "conditional"])
def test_an_expression_too_deep_to_read_is_located(tmp_path, expression):
    code, message, (line, col) = _first(tmp_path, HEAD + f"  k = {expression}\n  output x\n}}\n")
    assert (code, line) == ("E0107", 4) and col > 4, message


def test_an_expression_too_deep_in_a_yaml_string_is_located(tmp_path):
    text = "spec: 1\nmodels:\n  M:\n    inputs: {x: 'float32[N, 8]'}\n    body:\n      - k = " + "-" * 5000 + "4\n"
    code, _, (line, col) = _first(tmp_path, text + "    outputs: [x]\n", "m.yaml")
    assert (code, line) == ("E0107", 6) and col > 10


@pytest.mark.parametrize("text, line", [
    ("spec: 1\nmodels:\n  M:\n    params: {a: " + "[" * 3000 + "]" * 3000 + "}\n", 4),
    ("spec: 1\nmodels:\n  M: &m\n    params: [*m]\n", 4),  # an alias of itself: deep without end
], ids=["flow", "recursive_alias"])
def test_yaml_too_deep_to_read_is_located(tmp_path, text, line):
    code, _, (at, _) = _first(tmp_path, text, "m.yaml")
    assert (code, at) == ("E0204", line)


def test_yaml_nested_too_deep_in_blocks_is_located_where_pyyaml_gave_up(tmp_path):
    text = "spec: 1\nother:\n" + "".join(" " * i + f"  k{i}:\n" for i in range(3000))
    code, _, (line, col) = _first(tmp_path, text, "m.yaml")
    assert code == "E0204" and line > 100 and col == line  # at the key, one column further in on each line


@pytest.mark.parametrize("tagged, tag", [
    ("models: !!python/object:os.system {}", "!!python/object:os.system"),
    ("models:\n  M:\n    inputs: {x: 'float32[N, 4]'}\n    outputs: !!python/tuple [x]", "!!python/tuple"),
    ("models: !!set {M}", "!!set"),
    ("--- !custom\nspec: 1", "!custom"),
], ids=["mapping", "sequence", "set", "document"])
def test_a_tag_on_a_mapping_or_a_list_is_refused(tmp_path, tagged, tag):
    text = tagged + "\n" if tagged.startswith("---") else "spec: 1\n" + tagged + "\n"
    code, message, _ = _first(tmp_path, text, "m.yaml")
    assert (code, message) == ("E0202", f"unsupported YAML tag {tag}")


def test_yamls_own_map_and_seq_tags_are_accepted(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("spec: 1\nmodels: !!map\n  M:\n    inputs: {x: 'float32[N, 4]'}\n    outputs: !!seq [x]\n")
    assert specc.check([str(path)]) == []
