"""`specc check` as CI meets it: which files a path, folder or glob picks, and the text, JSON, GitHub
and SARIF reports of odd file names, wide characters and line breaks."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import specc
from specc import report
from specc.checker import expand_paths
from specc.cli import main

DATA = Path(__file__).resolve().parent / "data"

BAD = "spec 1\nmodel M {\n  input x: float32[N, 4]\n  y = x |> Lineer(2)\n  output y\n}\n"
TOO_LARGE = "spec 1\nmodel M {\n  input x: float32[N, 4]\n  y = x |> fc: Linear(10)\n  output y\n}\n"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # reports show paths relative to the working directory


def write(name: str, text: str = BAD) -> str:
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    Path(name).write_text(text)
    return name


# ---- which files ------------------------------------------------------------------------------------
def test_a_double_star_glob_does_not_follow_a_link_loop():
    write("d/sub/a.dlspec")
    Path("d/sub/loop").symlink_to("..")  # glob.glob followed it, forty folders deep
    assert expand_paths(["d/**/*.dlspec"]) == ["d/sub/a.dlspec"]
    assert expand_paths(["d"]) == ["d/sub/a.dlspec"]


def test_a_glob_picks_what_a_folder_would():
    """Spec files (a broken link too: it is reported), and the specs of the folders it matches;
    not the README, nor hidden files."""
    for name in ("d/b.dlspec", "d/sub/a.yaml", "d/.hidden.dlspec"):
        write(name)
    Path("d/README.md").write_text("# specs\n")
    Path("d/gone.yml").symlink_to("nowhere.yml")
    assert expand_paths(["d/*"]) == ["d/b.dlspec", "d/gone.yml", "d/sub/a.yaml"]
    assert expand_paths(["d/*"]) == expand_paths(["d"])
    assert expand_paths(["d/s*/*.yaml", "d/*.md"]) == ["d/sub/a.yaml"]
    assert expand_paths(["d/*.txt"]) == ["d/*.txt"]  # nothing matched: reading it says so


def test_a_file_reached_twice_is_checked_once(capsys):
    write("bad.dlspec")
    Path("link.dlspec").symlink_to("bad.dlspec")
    assert expand_paths(["bad.dlspec", "./bad.dlspec", "link.dlspec", "*.dlspec"]) == ["bad.dlspec"]
    assert main(["check", "bad.dlspec", "link.dlspec"]) == 1
    assert capsys.readouterr().out.endswith("checked 1 file: 1 error\n")


@pytest.mark.parametrize("folder", ["./specs", "specs/../specs"])
def test_an_imported_files_errors_are_reported_once_however_the_folder_is_written(folder):
    write("specs/std/lib.dlspec", "spec 1\nblock B(n) (x) {\n  return x |> Lineer(n)\n}\n")
    write("specs/a.dlspec", "spec 1\nimport \"std/lib.dlspec\"\nmodel M {\n  input x: float32[N, 4]\n"
                            "  y = x |> B(2)\n  output y\n}\n")
    assert [(d.code, d.span.line) for d in specc.check([folder])] == [("E0402", 3)]


def test_a_file_too_large_is_located():
    """GitHub's SARIF upload refuses a result without a location."""
    Path("huge.dlspec").write_bytes(b"spec 1\n" + b"#" * (16 * 1024 * 1024))
    (d,) = specc.check(["huge.dlspec"])
    assert (d.code, d.span) == ("E0602", ("huge.dlspec", 1, 1, 1, 2))


# ---- text ---------------------------------------------------------------------------------------------
def test_carets_under_wide_characters(capsys):
    write("wide.dlspec", BAD.replace("y = x |> Lineer(2)", 'y = x |> Linear(2, foo = "名前😀") |> ReLU'))
    assert main(["check", "wide.dlspec"]) == 1
    assert capsys.readouterr().out.splitlines()[2:5] == [
        "  |",
        '4 |   y = x |> Linear(2, foo = "名前😀") |> ReLU',
        "  |                      ^^^^^^^^^^^^^^ unknown argument"]


