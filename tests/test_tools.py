"""Tools for spec authors and CI: fmt, convert, graph, SARIF, the op reference, pre-commit hooks."""
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import specc
from specc.cli import main
from specc.frontend.parse import parse
from specc.frontend.transform import to_ast
from specc.frontend.yaml_load import Loader
from specc.ir.build import build
from specc.source import SourceSpan
from specc.tools.convert import to_dlspec, to_yaml
from specc.tools.fmt import Source, format_text
from specc.tools.graph import drawing, to_dot, to_mermaid

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.dlspec"))
DATA = Path(__file__).resolve().parent / "data"


def _ids(paths):
    return [str(p.relative_to(ROOT / "specs")) for p in paths]


def _plain(node):
    """A syntax tree without its spans, for comparing two parses."""
    if isinstance(node, SourceSpan):
        return None
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(_plain(getattr(node, f.name)) for f in dataclasses.fields(node)
                                              if not f.name.endswith("span") and f.name != "name_spans")
    if isinstance(node, (list, tuple)):
        return tuple(_plain(x) for x in node)
    return node


def _tree(text: str):
    return _plain(to_ast(parse(text, "<test>"), "<test>"))


def _comments(text: str) -> list[str]:
    return [c.text for c in Source(text, "<test>").comments]


MESSY = """# header


spec   1
import "std/resnet.dlspec"   # the blocks
width=32
# a constant
depth = 2*width+ (3 -1)
model  M( a=1,b = 2 ,
   c = [1,2] ) {   # header comment
  # leading
  input x :float32[N,10]



  y = x|>fc1:Linear(20)  # trailing one
     # own line inside the pipeline
     |>ReLU |> [Linear(3),
        ReLU]
  z = (y |> ReLU) + (y) * 2   # math
  w = y if a > 1 and not (b == 2) else z
  if a == 1 {
    # inside if
    q = w
  } else if a == 2 {
    q = z
  }
  else {
    q = y  # in else
    # end of else
  }
  r = q |> foo: repeat 2 as i {
      Linear(3e-3)
      |> ReLU
  }
  long = x |> first: Linear(1000) |> ReLU |> second: Linear(1000) |> ReLU |> third: Linear(1000) |> ReLU
  tie   foo.weight=bar.weight
  output r,  z   # outputs
  # end of body
}
block B(out, s = 1) (x, y) {
  return x + y
}
train {
  data digits { val_fraction = 0.2, seed = 0 }   # data
  loss cross_entropy {
    output = logits   # which
    target = label
  }


  lr = 3e-3
  metrics = [accuracy,
     top5]
  e {}
}
# trailing file comment
"""

MESSY_FORMATTED = """# header

spec 1
import "std/resnet.dlspec"  # the blocks
width = 32
# a constant
depth = 2 * width + (3 - 1)

model M(a = 1, b = 2, c = [1, 2]) {  # header comment
  # leading
  input x: float32[N, 10]

  y = x |> fc1: Linear(20)  # trailing one
        # own line inside the pipeline
        |> ReLU |> [Linear(3),
                    ReLU]
  z = (y |> ReLU) + y * 2  # math
  w = y if a > 1 and not b == 2 else z
  if a == 1 {
    # inside if
    q = w
  } else if a == 2 {
    q = z
  } else {
    q = y  # in else
    # end of else
  }
  r = q |> foo: repeat 2 as i {
    Linear(3e-3)
      |> ReLU
  }
  long = x
    |> first: Linear(1000)
    |> ReLU
    |> second: Linear(1000)
    |> ReLU
    |> third: Linear(1000)
    |> ReLU
  tie foo.weight = bar.weight
  output r, z  # outputs
  # end of body
}

block B(out, s = 1) (x, y) {
  return x + y
}

train {
  data digits { val_fraction = 0.2, seed = 0 }  # data
  loss cross_entropy {
    output = logits  # which
    target = label
  }

  lr = 3e-3
  metrics = [accuracy, top5]
  e {}
}

# trailing file comment
"""


# ---- fmt --------------------------------------------------------------------------------
def test_fmt_lays_out_a_messy_file():
    assert format_text(MESSY) == MESSY_FORMATTED


