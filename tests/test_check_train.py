"""`specc check` runs the training plan's checks; the train and export schemas refuse values that
would crash or mislead `specc train` / `specc build`; a bug on one file does not hide the others."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specc
from specc import checker
from specc.cli import main

ROOT = Path(__file__).resolve().parent.parent

MODEL = """spec 1

model M {
  input x: float32[N, 4]
  logits = x |> fc: Linear(10)
  output logits
}

"""

GOOD_TRAIN = """train {
  data synthetic {}
  targets { label = int64[N] }
  loss cross_entropy {}
}
"""


def write(tmp_path, text: str, name: str = "m.dlspec", model: str = MODEL) -> Path:
    path = tmp_path / name
    path.write_text(model + text)
    return path


def where(path, needle: str) -> tuple[int, int]:
    """1-based (line, column) of the first occurrence of `needle` in the file."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not in {path}")


def located(d) -> tuple:
    return d.span.file, d.span.line, d.span.col


# ---- 1. `specc check` runs the plan ------------------------------------------------------------
PLAN_ERRORS = [
    ("loss cross_entropy { output = nope, target = nolabel }", "targets { label = int64[N] }",
     [("E0701", "the loss's output `nope` is not one of the model's outputs", "output = nope"),
      ("E0701", "the loss's target `nolabel` is not declared", "target = nolabel")]),
    ("loss cross_entropy {}", "targets { label = float32[N] }",
     [("E0701", "cross_entropy with float targets needs class probabilities of the logits' shape [N, 10], "
                "but the target is float32[N]", "label = float32[N]")]),
    ("loss mse {}", "targets { y = float32[N, 3] }",
     [("E0701", "mse needs a target of the output's shape [N, 10], but the target is float32[N, 3]",
       "y = float32[N, 3]")]),
    ("loss cross_entropy {}\n  schedule multistep { milestones = [5, 3] }", "targets { label = int64[N] }",
     [("E0701", "milestones must be increasing epoch numbers", "milestones = [5, 3]")]),
    ("loss cross_entropy {}\n  metrics = [top11]", "targets { label = int64[N] }",
     [("E0701", "metric `top11` asks for the top 11 of 10 classes", "metrics = [top11]")]),
    ("loss cross_entropy {}\n  early_stop { monitor = \"val/acc\" }", "targets { label = int64[N] }",
     [("E0701", "cannot monitor `val/acc`: it is not logged", "monitor = \"val/acc\"")]),
]


@pytest.mark.parametrize("loss, targets, expected", PLAN_ERRORS, ids=["names", "float-label", "mse-shape",
                                                                      "milestones", "topk", "monitor"])
def test_check_reports_training_plan_errors(tmp_path, loss, targets, expected):
    path = write(tmp_path, f"train {{\n  data synthetic {{}}\n  {targets}\n  {loss}\n}}\n")
    diagnostics = specc.check([str(path)])
    assert [(d.code, d.message) for d in diagnostics] == [(c, m) for c, m, _ in expected]
    for d, (_, _, needle) in zip(diagnostics, expected):
        assert located(d) == (str(path), *where(path, needle))


def test_check_reports_a_missing_csv_file(tmp_path):
    path = write(tmp_path, """train {
  data csv { path = "nothere.csv", inputs { x = "*" }, targets { label = "y" } }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    (d,) = specc.check([str(path)])
    assert (d.code, d.message, d.severity) == ("E0702", f"data file not found: {tmp_path / 'nothere.csv'}", "warning")
    assert located(d) == (str(path), *where(path, 'path = "nothere.csv"'))
    assert main(["check", str(path)]) == 0  # CI often checks specs without their data sets


def test_check_reports_a_bad_npz_file(tmp_path):
    (tmp_path / "bad.npz").write_text("not a zip file")
    path = write(tmp_path, """train {
  data npz { path = "bad.npz" }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    (d,) = specc.check([str(path)])
    assert (d.code, d.message) == ("E0702", f"cannot read {tmp_path / 'bad.npz'}: File is not a zip file")
    assert located(d) == (str(path), *where(path, 'path = "bad.npz"'))


def test_check_probes_npz_headers(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 5), "float32"), label=np.zeros(10, "int64"))
    path = write(tmp_path, 'train {\n  data npz { path = "d.npz" }\n  targets { label = int64[N] }\n'
                           '  loss cross_entropy {}\n}\n')
    (d,) = specc.check([str(path)])
    assert (d.code, d.message) == ("E0702", "array `x` in d.npz has shape [10, 5], which does not fit float32[N, 4]")