@pytest.mark.parametrize("name, comment", [("a.dlspec", "# a \u2028 b \f c\n"), ("a.yaml", "# a \u2028# b\n")])
def test_the_snippet_is_the_line_the_reader_counted(name, comment):
    """The dlspec lexer breaks lines at \\n only (str.splitlines also at \\f, U+2028, ...); PyYAML at U+2028 too."""
    text = BAD if name.endswith(".dlspec") else (
        'spec: 1\nmodels:\n  M:\n    inputs: {x: "float32[N, 4]"}\n    body:\n      - y = x |> Lineer(2)\n'
        "    outputs: [y]\n")
    write(name, text.replace("\n", "\n" + comment, 1))
    (d,) = specc.check([name])
    assert d.render().splitlines()[3].endswith("y = x |> Lineer(2)")


def test_a_snippet_shows_tabs_and_control_characters_as_spaces():
    """A terminal or CI log would act on an escape sequence or a carriage return in the line."""
    write("c.dlspec", BAD.replace("  y = x |> Lineer(2)", "\ty = x |> Lineer(2)  #\r \x1b[2J"))
    (d,) = specc.check(["c.dlspec"])
    assert d.render().splitlines()[3:5] == ["4 |  y = x |> Lineer(2)  #   [2J", "  |           ^^^^^^ not defined"]


def test_an_error_at_the_end_of_the_file_shows_the_empty_line():
    write("eof.dlspec", "spec 1\nmodel M\n")
    (d,) = specc.check(["eof.dlspec"])
    assert d.render().splitlines()[1:] == ["  --> eof.dlspec:3:1", "  |", "3 | ", "  | ^ unexpected here"]


# ---- JSON, GitHub, SARIF --------------------------------------------------------------------------------
ODD_NAMES = ["with space.dlspec", "ünï 名.dlspec", "a,b:c%d.dlspec", "new\nline.dlspec"]


def test_json_is_one_document_with_every_field(capsys):
    for name in ODD_NAMES:
        write(name)
    write("csv.dlspec", TOO_LARGE + 'train {\n  data csv { path = "none.csv", inputs { x = "*" }, '
                                    'targets { label = "y" } }\n  targets { label = int64[N] }\n'
                                    "  loss cross_entropy {}\n}\n")
    assert main(["check", "--format", "json", "."]) == 1
    out = json.loads(capsys.readouterr().out)
    assert (out["files"], out["errors"], out["warnings"]) == (5, 4, 1)
    assert sorted(d["file"] for d in out["diagnostics"]) == sorted(f"./{n}" for n in ODD_NAMES + ["csv.dlspec"])
    assert all(list(d) == ["code", "severity", "message", "file", "line", "column", "end_line", "end_column",
                           "label", "notes", "help"] for d in out["diagnostics"])


def test_github_escapes_properties_and_keeps_notes_and_help(capsys):
    write("a,b:c%d\n.dlspec", TOO_LARGE)
    assert main(["check", "--format", "github", "--max-params", "10", "a,b:c%d\n.dlspec"]) == 1
    assert capsys.readouterr().out == (
        "::error file=a%2Cb%3Ac%25d%0A.dlspec,line=2,col=7,endLine=2,endColumn=8,title=E0601::"
        "model M has 50 parameters, more than the limit of 10 (too large)%0A"
        "note: the largest layer is `fc` (50 parameters), defined at a,b:c%25d%0A.dlspec:4:16%0A"
        "help: nothing was allocated; shrink the model or raise the limit with --max-params\n")


