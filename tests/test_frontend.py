"""The language front end: grammar, newlines, YAML equivalence, CLI exit codes, torch-freedom."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import specc
from specc.cli import main
from specc.ir.build import build

ROOT = Path(__file__).resolve().parent.parent


def test_grammar_is_lalr_without_conflicts():
    # strict=True makes Lark refuse any shift/reduce or reduce/reduce conflict and regex collision;
    # built here without the cache so the analysis really runs
    from lark import Lark

    from specc.frontend.parse import grammar_path, lark_options
    Lark(grammar_path().read_text(), **lark_options(cache=False))


def _graph(text: str, tmp_path, name="m.dlspec"):
    path = tmp_path / name
    path.write_text(text)
    spec = specc.load(path)
    graph, diagnostics = build(spec)
    assert diagnostics == [], "\n".join(d.render() for d in diagnostics)
    return graph


def test_pipelines_continue_across_lines_and_comments(tmp_path):
    graph = _graph("""spec 1
model M {
  input x: float32[N, 10]
  y = x
    # a comment between stages
    |> a: Linear(20)

    |> ReLU |> b: Linear(5)
  output y
}
""", tmp_path)
    assert [graph.layers[n.layer].op for n in graph.nodes] == ["Linear", "ReLU", "Linear"]
    assert graph.param_count == 10 * 20 + 20 + 20 * 5 + 5


def test_torch_form_and_short_form_agree(tmp_path):
    short = _graph("model M {\n input x: float32[N, 3, 8, 8]\n y = x |> c: Conv2d(16, 3, stride = 2)\n output y\n}", tmp_path)
    torch_form = _graph("model M {\n input x: float32[N, 3, 8, 8]\n y = x |> c: Conv2d(3, 16, 3, 2)\n output y\n}",
                        tmp_path, "t.dlspec")
    assert short.layers["c"].params == torch_form.layers["c"].params
    assert str(short.values[short.outputs[0]].type) == "float32[N, 16, 3, 3]"


def test_symbolic_dims_flow_through(tmp_path):
    graph = _graph("""model M {
  input tokens: int64[N, T]
  h = tokens |> emb: Embedding(100, 16) |> Flatten(0, 1)
  output h
}""", tmp_path)
    assert str(graph.values[graph.outputs[0]].type) == "float32[N*T, 16]"
    assert graph.symbols == ("N", "T")


def test_symbolic_sizes_print_as_they_compute():
    """A floor division inside a product or after a leading minus keeps its parentheses:
    `2*T//2` would read as (2*T)//2 = T, and `-T//2` as (-T)//2."""
    from specc.ir import dims as D

    half = D.floordiv(D.Sym.var("T"), 2)
    assert [str(d) for d in (half, D.mul(2, half), D.mul(D.Sym.var("H"), half), D.sub(16, half),
                             D.sub(D.Sym.var("H"), half))] == \
        ["T//2", "2*(T//2)", "H*(T//2)", "-(T//2) + 16", "H - T//2"]


def test_a_yaml_null_constant_is_none_and_a_refused_one_is_reported_once(tmp_path):
    model = 'models:\n  M:\n    inputs: {x: "float32[N, 4]"}\n    body: ["y = x |> Linear(3 if c == none else c)"]\n' \
            '    outputs: [y]\n'
    (tmp_path / "null.yaml").write_text("spec: 1\nconstants:\n  c: null\n" + model)
    assert specc.check([tmp_path / "null.yaml"]) == []
    (tmp_path / "huge.yaml").write_text("spec: 1\nconstants:\n  c: 99999999999999999999999\n" + model)
    assert [d.code for d in specc.check([tmp_path / "huge.yaml"])] == ["E0602"]


def test_a_yaml_mistake_the_loader_reports_does_not_hide_the_schemas_other_errors(tmp_path):
    (tmp_path / "dup.yaml").write_text('spec: 1\nmodels:\n  M:\n    inputs: {x: "float32[N, 4]"}\n'
                                       '    outputs: {y: 1, y: 2}\n')
    assert [(d.code, d.message) for d in specc.check([tmp_path / "dup.yaml"])] == [
        ("E0207", "`y` is set twice"), ("E0202", "models.M.outputs: input should be a valid list")]