def test_arrays_larger_than_the_machines_memory_are_refused_from_their_headers(tmp_path, monkeypatch):
    """A compressed .npz can claim terabytes in a few megabytes: its headers say so before anything is read."""
    import specc.train.data

    monkeypatch.setattr(specc.train.data, "machine_memory", lambda: 100)  # bytes
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 4), "float32"), label=np.zeros(10, "int64"))
    path = write(tmp_path, 'train {\n  data npz { path = "d.npz" }\n  targets { label = int64[N] }\n'
                           '  loss cross_entropy {}\n}\n')
    assert [d.message for d in specc.check([str(path)])] == [
        "array `x` in d.npz would take 160 B, more than this machine's 100 B of memory"]


def test_specc_check_exits_1_on_a_plan_error(tmp_path, capsys):
    path = write(tmp_path, "train {\n  data synthetic {}\n  targets { label = int64[N] }\n"
                           "  loss cross_entropy { output = nope }\n}\n")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    line, col = where(path, "output = nope")
    assert "error[E0701]: the loss's output `nope` is not one of the model's outputs" in out
    assert f"--> {path}:{line}:{col}" in out and out.rstrip().endswith("checked 1 file: 1 error")


def test_a_good_train_section_checks_clean(tmp_path):
    assert specc.check([str(write(tmp_path, GOOD_TRAIN))]) == []


def test_precision_may_be_written_as_the_number_32(tmp_path):
    path = write(tmp_path, GOOD_TRAIN.replace("  loss", "  precision = 32\n  loss"))
    spec = specc.load(path)
    assert spec.train.precision == "32" and specc.check([str(path)]) == []


def test_every_spec_with_a_train_section_checks_clean():
    specs = [p for p in sorted((ROOT / "specs").glob("*.dlspec")) if "\ntrain {" in p.read_text()]
    assert len(specs) >= 4
    assert specc.check([str(p) for p in specs]) == []


def test_model_errors_are_not_repeated_by_the_plan(tmp_path):
    """A model with errors: its own error only (the plan would report the missing output again)."""
    model = MODEL.replace("output logits", "output logitz")
    path = write(tmp_path, "train {\n  data synthetic {}\n  targets { label = int64[N] }\n"
                           "  loss cross_entropy { output = logits }\n}\n", model=model)
    assert [(d.code, d.message) for d in specc.check([str(path)])] == [("E0401", "output `logitz` is not defined")]


def test_a_too_large_model_still_gets_its_train_section_checked(tmp_path):
    path = write(tmp_path, "train {\n  data synthetic {}\n  targets { label = int64[N] }\n"
                           "  loss cross_entropy { output = nope }\n}\n")
    codes = [d.code for d in specc.check([str(path)], max_params=10)]
    assert codes == ["E0601", "E0701"]


TWO_MODELS = """spec 1

model A {
  input x: float32[N, 4]
  logits = x |> fc: Linear(10)
  output logits
}

model B {
  input x: float32[N, 4]
  y = x |> fc: Linear(3)
  output y
}

"""


def test_several_models_a_section_that_fits_one_of_them_is_fine(tmp_path):
    path = write(tmp_path, "train {\n  data synthetic {}\n  targets { label = float32[N, 3] }\n  loss mse {}\n}\n",
                 model=TWO_MODELS)
    assert specc.check([str(path)]) == []


def test_several_models_a_problem_for_every_model_is_reported_once(tmp_path):
    path = write(tmp_path, 'train {\n  data csv { path = "none.csv", inputs { x = "*" }, targets { y = "y" } }\n'
                           '  targets { y = float32[N, 3] }\n  loss mse {}\n}\n', model=TWO_MODELS)
    (d,) = specc.check([str(path)])
    assert (d.code, d.message) == ("E0702", f"data file not found: {tmp_path / 'none.csv'}")