def test_sarif_of_odd_file_names(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    for name in ODD_NAMES:
        write(name)
    assert main(["check", "--format", "sarif", *ODD_NAMES]) == 1
    log = json.loads(capsys.readouterr().out)
    assert list(jsonschema.Draft7Validator(schema).iter_errors(log)) == []
    run = log["runs"][0]
    assert (log["version"], run["columnKind"], run["tool"]["driver"]["rules"][0]["id"]) == \
        ("2.1.0", "unicodeCodePoints", "E0402")
    assert [r["locations"][0]["physicalLocation"] for r in run["results"]] == [
        {"artifactLocation": {"uri": uri}, "region": {"startLine": 4, "startColumn": 12, "endLine": 4, "endColumn": 18}}
        for uri in ["with%20space.dlspec", "%C3%BCn%C3%AF%20%E5%90%8D.dlspec", "a%2Cb%3Ac%25d.dlspec",
                    "new%0Aline.dlspec"]]
    assert run["results"][0]["message"]["text"] == \
        "unknown op or block `Lineer` (not defined)\nhelp: did you mean `Linear`?"


@pytest.mark.skipif(sys.platform != "linux", reason="a file name that is not UTF-8 needs a file system that allows one")
def test_every_format_reports_a_file_whose_name_is_not_utf8(capsysbinary):
    name = os.fsdecode(b"bad\xffname.dlspec")  # Python's stand-in for the byte: a lone surrogate
    write(name)
    for form in report.FORMATS:
        assert main(["check", "--format", form, name]) == 1, form
        out = capsysbinary.readouterr().out
        if form == "sarif":
            uri = json.loads(out)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
            assert uri == {"uri": "bad%FFname.dlspec"}
        else:
            assert b"bad\xffname.dlspec" in out or form == "json", (form, out)


def test_every_format_reports_nothing_wrong_alike(capsys):
    write("ok.dlspec", TOO_LARGE)
    outputs = {}
    for name in report.FORMATS:
        assert main(["check", "--format", name, "ok.dlspec"]) == 0
        outputs[name] = capsys.readouterr().out
    assert outputs["text"] == "checked 1 file: ok\n" and outputs["github"] == ""
    assert json.loads(outputs["json"])["diagnostics"] == json.loads(outputs["sarif"])["runs"][0]["results"] == []


def test_a_control_character_in_the_message_is_shown_escaped(capsys):
    assert main(["check", write("esc.dlspec", "spec 1\nx = 1 \x1b 2\n")]) == 1
    assert "error[E0105]: unexpected character `\\x1b`" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["_1", "1__0", "x"])
def test_max_params_takes_pythons_digits_only(text, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--max-params", text, write("ok.dlspec", TOO_LARGE)])
    assert exit_.value.code == 2 and f"expected a whole number, got {text!r}" in capsys.readouterr().err


def test_json_notes_give_file_line_and_column_apart(capsys):
    """A file name may hold `:`: a note's place is three fields, not one `file:line:col` string."""
    write("a:b.dlspec", "spec 1\nblock B(o) (x) {\n  return x |> Lineer(o)\n}\nmodel M {\n"
                        "  input x: float32[N, 4]\n  y = x |> B(3)\n  output y\n}\n")
    assert main(["check", "--format", "json", "a:b.dlspec"]) == 1
    (d,) = json.loads(capsys.readouterr().out)["diagnostics"]
    assert d["notes"] == [{"message": "in block B, used", "file": "a:b.dlspec", "line": 7, "column": 12}]


def test_yaml_a_refused_character_and_lone_carriage_returns_are_located():
    (d,) = specc.check([write("ff.yaml", "spec: 1\nmodels:\n  M: \x0c\n")])
    assert (d.code, d.message, d.span[1:3]) == ("E0204", "invalid YAML: the character #x000c is not allowed in YAML",
                                               (3, 6))
    text = 'spec: 1\rmodels:\r  M:\r    inputs: {x: "float32[N, 4]"}\r    body: ["y = x |> Lineer(2)"]\r    outputs: [y]\r'
    (d,) = specc.check([write("cr.yaml", text)])
    assert (d.code, d.span[1:3]) == ("E0402", (5, 22))


def test_a_control_character_from_a_yaml_string_is_shown_escaped(capsys):
    write("esc.yaml", 'spec: 1\nmodels:\n  M:\n    inputs: {x: "float32[N, 4]"}\n    outputs: [x]\ntrain:\n'
                      '  data: {kind: synthetic}\n  targets: {label: "int64[N]"}\n  loss: {kind: cross_entropy}\n'
                      '  early_stop: {monitor: "\\e[2Jval"}\n')
    assert main(["check", "esc.yaml"]) == 1
    out = capsys.readouterr().out
    assert "cannot monitor `\\x1b[2Jval`" in out and "\x1b" not in out