@pytest.mark.parametrize("text", [MESSY] + [p.read_text() for p in SPECS], ids=["messy"] + _ids(SPECS))
def test_fmt_is_idempotent_and_changes_only_layout(text):
    once = format_text(text)
    assert format_text(once) == once
    assert _tree(once) == _tree(text)
    assert sorted(_comments(once)) == sorted(_comments(text))


def test_fmt_check_passes_on_the_specs(capsys):
    assert main(["fmt", "--check", str(ROOT / "specs")]) == 0, capsys.readouterr().out


def test_fmt_check_prints_a_diff_then_fmt_rewrites(tmp_path, capsys):
    path = tmp_path / "m.dlspec"
    path.write_text(MESSY)
    assert main(["fmt", "--check", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out.startswith(f"--- {path} (now)") and "+model M(a = 1, b = 2, c = [1, 2]) {" in out.out
    assert "1 file would be reformatted" in out.err
    assert path.read_text() == MESSY
    assert main(["fmt", str(path)]) == 0
    assert path.read_text() == MESSY_FORMATTED
    assert main(["fmt", "--check", str(path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["m.dlspec"]  # no temporary file left behind


def test_fmt_keeps_windows_line_endings(tmp_path):
    path = tmp_path / "m.dlspec"
    path.write_bytes(b"model M {\r\n  input x: float32[N, 4]\r\n  y = x|>Linear(2)\r\n  output y\r\n}\r\n")
    assert main(["fmt", str(path)]) == 0
    assert path.read_bytes() == b"model M {\r\n  input x: float32[N, 4]\r\n  y = x |> Linear(2)\r\n  output y\r\n}\r\n"


def test_fmt_reports_a_syntax_error_and_changes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.dlspec"
    text = "model M {\n  input x: float32[N, 4]\n  y = x |> Linear(2\n  output y\n}\n"
    bad.write_text(text)
    good = tmp_path / "good.dlspec"
    good.write_text("model M {\n  input x: float32[N, 4]\n  y = x|>Linear(2)\n  output y\n}\n")
    assert main(["fmt", str(bad), str(good)]) == 1
    err = capsys.readouterr().err
    assert "error[E0102]" in err and f"--> {bad}:3:18" in err
    assert bad.read_text() == text
    assert "x |> Linear(2)" in good.read_text()  # the other file is still formatted


def test_fmt_usage_errors(tmp_path):
    (tmp_path / "m.yaml").write_text("spec: 1\n")
    assert main(["fmt", str(tmp_path / "nope.dlspec")]) == 2
    assert main(["fmt", str(tmp_path / "m.yaml")]) == 2


def test_fmt_takes_the_dlspec_suffix_in_any_case_as_check_does(tmp_path):
    (tmp_path / "M.DLSPEC").write_text("spec 1\n")
    assert main(["fmt", "--check", str(tmp_path / "M.DLSPEC")]) == 0


def test_a_file_may_end_with_a_comment():
    assert _tree("spec 1\n# the end\n") == _tree("spec 1\n")
    assert _tree("spec 1\n# the end") == _tree("spec 1\n")


def test_deep_indentation_parses_fast():
    # the newline look-ahead once backtracked exponentially on a long run of blanks
    text = "model M {\n  input x: float32[N, 4]\n" + " " * 60 + "y = x\n  output y\n}\n"
    start = time.perf_counter()
    parse(text, "<test>")
    assert time.perf_counter() - start < 1.0


# ---- convert ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """specs/ copied, with every spec converted to YAML beside it through the CLI."""
    folder = tmp_path_factory.mktemp("specs")
    shutil.copytree(ROOT / "specs", folder, dirs_exist_ok=True)
    for path in sorted(folder.rglob("*.dlspec")):
        assert main(["convert", str(path), "--to", "yaml", "-o", str(path.with_suffix(".yaml"))]) == 0
    return folder


def _same_ir(a, b):
    assert list(a.models) == list(b.models)
    for name in a.models:
        ga, da = build(a, name)
        gb, db = build(b, name)
        assert da == [] and db == [], db
        assert ga.param_count == gb.param_count
        assert {k: v.params for k, v in ga.layers.items()} == {k: v.params for k, v in gb.layers.items()}
        assert [str(v.type) for v in ga.values.values()] == [str(v.type) for v in gb.values.values()]
    assert list(a.blocks) == list(b.blocks)
    for name in a.blocks:
        assert _plain(a.blocks[name].body) == _plain(b.blocks[name].body)
    assert a.train == b.train and a.export == b.export and a.imports == b.imports


@pytest.mark.parametrize("rel", _ids(SPECS))
def test_convert_round_trips_every_spec(converted, rel):
    dlspec = converted / rel
    yaml_path = dlspec.with_suffix(".yaml")
    _same_ir(specc.load(dlspec), specc.load(yaml_path))
    back = to_dlspec(yaml_path.read_text(), str(yaml_path))
    assert back == format_text(dlspec.read_text())
    assert _comments(back) == _comments(format_text(dlspec.read_text()))


def test_converted_yaml_validates_against_the_schema(converted, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    assert main(["schema"]) == 0
    validator = jsonschema.Draft202012Validator(json.loads(capsys.readouterr().out))
    for path in sorted(converted.rglob("*.yaml")):
        # the loader specc uses: YAML 1.2's floats (`3e-4`) included, as in YAML language servers
        errors = list(validator.iter_errors(yaml.load(path.read_text(), Loader=Loader)))
        assert errors == [], f"{path.name}: {errors[0].message}"


def test_converted_specs_check_clean(converted):
    assert specc.check([str(converted)]) == []


HAND_WRITTEN = """# yaml-language-server: $schema=specc.schema.json
spec: 1   # version
models:
  # the model
  Net:
    params: {classes: 10, width: 32}
    inputs:
      image: float32[N, 1, 8, 8]   # images
    body:   # the layers
      - "h = image |> conv: Conv2d(width, 3, padding = 1) |> ReLU |> Flatten"

      # logits
      - |-
        logits = h
          |> head: Linear(classes)  # the classifier
    outputs: [logits]
train:
  data:
    kind: digits
    normalize: {kind: scale, scale: 0.0625}
  loss:
    - {kind: cross_entropy, output: logits, target: label}
    - {kind: cross_entropy, output: logits, target: label, weight: 0.5}
  optimizer: {kind: AdamW, lr: 1e-3, weight_decay: 0.01}
  targets: {label: "int64[N]"}
  metrics: [accuracy]
  early_stop: {monitor: val/accuracy, patience: 5}
"""

HAND_WRITTEN_DLSPEC = """# yaml-language-server: $schema=specc.schema.json
spec 1  # version

# the model
model Net(classes = 10, width = 32) {
  input image: float32[N, 1, 8, 8]  # images
  # the layers
  h = image |> conv: Conv2d(width, 3, padding = 1) |> ReLU |> Flatten

  # logits
  logits = h
    |> head: Linear(classes)  # the classifier
  output logits
}

train {
  data digits {
    normalize scale { scale = 0.0625 }
  }
  loss cross_entropy { output = logits, target = label }
  loss cross_entropy { output = logits, target = label, weight = 0.5 }
  optimizer AdamW { lr = 1e-3, weight_decay = 0.01 }
  targets { label = "int64[N]" }
  metrics = [accuracy]
  early_stop { monitor = "val/accuracy", patience = 5 }
}
"""


def test_yaml_to_dlspec_keeps_comments_and_layout(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    path.write_text(HAND_WRITTEN)
    assert main(["convert", str(path), "--to", "dlspec"]) == 0
    out = capsys.readouterr().out
    assert out == HAND_WRITTEN_DLSPEC
    (tmp_path / "net.dlspec").write_text(out)
    _same_ir(specc.load(path), specc.load(tmp_path / "net.dlspec"))
    again = to_yaml(out, "net.dlspec")
    assert to_dlspec(again, "net.yaml") == out


def test_yaml_statement_blocks_keep_exact_positions(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("models:\n  M:\n    params: {eps: 1e-5}\n    inputs: {x: 'float32[N, 4]'}\n    body:\n"
                    "      - |-\n        y = x\n          |> a: Linear(8)  # note\n          |> Lineer(2)\n"
                    "    outputs: [y]\n")
    spec = specc.load(path)
    assert spec.models["M"].params["eps"].value == 1e-5  # `1e-5` is a float, as in YAML 1.2
    (diag,) = specc.check([str(path)])
    assert diag.code == "E0402" and (diag.span.line, diag.span.col) == (9, 14)


def test_convert_carries_expressions_that_are_no_yaml_literal(tmp_path, capsys):
    path = tmp_path / "m.dlspec"
    text = ("spec 1\nbase = 8\nc = none\n\nmodel M(width = 2 * base, sizes = [base, base // 2], p = none) {\n"
            "  input x: float32[N, 4]\n  y = x |> Linear(width)\n  output y\n}\n")
    path.write_text(text)
    assert main(["convert", str(path), "--to", "yaml", "-o", str(tmp_path / "m.yaml")]) == 0
    yaml_text = (tmp_path / "m.yaml").read_text()
    assert 'c: {expr: "none"}' in yaml_text and 'width: {expr: "2 * base"}' in yaml_text
    assert 'p: {expr: "none"}' in yaml_text  # a YAML null would mean "required"
    assert specc.check([str(tmp_path / "m.yaml")]) == []
    assert main(["convert", str(tmp_path / "m.yaml"), "--to", "dlspec"]) == 0
    assert capsys.readouterr().out == text


def test_convert_reports_spec_errors_instead_of_converting(tmp_path, capsys):
    path = tmp_path / "m.dlspec"
    path.write_text("model M {\n  input x: float32[N, 4]\n  y = x |> Linear(2\n  output y\n}\n")
    assert main(["convert", str(path), "--to", "yaml"]) == 1
    assert "E0102" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nope.dlspec"), "--to", "yaml"]) == 2


# ---- graph ------------------------------------------------------------------------------
def _models():
    for path in SPECS:
        spec = specc.load(path)
        for name in spec.models:
            yield pytest.param(path, name, id=f"{path.stem}.{name}")


def _check_mermaid(text: str) -> None:
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    depth, nodes = 0, set()
    for line in lines[1:]:
        word = line.strip()
        if word.startswith("subgraph "):
            depth += 1
        elif word == "end":
            depth -= 1
            assert depth >= 0
        elif "-->" in word:
            a, label, b = re.fullmatch(r'(\w+) -->\|"([^"]*)"\| (\w+)', word).groups()
            assert a in nodes and b in nodes
        else:
            node = re.fullmatch(r'(\w+)(\["|\[\["|\(\[")([^"]*)("\]|"\]\]|"\]\))', word)
            assert node, word
            nodes.add(node.group(1))
    assert depth == 0


@pytest.mark.parametrize("path, model", list(_models()))
def test_graph_draws_every_model(path, model):
    graph, diags = build(specc.load(path), model)
    assert diags == []
    for depth in (None, 1, 2):
        d = drawing(graph, depth)
        dot = to_dot(d)
        _check_mermaid(to_mermaid(d))
        if shutil.which("dot"):  # Graphviz parses and lays it out
            done = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            assert "<svg" in done.stdout


def test_graph_clusters_blocks_and_collapses_by_depth():
    graph, _ = build(specc.load(ROOT / "specs" / "resnet18.dlspec"))
    dot = to_dot(drawing(graph))
    assert 'subgraph "cluster_layer1" {' in dot and 'label="layer1.0: BasicBlock"' in dot
    assert 'label="layer1.0.downsample"' not in dot  # layer1.0 keeps its stride: no downsample
    assert 'label="layer2.0.downsample"' in dot
    assert '"layer1_0_conv1" -> "layer1_0_bn1" [label="[N, 64, 56, 56]"];' in dot
    collapsed = drawing(graph, depth=2)
    groups = [b for c in collapsed.root.children.values() for b in c.boxes]
    assert [b.label for b in groups[:2]] == [("layer1.0", "BasicBlock"), ("layer1.1", "BasicBlock")]
    assert ("group:layer1.0", "group:layer1.1", "[N, 64, 56, 56]") in collapsed.edges
    assert all(a != b for a, b, _ in collapsed.edges)
    flat = drawing(graph, depth=1)
    assert not flat.root.children and len(flat.root.boxes) == 2 + 4 + 4 + 3  # in/out, stem, layers, head


def test_graph_cli(tmp_path, capsys, monkeypatch):
    spec = str(ROOT / "specs" / "digits_cnn.dlspec")
    assert main(["graph", spec, "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD\n")
    assert main(["graph", spec, "-o", str(tmp_path / "g.dot")]) == 0
    assert (tmp_path / "g.dot").read_text().startswith('digraph "DigitsCNN" {')
    assert main(["graph", str(ROOT / "specs" / "dcgan.dlspec")]) == 2  # two models: say which (usage)
    assert main(["graph", str(ROOT / "specs" / "dcgan.dlspec"), "--model", "Generator"]) == 0
    assert main(["graph", spec, "--format", "png"]) == 2  # png needs -o
    capsys.readouterr()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["graph", spec, "--format", "svg"]) == 2
    assert "install Graphviz" in capsys.readouterr().err


@pytest.mark.skipif(not shutil.which("dot"), reason="Graphviz is not installed")
def test_graph_renders_svg_and_png(tmp_path):
    spec = str(ROOT / "specs" / "resnet18.dlspec")
    assert main(["graph", spec, "--format", "svg", "--depth", "2", "-o", str(tmp_path / "g.svg")]) == 0
    assert "<svg" in (tmp_path / "g.svg").read_text()
    assert main(["graph", spec, "--format", "png", "-o", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tools_do_not_import_torch(tmp_path):
    code = ("import sys; from specc.cli import main; spec = 'specs/resnet18.dlspec'; "
            f"assert main(['fmt', '--check', spec]) in (0, 1); "
            f"assert main(['convert', spec, '--to', 'yaml', '-o', {str(tmp_path / 'r.yaml')!r}]) == 0; "
            "assert main(['graph', spec, '--format', 'mermaid']) == 0; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ---- SARIF, docs, hooks -----------------------------------------------------------------
URI_REFERENCE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")  # RFC 3986 characters


def test_sarif_validates_against_the_official_schema(tmp_path, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    folder = tmp_path / "with space"
    folder.mkdir()
    (folder / "bad.dlspec").write_text("model M {\n  input x: float32[N, 4]\n  y = x |> Lineer(2)\n  output y\n}\n")
    for paths in ([str(ROOT / "tests" / "diagnostics" / "err")], [str(folder)], [str(ROOT / "specs")]):
        main(["check", "--format", "sarif", *paths])
        log = json.loads(capsys.readouterr().out)
        assert list(validator.iter_errors(log)) == []
        for result in log["runs"][0]["results"]:
            rule = log["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"]]
            assert rule["id"] == result["ruleId"]
            for location in result.get("locations", []):
                assert URI_REFERENCE.fullmatch(location["physicalLocation"]["artifactLocation"]["uri"])
    assert log["runs"][0]["results"] == []  # specs/ is clean


def test_check_of_a_folder_reports_unreadable_files_and_checks_the_rest(tmp_path, capsys):
    """A broken link or a pipe is that file's E0901 (located: GitHub's SARIF upload needs a location
    on every result); hidden files are skipped, and a file named twice is checked once."""
    shutil.copy(ROOT / "specs" / "tutorial_mlp.dlspec", tmp_path / "good.dlspec")
    (tmp_path / "broken.dlspec").symlink_to(tmp_path / "gone.dlspec")
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")
    assert main(["check", "--format", "sarif", str(tmp_path), str(tmp_path / "good.dlspec"),
                 str(tmp_path / "." / "good.dlspec")]) == 1
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert [(r["ruleId"], r["message"]["text"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
            for r in results] == [("E0901", f"{tmp_path / 'broken.dlspec'} is a link to a missing file", 1),
                                  ("E0901", f"{tmp_path / 'pipe.yaml'} is not a regular file", 1)]
    assert main(["check", str(tmp_path), str(tmp_path / "good.dlspec")]) == 1
    assert capsys.readouterr().out.endswith("checked 3 files: 2 errors\n")


def test_docs_ops_md_is_current():
    from specc.opdocs import markdown

    assert (ROOT / "docs" / "ops.md").read_text() == markdown(), \
        "docs/ops.md is stale: regenerate it with `python -m specc.opdocs > docs/ops.md`"


def test_pre_commit_hooks():
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"specc-check", "specc-fmt"}
    assert hooks["specc-check"]["entry"] == "specc check" and hooks["specc-fmt"]["entry"] == "specc fmt"
    for hook in hooks.values():
        files = re.compile(hook["files"])
        assert files.search("specs/resnet18.dlspec")
        assert not files.search(".github/workflows/ci.yml")  # YAML that is not a spec is left alone
        assert hook["language"] == "python"


def test_graph_ids_of_inputs_and_outputs_never_meet_a_layers(tmp_path, capsys):
    path = tmp_path / "names.dlspec"
    path.write_text("spec 1\nmodel M {\n  input x: float32[N, 4]\n  h = x |> in_x: Linear(4)\n"
                    "  y = h |> out_y: Linear(2)\n  output y\n}\n")
    assert main(["graph", str(path)]) == 0
    edges = [line.split(" [")[0].strip() for line in capsys.readouterr().out.splitlines() if "->" in line]
    assert edges == ['"input:x" -> "in_x"', '"in_x" -> "out_y"', '"out_y" -> "output:y"']


def test_convert_an_input_type_written_over_two_lines(tmp_path, capsys):
    path = tmp_path / "m.dlspec"
    path.write_text("spec 1\nmodel M {\n  input x: float32[N,  # batch\n    4]\n  y = x |> Linear(2)\n  output y\n}\n")
    assert main(["convert", str(path), "--to", "yaml"]) == 0
    yaml_path = tmp_path / "m.yaml"
    yaml_path.write_text(capsys.readouterr().out)
    assert "x: float32[N, 4]" in yaml_path.read_text()
    assert specc.load(yaml_path).models["M"].inputs.keys() == {"x"} and specc.check([yaml_path]) == []


def test_a_spec_of_several_models_says_how_to_choose_one(capsys):
    dcgan = str(ROOT / "specs" / "dcgan.dlspec")
    assert main(["summary", dcgan]) == 2
    assert "help: --model Generator on the command line, model=\"Generator\" in Python" in capsys.readouterr().err
    assert main(["summary", dcgan, "--model", "Nope"]) == 2
    assert "help: its models: Generator, Discriminator" in capsys.readouterr().err


def test_fmt_reports_an_expression_too_deep_to_walk(tmp_path, capsys):
    path = tmp_path / "deep.dlspec"
    text = "spec 1\nb = " + "-" * 1000 + "1\n"
    path.write_text(text)
    assert main(["fmt", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error[E0107]" in err and f"--> {path}:2:1005" in err and "internal error" not in err
    assert path.read_text() == text


def test_convert_keeps_strings_of_any_character(tmp_path):
    text = (ROOT / "specs" / "tutorial_mlp.dlspec").read_text().replace(
        "  metrics = [accuracy]\n", '  metrics = [accuracy]\n  early_stop { monitor = "val/😀\\tä\\\\\\"", patience = 2 }\n')
    dlspec = tmp_path / "m.dlspec"
    dlspec.write_text(text)
    yaml_path = tmp_path / "m.yaml"
    yaml_path.write_text(to_yaml(text, str(dlspec)))
    assert specc.load(yaml_path).train == specc.load(dlspec).train
    assert specc.load(dlspec).train.early_stop.monitor == 'val/😀\tä\\"'
    assert to_dlspec(yaml_path.read_text(), str(yaml_path)) == format_text(text)


def test_yaml_to_dlspec_keeps_the_comment_after_a_block_scalar_header():
    text = ("models:\n  M:\n    inputs: {x: 'float32[N, 4]'}\n    body:\n      - |-  # the stem\n"
            "        y = x\n          |> Linear(2)  # head\n    outputs: [y]\n")
    out = to_dlspec(text, "m.yaml")
    assert "  y = x           # the stem\n    |> Linear(2)  # head\n" in out


@pytest.mark.parametrize("yaml_text, where, checked", [
    ('models:\n  "my model":\n    inputs: {x: "float32[N, 4]"}\n    outputs: [x]\n', "3:3", ["E0202"]),
    ('models:\n  M:\n    inputs: {"a-b": "float32[N, 4]"}\n    outputs: ["a-b"]\n', "4:14", ["E0202", "E0202"]),
    ('constants:\n  model: 2\n', "3:3", []),  # a name in YAML, a keyword where a dlspec constant stands
])
def test_convert_reports_yaml_names_dlspec_cannot_hold(tmp_path, capsys, yaml_text, where, checked):
    path = tmp_path / "m.yaml"
    path.write_text("spec: 1\n" + yaml_text)
    assert [d.code for d in specc.check([path])] == checked  # a name must be one in YAML too
    assert main(["convert", str(path), "--to", "dlspec"]) == 1
    err = capsys.readouterr().err
    said = "is not a name" if checked else "the .dlspec form cannot hold the name"  # checked before converted
    assert "error[E0202]: " in err and said in err and f"{path}:{where}" in err
    assert "internal error" not in err


def test_graph_draws_one_edge_per_value(tmp_path):
    path = tmp_path / "m.dlspec"
    path.write_text("model M {\n  input x: float32[N, 4]\n  a, b = Chunk(x, 2, dim = -1)\n  y = a + b\n  output y\n}\n")
    graph, diags = build(specc.load(path), "M")
    assert diags == []
    for depth in (None, 1):
        edges = [(a, b) for a, b, _ in drawing(graph, depth).edges]
        assert edges.count(("chunk_0", "add_0")) == 2, edges  # a and b


def test_fmt_breaks_a_pipeline_that_its_joined_lines_make_too_long(tmp_path):
    """The break inside `GELU(...)` is joined: the one line was 130 columns, broken only by a second fmt."""
    path = tmp_path / "long.dlspec"
    path.write_text('spec 1\n\nmodel M {\n  input x: float32[N, 16]\n  y = x |> first_layer: Linear(16) |> '
                    'GELU(approximate = "tanh"\n  ) |> second_layer: Linear(16) |> third_layer: Linear(16) '
                    '|> Dropout(0.1)\n  output y\n}\n')
    assert main(["fmt", str(path)]) == 0
    assert '  y = x\n    |> first_layer: Linear(16)\n    |> GELU(approximate = "tanh")\n' in path.read_text()
    assert main(["fmt", "--check", str(path)]) == 0


def test_convert_escapes_comment_characters_yaml_refuses(tmp_path):
    path = tmp_path / "del.dlspec"
    path.write_bytes("spec 1\n# a \x7f b \x85 c: [ \r d\nmodel M {\n  input x: float32[N, 4]\n  output x\n}\n".encode())
    assert main(["convert", str(path), "--to", "yaml", "-o", str(tmp_path / "del.yaml")]) == 0
    assert "  # a \\x7f b \\x85 c: [ \\r d\n" in (tmp_path / "del.yaml").read_text()
    assert specc.check([tmp_path / "del.yaml"]) == []


def test_a_second_spec_header_is_an_error_as_in_yaml(tmp_path):
    path = tmp_path / "twice.dlspec"
    path.write_text("spec 1\nspec 1\nmodel M {\n  input x: float32[N, 4]\n  output x\n}\n")
    (d,) = specc.check([path])
    assert (d.code, d.message, d.span.line) == ("E0208", "the `spec` header appears twice", 2)


def test_convert_into_another_folder_rewrites_the_relative_imports(tmp_path):
    yaml_path = tmp_path / "elsewhere" / "r18.yaml"
    yaml_path.parent.mkdir()
    assert main(["convert", str(ROOT / "specs" / "resnet18.dlspec"), "--to", "yaml", "-o", str(yaml_path)]) == 0
    assert specc.check([str(yaml_path)]) == []  # std/resnet.dlspec is found from the new folder
    (tmp_path / "link.dlspec").symlink_to(ROOT / "specs" / "resnet18.dlspec")  # imports are from the real file
    assert main(["convert", str(tmp_path / "link.dlspec"), "--to", "yaml", "-o", str(yaml_path)]) == 0
    assert specc.check([str(yaml_path)]) == []
    back = tmp_path / "third" / "r18.dlspec"  # and back, into a third folder
    back.parent.mkdir()
    assert main(["convert", str(yaml_path), "--to", "dlspec", "-o", str(back)]) == 0
    assert specc.check([str(back)]) == []