def test_several_models_a_section_that_fits_none(tmp_path):
    path = write(tmp_path, "train {\n  data synthetic {}\n  targets { label = float32[N, 7] }\n  loss mse {}\n}\n",
                 model=TWO_MODELS)
    (d,) = specc.check([str(path)])
    assert (d.code, d.message) == ("E0701", "the train section fits none of the 2 models of this file (A, B)")
    assert located(d) == (str(path), *where(path, "train {"))
    assert [n.message for n in d.notes] == [
        "for model A: mse needs a target of the output's shape [N, 10], but the target is float32[N, 7]",
        "for model B: mse needs a target of the output's shape [N, 3], but the target is float32[N, 7]"]


def test_specc_check_with_a_train_section_stays_torch_free():
    code = ("import sys\nfrom specc.cli import main\n"
            "rc = main(['check', 'specs/digits_cnn.dlspec'])\n"
            "assert rc == 0, rc\n"
            "assert 'specc.train.plan' in sys.modules, 'the training plan was not checked'\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "checked 1 file: ok"


def test_specc_check_of_array_data_needs_no_numpy(tmp_path):
    """numpy comes with the torch extra: a torch-free `specc check` leaves the arrays to `specc train`."""
    import numpy as np

    np.savez(tmp_path / "train.npz", x=np.zeros((8, 4), np.float32), label=np.zeros(8, np.int64))
    path = write(tmp_path, 'train {\n  data npz { path = "train.npz" }\n  targets { label = int64[N] }\n'
                           '  loss cross_entropy {}\n}\n')
    code = (f"import sys\nsys.modules['numpy'] = None  # as if not installed\nfrom specc.cli import main\n"
            f"sys.exit(main(['check', {str(path)!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "checked 1 file: ok"


# ---- 2. schema constraints of the train section ------------------------------------------------
def _train(**parts) -> str:
    sections = {"data": "data synthetic {}", "targets": "targets { label = int64[N] }",
                "loss": "loss cross_entropy {}"} | parts
    return "train {\n" + "".join(f"  {v}\n" for v in sections.values() if v) + "}\n"


SCHEMA_ERRORS = [
    (dict(optimizer="optimizer AdamW { eps = -1 }"), "train.optimizer.eps: input should be greater than 0",
     "eps = -1"),
    (dict(optimizer="optimizer AdamW { lr = inf }"), "train.optimizer.lr: input should be a valid number",
     "lr = inf"),
    (dict(optimizer="optimizer AdamW { betas = [2, 0.9] }"),
     "train.optimizer.betas.0: input should be less than 1", "betas = [2, 0.9]"),
    (dict(optimizer="optimizer AdamW { betas = [0.9, -3] }"),
     "train.optimizer.betas.1: input should be greater than or equal to 0", "betas = [0.9, -3]"),
    (dict(optimizer="optimizer AdamW { weight_decay = nan }"),
     "train.optimizer.weight_decay: input should be a valid number", "weight_decay = nan"),
    (dict(optimizer="optimizer SGD { momentum = -0.5 }"),
     "train.optimizer.momentum: input should be greater than or equal to 0", "momentum = -0.5"),
    (dict(optimizer="optimizer SGD { nesterov = true }"),
     "train.optimizer: nesterov = true needs a momentum above 0 (e.g. momentum = 0.9)", "optimizer SGD"),
    (dict(optimizer="optimizer RMSprop { alpha = 1.5 }"),
     "train.optimizer.alpha: input should be less than 1", "alpha = 1.5"),
    (dict(loss="loss = []"),
     "train.loss: the train section needs at least one loss, e.g. `loss cross_entropy {}`", "loss = []"),
    (dict(loss="loss cross_entropy { weight = -1 }"),
     "train.loss.weight: input should be greater than or equal to 0", "weight = -1"),
    (dict(seed="seed = -1"), "train.seed: input should be greater than or equal to 0", "seed = -1"),
    (dict(schedule="schedule onecycle { warmup_epochs = inf }"),
     "train.schedule.warmup_epochs: input should be a valid number", "warmup_epochs = inf"),
    (dict(schedule="schedule onecycle { max_lr = -1 }"),
     "train.schedule.max_lr: input should be greater than 0", "max_lr = -1"),
    (dict(schedule="schedule step { gamma = 0 }"), "train.schedule.gamma: input should be greater than 0",
     "gamma = 0"),
    (dict(schedule="schedule multistep { milestones = [-5, 3, 1] }"),
     "train.schedule.milestones.0: input should be greater than or equal to 1", "milestones = [-5, 3, 1]"),
    (dict(grad_clip="grad_clip = inf"), "train.grad_clip: input should be a valid number", "grad_clip = inf"),
    (dict(metrics="metrics = [top0]"), "train.metrics: unknown metric `top0`; known: accuracy, f1, precision, "
     "recall, mae, mse, r2, topK with K >= 1 (e.g. top5)", "metrics = [top0]"),
    (dict(metrics="metrics = [accuracy, f1, accuracy]"), "train.metrics: metric `accuracy` is listed twice",
     "metrics = "),
    (dict(data="data synthetic { classes = 10000000 }"),
     "train.data.classes: input should be less than or equal to 1000000", "classes = 10000000"),
    (dict(data="data synthetic { dims { N = 0 } }"),
     "train.data.dims.N: input should be greater than or equal to 1", "N = 0"),
    (dict(data="data synthetic { seed = -3 }"), "train.data.seed: input should be greater than or equal to 0",
     "seed = -3"),
    (dict(data='data synthetic { normalize fixed { mean = 0, std = 0 } }'),
     "train.data.normalize.std: input should be greater than 0", "std = 0"),
    (dict(data='data csv { path = "t.csv", inputs { x = "*" }, targets { label = "y" }, delimiter = "" }'),
     "train.data.delimiter: string should have at least 1 character", 'delimiter = ""'),
]


@pytest.mark.parametrize("parts, message, needle", SCHEMA_ERRORS, ids=[m.split(":")[0] + f"-{i}" for i, (_, m, _)
                                                                       in enumerate(SCHEMA_ERRORS)])
def test_train_values_that_would_crash_or_mislead_training(tmp_path, parts, message, needle):
    path = write(tmp_path, _train(**parts))
    diagnostics = specc.check([str(path)])
    assert [(d.code, d.message) for d in diagnostics] == [("E0202", message)]
    assert located(diagnostics[0]) == (str(path), *where(path, needle))


def test_yaml_nans_and_negative_seeds_are_located(tmp_path):
    """YAML has its own spellings (.nan); infinities and huge integers are refused by its loader (E0602)."""
    path = tmp_path / "m.yaml"
    path.write_text("""spec: 1
models:
  M:
    inputs: {x: "float32[N, 4]"}
    body:
      - 'y = x |> fc: Linear(3)'
    outputs: [y]
train:
  data: {kind: synthetic}
  targets: {label: "int64[N]"}
  loss: {kind: cross_entropy}
  optimizer: {kind: AdamW, lr: .nan}
  seed: -5
  schedule: {kind: onecycle, warmup_epochs: .NaN}
""")
    diagnostics = specc.check([str(path)])
    assert [(d.code, d.message, d.span.line, d.span.col) for d in diagnostics] == [
        ("E0202", "train.optimizer.lr: input should be a finite number", 12, 28),
        ("E0202", "train.schedule.warmup_epochs: input should be a finite number", 14, 30),
        ("E0202", "train.seed: input should be greater than or equal to 0", 13, 3)]


def test_several_losses_still_validate_each(tmp_path):
    path = write(tmp_path, _train(loss="loss cross_entropy {}\n  loss cross_entropy { weight = -2 }"))
    (d,) = specc.check([str(path)])
    assert (d.code, d.message) == ("E0202", "train.loss.1.weight: input should be greater than or equal to 0")
    assert located(d) == (str(path), *where(path, "weight = -2"))


# ---- synthetic data sizes (probed by the plan) ---------------------------------------------------
def test_synthetic_dims_must_not_size_the_batch_or_unused_symbols(tmp_path):
    path = write(tmp_path, _train(data="data synthetic { dims { N = 5, Q = 7 } }"))
    batch, unused = specc.check([str(path)])
    assert (batch.code, batch.message) == \
        ("E0702", "`N` is the batch dimension: synthetic data has `samples` of it, not a size in dims")
    assert located(batch) == (str(path), *where(path, "N = 5"))
    assert (unused.code, unused.message) == ("E0702", "dims gives a size for `Q`, which no input or target uses")
    assert located(unused) == (str(path), *where(path, "Q = 7"))


def test_synthetic_sizes_below_one_are_refused(tmp_path):
    model = MODEL.replace("float32[N, 4]", "float32[N, T - 2, 4]")
    path = write(tmp_path, "train {\n  data synthetic { dims { T = 1 } }\n  targets { t = float32[N, T - 2, 10] }\n"
                           "  loss mse {}\n}\n", model=model)
    diagnostics = specc.check([str(path)])
    assert [d.message for d in diagnostics] == [
        "with T = 1, input `x` (float32[N, T - 2, 4]) would be [N, -1, 4]: every size must be at least 1",
        "with T = 1, target `t` (float32[N, T - 2, 10]) would be [N, -1, 10]: every size must be at least 1"]
    assert {located(d) for d in diagnostics} == {(str(path), *where(path, "dims {"))}


def test_synthetic_data_too_large_is_refused_before_allocating(tmp_path):
    model = MODEL.replace("float32[N, 4]", "float32[N, 128]")
    path = write(tmp_path, _train(data="data synthetic { samples = 10000000 }"), model=model)
    (d,) = specc.check([str(path)])
    assert (d.code, d.message) == ("E0702", "synthetic data of 10,000,000 samples would hold 1,290,000,000 values, "
                                            "more than the limit of 1,073,741,824 (nothing was allocated)")
    assert located(d) == (str(path), *where(path, "samples = 10000000"))


def test_synthetic_data_too_small_to_split_is_refused(tmp_path):
    path = write(tmp_path, _train(data="data synthetic { samples = 1 }"))
    (d,) = specc.check([str(path)])
    assert (d.code, d.message) == ("E0702", "synthetic data of 1 sample is too few to hold out 0.2 for validation "
                                            "and still train")
    assert located(d) == (str(path), *where(path, "samples = 1"))
    assert specc.check([str(write(tmp_path, _train(data="data synthetic { samples = 2 }")))]) == []
    assert specc.check([str(write(tmp_path, _train(data="data synthetic { samples = 1, val_fraction = 0 }")))]) == []


# ---- 3. export batch sizes ----------------------------------------------------------------------
@pytest.mark.parametrize("sizes, message", [
    ("[1000000000]", "export.onnx.batch_sizes.0: input should be less than or equal to 4096"),
    ("[2, 0]", "export.onnx.batch_sizes.1: input should be greater than or equal to 1"),
    ("[]", "export.onnx.batch_sizes: list should have at least 1 item after validation, not 0"),
    ("[1, 2, 3, 4, 5, 6, 7, 8, 9]", "export.onnx.batch_sizes: list should have at most 8 items after validation, "
                                    "not 9"),
])
def test_export_batch_sizes_are_bounded(tmp_path, sizes, message):
    path = write(tmp_path, f"export {{\n  onnx {{ batch_sizes = {sizes} }}\n}}\n")
    (d,) = specc.check([str(path)])
    assert (d.code, d.message) == ("E0202", message)
    assert located(d) == (str(path), *where(path, "batch_sizes = "))


def test_export_tolerances_are_finite(tmp_path):
    path = write(tmp_path, "export {\n  pt2 { atol = inf }\n}\n")
    (d,) = specc.check([str(path)])
    assert (d.code, d.message) == ("E0202", "export.pt2.atol: input should be a valid number")


def test_export_batch_sizes_within_bounds_check_clean(tmp_path):
    path = write(tmp_path, "export {\n  onnx { batch_sizes = [1, 4096] }\n}\n")
    assert specc.check([str(path)]) == []


class _Compiled:
    def __init__(self, path):
        from specc.compiled import build_ir
        self.spec = specc.load(path)
        self.ir = build_ir(self.spec)


def test_export_samples_too_large_are_refused_before_allocating(tmp_path):
    """What the exporters draw for verification or latency (options given from Python too)."""
    from specc.exporters.base import ExportError
    from specc.exporters.samples import sample_dims, sample_shapes, signature

    compiled = _Compiled(write(tmp_path, "", model=MODEL.replace("float32[N, 4]", "float32[N, T, 4096]")))
    sig = signature(compiled)
    assert sample_shapes(compiled, sig, sample_dims(sig, 2, 0, {"T": 8})) == [(2, 8, 4096)]
    with pytest.raises(ExportError) as err:
        sample_shapes(compiled, sig, sample_dims(sig, 4096, 0, {"T": 100}))
    assert (err.value.code, err.value.message) == (
        "E0801", "the sample inputs at N=4096, T=100 would hold 1,677,721,600 values, more than the limit of "
                 "268,435,456 (nothing was allocated)")
    with pytest.raises(ExportError) as err:
        sample_shapes(compiled, sig, sample_dims(sig, 2, 0, {"T": -3}))
    assert err.value.message == "sample input `x` at N=2, T=-3 would have shape [2, -3, 4096]"


# ---- 5. a bug on one file is reported for that file; the others are still checked -------------------
def _boom_on(name: str, monkeypatch):
    real = checker.build_all

    def build_all(spec, **kwargs):
        if spec.path.endswith(name):
            raise KeyError("boom")
        return real(spec, **kwargs)
    monkeypatch.setattr(checker, "build_all", build_all)


def test_an_internal_error_on_one_file_becomes_a_diagnostic(tmp_path, monkeypatch):
    bad = write(tmp_path, GOOD_TRAIN, name="a.dlspec")
    other = write(tmp_path, "train {\n  data synthetic {}\n  targets { label = int64[N] }\n"
                            "  loss cross_entropy { output = nope }\n}\n", name="b.dlspec")
    _boom_on("a.dlspec", monkeypatch)
    internal, plan = specc.check([str(bad), str(other)])
    assert internal.code == "E0999" == checker.INTERNAL_ERROR
    assert internal.message == ("internal error while checking this file (KeyError: 'boom'); "
                                "this is a bug in specc, not in your spec")
    assert located(internal) == (str(bad), 1, 1)
    assert internal.help == f"please report it, with the spec, at {specc.errors.REPORT_URL}"
    raised, ours = (n.message for n in internal.notes)
    assert raised.startswith(f"raised at {__file__}:") and raised.endswith(", in build_all")
    assert ours.startswith("from specc at specc/checker.py:") and ours.endswith(", in _check_file")
    assert (plan.code, located(plan)) == ("E0701", (str(other), *where(other, "output = nope")))


def test_an_internal_error_keeps_the_json_report_of_every_file(tmp_path, monkeypatch, capsys):
    bad = write(tmp_path, GOOD_TRAIN, name="a.dlspec")
    good = write(tmp_path, GOOD_TRAIN, name="b.dlspec")
    other = write(tmp_path, "train {\n  data synthetic {}\n  targets { label = int64[N] }\n  metrics = [r2]\n"
                            "  loss cross_entropy {}\n}\n", name="c.dlspec")
    _boom_on("a.dlspec", monkeypatch)
    code = main(["check", str(bad), str(good), str(other), "--format", "json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "Traceback" not in captured.out + captured.err
    assert (report["files"], report["errors"]) == (3, 2)
    assert [(d["code"], d["file"], d["line"]) for d in report["diagnostics"]] == [
        ("E0999", str(bad), 1), ("E0701", str(other), where(other, "metrics = ")[0])]
    assert code == 3


def test_specc_check_exits_3_on_an_internal_error(tmp_path, monkeypatch, capsys):
    bad = write(tmp_path, GOOD_TRAIN, name="a.dlspec")
    _boom_on("a.dlspec", monkeypatch)
    assert main(["check", str(bad)]) == 3