def test_yaml_and_dlspec_give_the_same_ir(tmp_path):
    (tmp_path / "m.yaml").write_text("""spec: 1
models:
  DigitsCNN:
    params: {classes: 10, width: 32}
    inputs:
      image: float32[N, 1, 8, 8]
    body:
      - "features: [N, 2 * width, 4, 4] = image |> conv1: Conv2d(width, 3, padding = 1) |> BatchNorm2d |> ReLU |> conv2: Conv2d(2 * width, 3, padding = 1) |> BatchNorm2d |> ReLU |> MaxPool2d(2)"
      - logits = features |> Flatten |> Dropout(0.2) |> head:Linear(classes)
    outputs: [logits]
""")
    from_yaml, diags = build(specc.load(tmp_path / "m.yaml"))
    assert diags == []
    from_dlspec, _ = build(specc.load(ROOT / "specs" / "digits_cnn.dlspec"))
    assert from_yaml.param_count == from_dlspec.param_count
    assert {k: v.params for k, v in from_yaml.layers.items()} == {k: v.params for k, v in from_dlspec.layers.items()}
    assert [str(v.type) for v in from_yaml.values.values()] == [str(v.type) for v in from_dlspec.values.values()]


def test_all_errors_of_a_file_in_one_run(tmp_path):
    path = tmp_path / "bad.dlspec"
    path.write_text("""model M {
  input x: float32[N, 10]
  a = x |> Lineer(3)
  b = a |> Linear(4)
  c = x |> Linear(5, bais = true)
  d = undefined_thing |> ReLU
  output c
}""")
    codes = [d.code for d in specc.check([str(path)])]
    assert codes == ["E0402", "E0404", "E0401"]  # b is poisoned by a: no cascade



def test_unused_blocks_are_checked_as_a_use_would_be(tmp_path):
    """A block no model uses gets the errors a use of it would report, at the same places (less the
    "in block" note); an import's unused blocks are left to that file, and the block library checks clean."""
    lib = tmp_path / "lib.dlspec"
    lib.write_text("""spec 1
block B(out) (x) {
  h = x |> Conv2d(out, 3, paddin = 1)
  g = x |> Lienar(out)
  return x + hh
}
""")
    user = tmp_path / "user.dlspec"
    user.write_text(lib.read_text() + "model M {\n  input x: float32[N, 3, 8, 8]\n  y = x |> B(4)\n  output y\n}\n")
    importer = tmp_path / "importer.dlspec"
    importer.write_text('spec 1\nimport "lib.dlspec"\nmodel M {\n  input x: float32[N, 4]\n  y = x |> ReLU\n  output y\n}\n')

    def found(path):
        return [(d.code, d.message, d.span.line, d.span.col, len(d.notes)) for d in specc.check([str(path)])]

    unused, used = found(lib), found(user)
    assert [d[:2] for d in unused] == [("E0404", "Conv2d has no argument `paddin`"),
                                       ("E0402", "unknown op or block `Lienar`"), ("E0401", "`hh` is not defined")]
    assert [d[:4] for d in used] == [d[:4] for d in unused]  # the used block reported once, where it is used
    assert [d[4] for d in used] == [1, 1, 1] and [d[4] for d in unused] == [0, 0, 0]
    assert found(importer) == []
    for path in sorted((ROOT / "specs" / "std").glob("*.dlspec")):
        assert specc.check([str(path)]) == [], path.name

def _found(text: str, tmp_path) -> list:
    path = tmp_path / "m.dlspec"
    path.write_text(text)
    return [(d.code, d.message, d.span.line, d.span.col) for d in specc.check([str(path)])]


def test_builtins_refuse_what_they_would_ignore(tmp_path):
    """Extra arguments, arguments by name, and what min/max cannot order are errors, not silently dropped."""
    found = _found("model M {\n  input x: float32[N, 4]\n  a = int(7.9, 2)\n  b = min(x = 3)\n"
                   "  c = max(dim(x, 0), 3)\n  d = len(none)\n  e = dim(x, true)\n  output x\n}\n", tmp_path)
    assert found == [("E0405", "int() takes one argument, got 2", 3, 7),
                     ("E0404", "min() takes no argument by name", 4, 11),
                     ("E0405", "max() takes numbers, or one list of them", 5, 7),
                     ("E0405", "len() takes a list or a string, got none", 6, 7),
                     ("E0405", "dim(): the tensor is float32[N, 4], it has no dim True", 7, 7)]


def test_a_symbolic_size_is_not_equal_to_a_number_statically(tmp_path):
    """`N == 4` depends on the batch: an error, not false; equal forms compare equal."""
    found = _found("model M {\n  input x: float32[N, 4, H]\n  y = x |> ReLU if dim(x, 2) == dim(x, 2) else x\n"
                   "  z = x |> ReLU if dim(x, 0) != 4 else x\n  output y, z\n}\n", tmp_path)
    assert found == [("E0405", "cannot tell whether N != 4: the size is known only at run time", 4, 20)]


