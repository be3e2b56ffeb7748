"""No input, however broken, ends in a traceback: truncated and byte-mutated versions of every
spec in specs/ give exit code 0 or 1, and every error message is located."""
import random
import shutil
import subprocess
import sys
from pathlib import Path

import specc
from specc.checker import INTERNAL_ERROR
from specc.errors import Diagnostic

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.dlspec"))


def _variants(text: str, rng: random.Random, count: int):
    data = text.encode()
    for _ in range(count):
        kind = rng.randrange(4)
        if kind == 0:  # truncate
            yield data[: rng.randrange(len(data))]
        elif kind == 1:  # flip a byte
            i = rng.randrange(len(data))
            yield data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        elif kind == 2:  # delete a span
            i = rng.randrange(len(data))
            yield data[:i] + data[i + rng.randrange(1, 20):]
        else:  # duplicate a span
            i = rng.randrange(len(data))
            j = min(len(data), i + rng.randrange(1, 40))
            yield data[:j] + data[i:j] + data[j:]


def test_mutated_specs_never_crash(tmp_path):
    rng = random.Random(1234)
    shutil.copytree(ROOT / "specs" / "std", tmp_path / "std")  # the imports resolve: their blocks are checked too
    n = 0
    for spec in SPECS:
        for i, variant in enumerate(_variants(spec.read_text(), rng, 25)):
            path = tmp_path / f"{spec.stem}_{i}.dlspec"
            path.write_bytes(variant)
            diagnostics = specc.check([str(path)])  # must not raise
            for d in diagnostics:
                assert isinstance(d, Diagnostic)
                assert d.code != INTERNAL_ERROR and d.span is not None, d.render()
                d.render()
            n += 1
    assert n >= 25 * len(SPECS) > 0


def test_the_mutation_test_would_see_an_internal_error(monkeypatch, tmp_path):
    """check() reports a crash as a diagnostic (E0999), which the mutation test refuses."""
    import specc.checker

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")
    monkeypatch.setattr(specc.checker, "build_all", crash)
    assert [d.code for d in specc.check([str(ROOT / "specs" / "digits_cnn.dlspec")])] == [INTERNAL_ERROR]


def test_cli_exit_codes_on_mutations(tmp_path):
    rng = random.Random(99)
    spec = ROOT / "specs" / "digits_cnn.dlspec"
    for i, variant in enumerate(_variants(spec.read_text(), rng, 12)):
        path = tmp_path / f"v{i}.dlspec"
        path.write_bytes(variant)
        out = subprocess.run([sys.executable, "-m", "specc", "check", str(path)], capture_output=True, text=True)
        assert out.returncode in (0, 1), out.stderr
        assert "Traceback" not in out.stdout + out.stderr


def _specc(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specc", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_unreadable_inputs_are_refused_with_a_message(tmp_path):
    """A device, a pipe, a folder: refused from what stat says, before any read that might not end."""
    import os

    fifo = tmp_path / "pipe.dlspec"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    (tmp_path / "imports.dlspec").write_text(
        'spec 1\nimport "folder"\nimport "/dev/zero"\nmodel M {\n  input x: float32[N, 4]\n  output x\n}\n')
    found = specc.check([fifo, "/dev/zero", tmp_path / "imports.dlspec"])
    assert [(d.code, d.message.split(": ", 1)[-1]) for d in found] == [
        ("E0901", f"{fifo} is not a regular file"),
        ("E0901", "/dev/zero is not a regular file"),
        ("E0501", f"{tmp_path / 'folder'} is a folder"),
        ("E0501", "/dev/zero is not a regular file"),
    ]
    assert all(d.span is not None for d in found[2:])


def test_huge_numbers_are_refused_not_converted(tmp_path):
    """Python refuses to turn integers of over 4,300 digits into text and back: specc stops long before."""
    dlspec = tmp_path / "big.dlspec"
    dlspec.write_text("spec 1\nmodel M {\n  input x: float32[N, 4]\n  y = x |> Linear(" + "9" * 5000 + ")\n  output y\n}\n")
    yaml_spec = tmp_path / "big.yaml"
    yaml_spec.write_text("spec: " + "9" * 5000 + "\nmodels:\n  M:\n    inputs: {x: 'float32[N, 4]'}\n    outputs: [x]\n")
    for path, where in ((dlspec, (4, 19)), (yaml_spec, (1, 7))):
        result = _specc("check", path, "--format", "json")
        assert result.returncode == 1, result.stderr
        assert '"code": "E0602"' in result.stdout and f'"line": {where[0]}' in result.stdout
        assert f'"column": {where[1]}' in result.stdout


def test_yaml_values_their_explicit_tag_refuses_are_located_errors(tmp_path):
    """The tag's own constructor raised (KeyError, AttributeError, IndexError...): an internal error."""
    from specc.frontend.load import load_file

    cases = {"spec: !!bool maybe": '"maybe" is not a valid !!bool', "spec: !!timestamp 1": '"1" is not a valid !!timestamp',
             "spec: !!float": '"" is not a valid !!float', "spec: !!int abc": '"abc" is not a valid !!int',
             "!!binary x: 1": '"x" is not a valid !!binary', "spec: !!binary aGVsbG8=": "unsupported YAML tag !!binary"}
    for text, message in cases.items():
        path = tmp_path / "tagged.yaml"
        path.write_text(text + "\n")
        try:
            load_file(path)
        except specc.SpecError as err:
            assert [(d.code, d.message) for d in err.diagnostics][:1] == [("E0202", message)], text
            assert err.diagnostics[0].span.line == 1
        else:
            raise AssertionError(f"{text!r} was accepted")


def test_output_cut_short_by_its_reader_is_not_success():
    """`specc check bad/ | head -1`: the status of a writer its reader left (128 + SIGPIPE), never 0."""
    process = subprocess.Popen([sys.executable, "-m", "specc", "check", str(ROOT / "tests" / "diagnostics" / "err")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before it writes a line
    assert process.wait() == 141 and process.stderr.read() == b""
    process.stderr.close()


def test_cli_usage_problems_exit_2_with_one_line(tmp_path):
    spec = ROOT / "specs" / "tutorial_mlp.dlspec"
    (tmp_path / "taken").write_text("a file where a folder should go")
    (tmp_path / "garbage.pt").write_bytes(b"\x80\x02not a checkpoint")
    for args in (("summary", tmp_path / "missing.dlspec"),
                 ("build", spec, "-o", tmp_path / "taken"),
                 ("build", spec, "-o", tmp_path / "out", "--weights", tmp_path / "garbage.pt"),
                 ("emit", spec, "--python", "-o", tmp_path)):
        result = _specc(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert (tmp_path / "taken").read_text() == "a file where a folder should go"


def test_an_empty_path_argument_is_a_usage_error(capsys):
    """It named no file and crashed `expand_paths` (a TypeError: an internal error)."""
    import pytest

    from specc.cli import main

    spec = str(ROOT / "specs" / "tutorial_mlp.dlspec")
    for argv in (["check", ""], ["fmt", ""], ["summary", ""], ["build", spec, "-o", ""], ["train", spec, "--out", ""],
                 ["build", spec, "--weights", ""], ["plot", ""]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert capsys.readouterr().err.endswith(": expected a path, got an empty string\n"), argv


def test_damaged_weights_files_say_so_in_words(tmp_path, capsys):
    """Not "[Errno 22] Invalid argument", nor torch's advice to load with weights_only=False."""
    import torch

    from specc.cli import main

    spec = str(ROOT / "specs" / "tutorial_mlp.dlspec")
    torch.save({"model": {"w": torch.ones(100_000)}}, tmp_path / "good.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "good.pt").read_bytes()[:5000])
    (tmp_path / "garbage.pt").write_bytes(b"\x80\x02not a checkpoint" * 10)
    for name, why in (("cut.pt", "it is damaged or cut short"),
                      ("garbage.pt", "it holds no checkpoint of tensors and plain values (damaged, or code specc "
                                     "will not run)")):
        assert main(["build", spec, "-o", str(tmp_path / "out"), "--weights", str(tmp_path / name)]) == 2
        assert capsys.readouterr().err.endswith(f"specc: error: cannot load weights from {tmp_path / name}: {why}\n")


def test_a_missing_optional_package_names_the_extra(monkeypatch, capsys):
    """Without torch (or another extra's package) a command says what to install: exit 2, no trace."""
    from specc.cli import main

    spec = str(ROOT / "specs" / "tutorial_mlp.dlspec")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as if not installed
    assert main(["emit", spec, "--python"]) == 2
    assert capsys.readouterr().err == ("specc: error: `specc emit` needs torch, which is not installed: "
                                       "pip install 'specc[torch]'\n")
    # train needs more than torch (scikit-learn, torchmetrics, ...): its own extra has all of it
    assert main(["train", spec]) == 2
    assert capsys.readouterr().err == ("specc: error: `specc train` needs torch, which is not installed: "
                                       "pip install 'specc[train]'\n")


def test_an_error_raised_over_an_interrupt_is_the_interrupt(monkeypatch, capsys):
    """torch's checkpoint writer raises its own RuntimeError over the Ctrl-C that stopped it:
    "interrupted" and 130, not an internal error."""
    from specc import cli

    def stopped_while_writing(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 29248 vs 29144")
    monkeypatch.setattr(cli, "cmd_check", stopped_while_writing)
    assert cli.main(["check", "x.dlspec"]) == 130
    assert capsys.readouterr().err == "specc: interrupted\n"


def test_the_extra_named_for_each_optional_package_installs_it():
    import re
    import tomllib

    from specc.cli import EXTRAS

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    distributions = {"sklearn": "scikit-learn", "torch_tensorrt": "torch-tensorrt"}
    for module, extra in EXTRAS.items():
        names = {re.split(r"[<>=\[ ]", req)[0] for req in extras[extra]}
        assert distributions.get(module, module) in names, (module, extra)


def test_api_rejects_unknown_parameters_and_dtypes():
    import pytest

    spec = ROOT / "specs" / "tutorial_mlp.dlspec"
    with pytest.raises(specc.SpecError) as info:
        specc.compile(spec, params={"clases": 3})
    assert "has no parameter `clases`" in str(info.value) and "did you mean `classes`?" in str(info.value)
    with pytest.raises(TypeError, match="params must be a dict"):
        specc.compile(spec, params=[1])
    import torch

    for dtype in ("float13", "int64"):
        with pytest.raises(ValueError, match="floating-point dtype"):
            specc.compile(spec, dtype=dtype)
    with pytest.raises(ValueError, match="device must be a torch device such as 'cpu', 'cuda' or 'meta', got 'gpu0'"):
        specc.compile(spec, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="this machine has no CUDA device"):
            specc.compile(spec, device="cuda")
    with pytest.raises(TypeError, match="compile must be True or False"):
        specc.compile(spec, compile="yes")
    with pytest.raises(ValueError, match="nproc must be a whole number"):
        specc.compile(spec).train(nproc="2")


def test_reserved_layer_names_are_torchs_module_attributes(tmp_path):
    """The frontend cannot import torch, so it lists the names; they must cover this torch's, and
    a name torch does not use stays free (`_proj`, and `graph` below the top level)."""
    from torch import fx, nn

    from specc.ir.build import GRAPH_MODULE_ATTRIBUTES, MODULE_ATTRIBUTES

    def names(obj) -> set:
        return {n for n in set(dir(obj)) | set(vars(obj)) if not n.startswith("__")}

    module, graph_module = nn.Module(), fx.GraphModule(nn.Module(), fx.Graph())
    assert names(module) <= MODULE_ATTRIBUTES, sorted(names(module) - MODULE_ATTRIBUTES)
    assert names(graph_module) - names(module) <= GRAPH_MODULE_ATTRIBUTES
    path = tmp_path / "free.dlspec"
    path.write_text("spec 1\nblock Gnn(w = 8) (x) {\n  return x |> graph: Linear(w) |> _proj: Linear(w)\n}\n"
                    "model M {\n  input x: float32[N, 8]\n  y = x |> gnn: Gnn |> _head: Linear(2)\n  output y\n}\n")
    model = specc.compile(path).model
    assert [k for k, _ in model.named_parameters()] == [
        "gnn.graph.weight", "gnn.graph.bias", "gnn._proj.weight", "gnn._proj.bias", "_head.weight", "_head.bias"]


def test_a_byte_order_mark_is_not_a_character(tmp_path):
    path = tmp_path / "bom.dlspec"
    path.write_bytes(b"\xef\xbb\xbf" + (ROOT / "specs" / "tutorial_mlp.dlspec").read_bytes())
    assert specc.check([path]) == []


def test_api_and_cli_refuse_nonsense_arguments(tmp_path):
    import pytest

    spec = ROOT / "specs" / "resnet18.dlspec"
    with pytest.raises(ValueError, match="max_params"):
        specc.check([spec], max_params=0)
    with pytest.raises(TypeError, match="model must be the name"):
        specc.compile(spec, model=1)
    with pytest.raises(ValueError, match="depth must be 1 or more"):
        specc.compile(spec, device="meta").summary(depth=0)
    copy = tmp_path / "m.dlspec"
    copy.write_text((ROOT / "specs" / "tutorial_mlp.dlspec").read_text())
    for args in (("summary", spec, "--depth", "0"), ("convert", copy, "--to", "yaml", "-o", copy)):
        assert _specc(*args).returncode == 2, args
    assert copy.read_text() == (ROOT / "specs" / "tutorial_mlp.dlspec").read_text()


def test_yaml_suffixes_in_any_case(tmp_path):
    path = tmp_path / "model.YAML"
    path.write_text("spec: 1\nmodels:\n  M:\n    inputs: {x: 'float32[N, 4]'}\n    body: ['y = x |> Linear(2)']\n"
                    "    outputs: [y]\n")
    assert specc.check([path]) == []
    assert specc.check([tmp_path]) == []  # found in a folder too


def test_api_paths_of_the_wrong_type_are_type_errors():
    import pytest

    for call, arg, message in ((specc.check, b"specs", "paths must be a path or a list of paths, got bytes"),
                               (specc.check, 5, "paths must be a path or a list of paths, got int"),
                               (specc.check, [""], "each path must be a non-empty str or os.PathLike, got ''"),
                               (specc.load, "", "path must be a non-empty str or os.PathLike, got ''"),
                               (specc.compile, 3, "expected a Spec or the path of a spec file, got int")):
        with pytest.raises(TypeError) as err:
            call(arg)
        assert str(err.value) == message


def test_python_callers_may_pass_numpys_numbers_and_tuples():
    """The schema is strict about spec text (`true` is no number); from Python, np.int64(4) and (2, 4) are."""
    import numpy as np

    from specc.train.overrides import apply, from_kwargs

    compiled = specc.compile(ROOT / "specs" / "tutorial_mlp.dlspec", params={"classes": np.int64(3)})
    assert compiled.model.fc3.out_features == 3
    spec = apply(compiled.spec, from_kwargs({"metrics": ("accuracy",), "epochs": np.int32(2),
                                             "schedule": {"kind": "multistep", "milestones": (1, 2)}}))
    assert (spec.train.metrics, spec.train.epochs, spec.train.schedule.milestones) == (["accuracy"], 2, [1, 2])


def test_a_yaml_name_cannot_smuggle_code_into_generated_python(tmp_path):
    """YAML keys are any text; an input name becomes a parameter of the generated forward."""
    import pytest

    ran = tmp_path / "ran"
    path = tmp_path / "m.yaml"
    path.write_text("spec: 1\nmodels:\n  M:\n    inputs: {x: 'float32[N, 4]', \"e=__import__('pathlib').Path("
                    f"r'{ran}').touch()\": 'float32[N, 4]'}}\n    body: ['y = x |> Linear(3)']\n    outputs: [y]\n")
    assert [d.code for d in specc.check([path])] == ["E0202"]
    with pytest.raises(specc.SpecError):
        specc.compile(path)
    assert not ran.exists()


def test_small_specs_that_would_blow_up_are_refused_at_once(tmp_path):
    """Doubling strings, blocks that use themselves twice, sizes multiplied out, and a data path that
    never ends: each refused with a located error, not run until memory or patience runs out."""
    doubling = 'spec 1\na0 = "xxxxxxxxxx"\n' + "".join(f"a{i} = a{i - 1} + a{i - 1}\n" for i in range(1, 40))
    self_doubling = ("spec 1\nblock B(d) (x) {\n  if d > 0 {\n    a = B(x, d - 1)\n    b = B(a, d - 1)\n"
                     "    return b\n  }\n  return x\n}\nmodel M {\n  input x: float32[N, 4]\n  y = x |> B(60)\n"
                     "  output y\n}\n")
    sizes = ("model M {\n  input x: float32[A, B, C, D, E, F, G, H]\n"
             "  s = dim(x, 0) + dim(x, 1) + dim(x, 2) + dim(x, 3) + dim(x, 4) + dim(x, 5) + dim(x, 6) + dim(x, 7)\n"
             "  p = s * s\n  q = p * p\n  r = q * q\n  output x\n}\n")
    endless = ('model M {\n  input x: float32[N, 2]\n  logits = x |> Linear(3)\n  output logits\n}\n'
               'train {\n  data csv { path = "/dev/zero", inputs { x = ["a", "b"] }, targets { label = "c" } }\n'
               "  targets { label = int64[N] }\n  loss cross_entropy {}\n}\n")
    pieces = "model M {\n  input x: float32[N, 1000000000]\n  y = x |> %s\n  output x\n}\n"
    for text, code, words in ((doubling, "E0405", "at most 100,000"), (self_doubling, "E0602", "more than 100,000 times"),
                              (sizes, "E0405", "too many terms"), (endless, "E0702", "not a regular file"),
                              (pieces % "Split(2)", "E0602", "Split would make 500,000,000 pieces"),
                              (pieces % "Chunk(1000000000)", "E0602", "Chunk would make 1,000,000,000 pieces")):
        path = tmp_path / "m.dlspec"
        path.write_text(text)
        (d,) = specc.check([path])
        assert d.code == code and words in d.message, d.render()


def test_a_file_imported_by_many_is_read_once(tmp_path):
    """Each file of a chain importing the next one twice (`f1` and `./f1`) would double the work at every level."""
    for k in range(40):
        imports = f'import "f{k + 1}.dlspec"\nimport "./f{k + 1}.dlspec"\n' if k < 39 else ""
        (tmp_path / f"f{k}.dlspec").write_text(f"spec 1\n{imports}C{k} = {k}\n")
    assert specc.check([tmp_path / "f0.dlspec"]) == []  # seconds, not days


def test_a_long_statement_repeated_by_yaml_aliases_is_refused_before_parsing(tmp_path):
    statement = "c = " + " + ".join(["1"] * 1250)
    (tmp_path / "m.yaml").write_text('spec: 1\nmodels:\n  M:\n    inputs: {x: "float32[N, 4]"}\n'
                                     f'    body: [&s "{statement}", {", ".join(["*s"] * 400)}]\n    outputs: [x]\n')
    assert [d.code for d in specc.check([tmp_path / "m.yaml"])] == ["E0205"]


def test_blocks_nested_around_a_deep_expression_are_a_located_error(tmp_path, monkeypatch):
    """Block nesting and expression depth each have a limit, but together they can pass Python's
    recursion limit (where exactly depends on the stack the check starts from): a located E0603."""
    from specc.ir.build import Builder

    def too_deep(self, name, params=None):
        raise RecursionError("maximum recursion depth exceeded")
    monkeypatch.setattr(Builder, "build_model", too_deep)
    path = tmp_path / "m.dlspec"
    path.write_text("model M {\n  input x: float32[N, 4]\n  y = x |> Linear(2)\n  output y\n}\n")
    (d,) = specc.check([path])
    assert (d.code, d.message, d.span.line) == ("E0603", "model M nests blocks and expressions too deeply to build", 1)


def test_parameters_past_the_machines_memory_are_refused_before_allocating(tmp_path):
    import pytest

    path = tmp_path / "huge.dlspec"
    path.write_text("model M {\n  input x: float32[N, 500000]\n  y = x |> Linear(500000)\n  output y\n}\n")
    assert specc.check([path]) == []  # a size, not an error: the meta device builds it
    assert specc.compile(path, device="meta").ir.param_count == 500000 * 500000 + 500000
    with pytest.raises(specc.SpecError) as err:
        specc.compile(path)  # 1 TB of float32
    (d,) = err.value.diagnostics
    assert d.code == "E0601" and "of memory this cpu device has" in d.message


def test_a_size_past_int64_is_refused(tmp_path):
    path = tmp_path / "m.dlspec"
    path.write_text("model M {\n  input x: float32[N, 3037000500, 3037000500]\n  y = x |> Flatten\n  output y\n}\n")
    (d,) = specc.check([path])
    assert (d.code, d.message) == ("E0602", "Flatten would make float32[N, 9223372037000250000]: more elements than int64 can count")


def test_an_import_reads_spec_files_only(tmp_path):
    """Else a syntax error would show a line of any file the spec names, /etc/passwd included."""
    (tmp_path / "notes.txt").write_text("secret: do not print\n")
    path = tmp_path / "m.dlspec"
    path.write_text('spec 1\nimport "notes.txt"\n')
    (d,) = specc.check([path])
    assert d.code == "E0501" and "is not a spec file (.dlspec, .yaml, .yml)" in d.message
    assert "secret" not in d.render()


def test_import_names_no_file_can_have_are_located_errors(tmp_path):
    """The system refused them with exceptions (ValueError, UnicodeEncodeError, OSError): internal errors."""
    path = tmp_path / "m.yaml"
    for name, why in (("a\\0b.dlspec", "a file name cannot hold a NUL character"),
                      ("\\ud800.yaml", "it has characters no file name on this system can hold"),
                      ("a" * 300 + ".dlspec", "File name too long")):
        path.write_text(f'spec: 1\nimports: ["{name}"]\n')
        (d,) = specc.check([path])
        assert d.code == "E0501" and d.message.endswith(why) and d.span.line == 2, d.message


def test_picking_a_model_wrongly_is_a_located_usage_error(tmp_path, capsys):
    from specc.cli import main

    path = tmp_path / "two.dlspec"
    path.write_text("model A {\n  input x: float32[N, 4]\n  output x\n}\nmodel B {\n  input x: float32[N, 4]\n"
                    "  output x\n}\n")
    for argv, message, line in ((["summary", str(path)], "defines 2 models (A, B); say which one", 5),
                                (["summary", str(path), "--model", "C"], "has no model `C`", 1)):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"error[E0411]: {path} {message}\n  --> {path}:{line}:1" in err


def test_norms_take_half_precision_inputs_to_float32_weights_as_torch_does(tmp_path):
    import torch

    path = tmp_path / "half.dlspec"
    path.write_text("spec 1\nmodel M {\n  input a: float16[N, 4]\n  input b: float32[N, 4]\n  y = a |> LayerNorm\n"
                    "  z = b |> Linear(4)\n  output y, z\n}\n")
    y, z = specc.compile(path).model(torch.randn(2, 4).half(), torch.randn(2, 4))
    assert (y.dtype, z.dtype) == (torch.float16, torch.float32)
    path.write_text(path.read_text().replace("float16[N, 4]", "float64[N, 4]"))  # torch: "mixed dtype (CPU)"
    (d,) = specc.check([path])
    assert (d.code, d.message) == ("E0306", "LayerNorm has float32 weights, the model's dtype, but its input is float64")


def test_a_checkpoint_the_system_will_not_open_says_why(tmp_path, monkeypatch):
    """Only damage reads as damage: a refused permission keeps its own words."""
    import pytest
    import torch

    from specc.train.checkpoint import read

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "w.pt"))
    monkeypatch.setattr(torch, "load", refused)
    with pytest.raises(ValueError, match="^Permission denied$"):
        read(tmp_path / "w.pt")