def test_repeat_index_belongs_to_the_repeat(tmp_path):
    graph = _graph("model M(i = 7) {\n  input x: float32[N, 4]\n  h = x |> r: repeat 2 as i { Linear(4 + i) }\n"
                   "  y = h |> last: Linear(i)\n  output y\n}\n", tmp_path)
    assert [graph.layers[p].params.out_features for p in ("r.0", "r.1", "last")] == [4, 5, 7]
    found = _found("model M {\n  input x: float32[N, 4]\n  h = x |> repeat 2 as i { Linear(4) }\n"
                   "  y = h |> Linear(i)\n  output y\n}\n", tmp_path)
    assert found == [("E0401", "`i` is not defined", 4, 19)]


def test_a_return_inside_an_if_leaves_what_follows_reachable(tmp_path):
    graph = _graph("block B(flag) (x) {\n  if flag {\n    return x |> ReLU\n  }\n  return x |> Tanh\n}\n"
                   "model M {\n  input x: float32[N, 4]\n  y = x |> B(true)\n  z = x |> B(false)\n  output y, z\n}\n",
                   tmp_path)
    assert [graph.layers[n.layer].op for n in graph.nodes] == ["ReLU", "Tanh"]


def test_a_layer_applied_again_keeps_its_name(tmp_path):
    found = _found("model M {\n  input x: float32[N, 4]\n  y = x |> fc: Linear(4) |> other: fc\n  output y\n}\n",
                   tmp_path)
    assert found == [("E0403", "`fc` is a layer applied again: it keeps its name", 3, 29)]


def test_check_does_not_import_torch():
    code = "import sys, specc; d = specc.check(['specs']); assert 'torch' not in sys.modules, 'torch imported'; print(len(d))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_cli_exit_codes_and_formats(tmp_path, capsys):
    good, bad = ROOT / "specs" / "digits_cnn.dlspec", ROOT / "tests/diagnostics/err/unknown_op.dlspec"
    assert main(["check", str(good)]) == 0
    assert main(["check", str(bad)]) == 1
    assert main(["check", str(tmp_path / "nope.dlspec")]) == 2
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--format", "xml", str(good)])
    assert exit_.value.code == 2
    capsys.readouterr()
    assert main(["check", "--format", "json", str(bad)]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["errors"] == 1 and payload["diagnostics"][0]["code"] == "E0402"
    assert payload["diagnostics"][0]["line"] == 4
    assert main(["check", "--format", "github", str(bad)]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"::error file={bad},line=4,col=12,") and "title=E0402" in line


def test_max_params_rejects_without_allocating(capsys):
    assert main(["check", "--max-params", "1000", str(ROOT / "specs" / "digits_cnn.dlspec")]) == 1
    assert "E0601" in capsys.readouterr().out


def test_schema_is_valid_json_schema(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = {"spec": 1, "models": {"M": {"inputs": {"x": "float32[N, 4]"}, "body": ["y = x |> Linear(2)"],
                                       "outputs": ["y"]}}}
    jsonschema.validate(doc, schema)


def test_a_layer_written_in_an_argument_is_made_once(tmp_path):
    """The first argument after the inputs is evaluated once, so a layer inside it is one layer (15 weights)."""
    block = "block B(k) (x) {\n  return x |> Linear(k)\n}\n"
    for use in ("a |> Linear(features(a |> Linear(3)))", "a |> B(features(a |> Linear(3)))"):
        graph = _graph(f"{block}model M {{\n  input a: float32[N, 4]\n  y = {use}\n  output y\n}}\n", tmp_path)
        assert graph.param_count == 2 * (4 * 3 + 3), use


def test_a_list_of_tensors_is_not_an_argument(tmp_path):
    found = _found("model M {\n  input a: float32[N, 4]\n  y = Concat([a, a], dim = 1)\n  output y\n}\n", tmp_path)
    assert found == [("E0405", "expected a constant here, not a list of tensors", 3, 14)]


def test_an_input_error_points_at_the_input_written_as_an_argument(tmp_path):
    found = _found("model M {\n  input a: float32[N, 4]\n  input b: float32[N, 5]\n  y = MatMul(a, b |> ReLU)\n"
                   "  output y\n}\n", tmp_path)
    assert [(code, line, col) for code, _, line, col in found] == [("E0302", 4, 17)]  # at `b |> ReLU`, not `a`


def test_a_name_under_a_unary_operator_is_reserved_for_its_layer(tmp_path):
    graph = _graph("model M {\n  input x: float32[N, 4]\n  y = x |> Linear(3)\n  z = -(x |> linear_0: Linear(3))\n"
                   "  output y, z\n}\n", tmp_path)
    assert (graph.layers["linear_0"].span.line, graph.layers["linear_1"].span.line) == (4, 3)


def test_check_judges_each_model_of_a_file_on_its_own(tmp_path):
    """The expansion limit counts one model's expansions, and one model's error hides no other's tie error."""
    many = "".join(f"model M{i} {{\n  input x: float32[N, 4]\n  y = x |> repeat 30000 {{ B }}\n  output y\n}}\n"
                   for i in range(4))
    assert _found("block B() (x) {\n  return x |> ReLU\n}\n" + many, tmp_path) == []
    found = _found("model A {\n  input x: float32[N, 4]\n  y = x |> Foo\n  output y\n}\n"
                   "model B {\n  input x: float32[N, 4]\n  y = x |> fc: Linear(3)\n  tie fc.weight = fc.nothing\n"
                   "  output y\n}\n", tmp_path)
    assert [(code, line) for code, _, line, _ in found] == [("E0402", 3), ("E0401", 9)]


def test_an_unused_block_reports_what_a_use_would_after_a_failed_repeat(tmp_path):
    block = "block B(k = 2) (x) {\n  h = x |> repeat 2 as i { Foo }\n  y = x |> Linear(i)\n  return y\n}\n"
    model = "model M {\n  input x: float32[N, 4]\n  y = x |> %s\n  output y\n}\n"
    unused = _found(block + model % "Linear(3)", tmp_path)
    used = _found(block + model % "B", tmp_path)
    assert [d[:2] for d in unused] == [d[:2] for d in used] == [
        ("E0402", "unknown op or block `Foo`"), ("E0401", "`i` is not defined")]


def test_ties_between_layers_that_exist_are_checked_beside_other_errors(tmp_path):
    found = _found("model M {\n  input x: float32[N, 10]\n  a = x |> fc: Linear(5)\n  c = x |> emb\n"
                   "  tie fc.weight = nothere.weight\n  tie fc.bias = fc.weight\n  output a\n}\n", tmp_path)
    # `nothere` may be a layer whose statement failed: only the tie of two layers that exist is judged
    assert [(code, line) for code, _, line, _ in found] == [("E0402", 4), ("E0308", 6)]


def test_the_if_branch_a_build_skips_is_checked_as_an_unused_block_is(tmp_path):
    block = ("block B(k = 0) (x) {\n  if k > 0 {\n    y = x |> Linear(k) |> %s\n  } else {\n    y = x |> fc: Linear(8)\n"
             "  }\n  return y\n}\nmodel M {\n  input x: float32[N, 8]\n  y = x |> B\n  output y\n}\n")
    assert _found(block % "Lnear(8)", tmp_path) == [("E0402", "unknown op or block `Lnear`", 3, 27)]
    # skipped with k = 0, where Linear(0) would be wrong: only what holds whatever the values is judged
    graph = _graph(block % "ReLU", tmp_path)
    assert list(graph.layers) == ["b_0.fc"] and graph.symbols == ("N",)


def test_a_section_or_model_in_error_hides_no_error_of_the_rest_of_the_file(tmp_path):
    model_b = "model B {\n  input x: float32[N, 8]\n  y = x |> Lnear(3)\n  output y\n}\n"
    found = _found("model A(w = 1, w = 2) {\n  input x: float32[N, 8]\n  output x\n}\n" + model_b +
                   "train {\n  data synthetic {}\n  loss mse {}\n  early_stop { patience = \"three\" }\n}\n", tmp_path)
    assert [(code, line) for code, _, line, _ in found] == [("E0208", 1), ("E0202", 13), ("E0402", 7)]
    # an error in a block (or a constant, or an import) is one the models may depend on: reported alone
    found = _found("block C(k, k) (x) {\n  return x\n}\n" + model_b, tmp_path)
    assert [code for code, *_ in found] == ["E0208"]


def test_an_import_that_fails_is_one_error_that_names_where_it_is_imported(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "bad.dlspec").write_text("spec 1\nblock B(k) (x) {\n  return x |> Linear(k\n}\n")
    uses = "model M {\n  input x: float32[N, 8]\n  y = x |> B(4) |> B(K)\n  output y\n}\n"
    (tmp_path / "m.dlspec").write_text('spec 1\nimport "lib/bad.dlspec"\n' + uses)
    (d,) = specc.check([str(tmp_path / "m.dlspec")])  # not also one "unknown block `B`" per use
    assert (d.code, Path(d.span.file).name) == ("E0102", "bad.dlspec")
    assert [(n.message, n.span.line) for n in d.notes] == [("the file is imported", 2)]
    (tmp_path / "n.dlspec").write_text('spec 1\nimport "lib/missing.dlspec"\n' + uses)
    assert [d.code for d in specc.check([str(tmp_path / "n.dlspec")])] == ["E0501"]


def test_a_misspelt_activation_of_a_std_transformer_layer_is_an_error_not_relu(tmp_path):
    (tmp_path / "std").symlink_to(ROOT / "specs" / "std")
    found = _found('spec 1\nimport "std/transformer.dlspec"\nmodel M {\n  input x: float32[N, T, 8]\n'
                   '  y = x |> TransformerEncoderLayer(heads = 2, ff = 16, activation = "Gelu")\n  output y\n}\n', tmp_path)
    assert [(code, line) for code, _, line, _ in found] == [("E0405", 25)]
    assert "input should be 'relu', 'relu6', 'gelu'" in found[0][1]


@pytest.mark.parametrize("models", ["3", "", "'text'", "[a, b]"])
def test_a_yaml_models_entry_that_is_no_mapping_is_one_schema_error(models, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(f"spec: 1\nmodels: {models}\n")
    assert [d.code for d in specc.check([str(path)])] == ["E0202"]


def test_a_skipped_branch_takes_every_value_as_unknown_and_is_checked_once(tmp_path):
    # a name only an earlier skipped branch binds, and a constant the test guards against
    assert _found("heads = 0\nmodel M(proj = false) {\n  input x: float32[N, 12]\n  if proj {\n"
                  "    p = x |> Linear(12)\n  }\n  if proj {\n    y = p |> ReLU\n  } else {\n    y = x |> ReLU\n  }\n"
                  "  if heads != 0 {\n    z = y |> Linear(12 // heads, init = normal(std = heads))\n  } else {\n"
                  "    z = y\n  }\n  output z\n}\n", tmp_path) == []
    # a block repeated: its skipped branch's error is told once, by compile as by check
    path = tmp_path / "r.dlspec"
    path.write_text("block B(pre = false) (x) {\n  if pre {\n    x = x |> Lienar(4)\n  }\n  return x\n}\n"
                    "model M {\n  input x: float32[N, 4]\n  y = x |> repeat 3 { B }\n  output y\n}\n")
    graph, diagnostics = build(specc.load(path))
    assert [d.code for d in diagnostics] == ["E0402"]


@pytest.mark.parametrize("value", ["{expr: null}", "{expr: 3}", "[1, {expr: '2'}]", "{a: 1}"])
def test_a_yaml_constant_that_is_a_mapping_other_than_expr_text_is_refused(value, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(f"spec: 1\nconstants:\n  c: {value}\nmodels:\n  M:\n    params: {{p: {value}}}\n"
                    "    inputs: {x: 'float32[N, 4]'}\n    body: ['y = x']\n    outputs: [y]\n")
    assert [(d.code, d.span.line) for d in specc.check([str(path)])] == [("E0202", 3), ("E0202", 6)]


@pytest.mark.parametrize("version, ok", [("true", False), ("1.0", False), ("0x1", True), ("1", True)])
def test_the_yaml_language_version_is_the_whole_number_1(version, ok, tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text(f"spec: {version}\nmodels:\n  M:\n    inputs: {{x: 'float32[N, 4]'}}\n    body: ['y = x']\n"
                    "    outputs: [y]\n")
    assert [d.code for d in specc.check([str(path)])] == ([] if ok else ["E0202"])
    assert main(["convert", str(path), "--to", "dlspec"]) == (0 if ok else 1)  # never a traceback
    assert capsys.readouterr().out.startswith("spec 1\n") == ok


@pytest.mark.parametrize("tag", ["!!omap", "!!set", "!!pairs", "!!map", "!!seq"])
def test_a_collection_tag_on_a_scalar_is_refused(tag, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(f"spec: 1\nconstants:\n  c: {tag} 100\n")
    (d,) = specc.check([str(path)])
    assert (d.code, d.message, d.span.line) == ("E0202", f"unsupported YAML tag {tag}", 3)
