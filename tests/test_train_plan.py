"""Bad training plans fail before training starts, with located errors; `--set` overrides are validated."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import specc
from specc.compiled import build_ir
from specc.errors import SpecError
from specc.train import overrides
from specc.train.plan import make_plan

MODEL = """spec 1

model M {
  input x: float32[N, 4]
  logits = x |> fc: Linear(3)
  output logits
}

"""


def write(tmp_path, train: str, name: str = "m.dlspec"):
    path = tmp_path / name
    path.write_text(MODEL + train)
    return path


def errors(path) -> list:
    try:
        spec = specc.load(path)
        make_plan(spec, build_ir(spec))
    except SpecError as err:
        return err.diagnostics
    return []


def where(path, needle: str) -> tuple[int, int]:
    """1-based (line, column) of the first occurrence of `needle` in the file."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not in {path}")


def only(diagnostics, code: str):
    assert [d.code for d in diagnostics] == [code], [d.render() for d in diagnostics]
    return diagnostics[0]


def test_a_good_plan_resolves_outputs_targets_and_metrics(tmp_path):
    path = write(tmp_path, """train {
  data synthetic { samples = 64 }
  targets { label = int64[N] }
  loss cross_entropy { label_smoothing = 0.1 }
  metrics = [accuracy, top2, f1]
  early_stop { monitor = "val/f1" }
}
""")
    spec = specc.load(path)
    plan = make_plan(spec, build_ir(spec))
    (term,) = plan.losses
    assert (term.kind, term.output, term.target, dict(term.options)["label_smoothing"]) == \
        ("cross_entropy", "logits", "label", 0.1)
    assert [(m.name, m.task, m.classes, m.top_k) for m in plan.metrics] == \
        [("accuracy", "multiclass", 3, None), ("top2", "multiclass", 3, 2), ("f1", "multiclass", 3, None)]
    assert (plan.early_stop.key, plan.early_stop.mode) == ("val/f1", "max")
    assert (plan.best.key, plan.best.mode) == ("val/f1", "max")


def test_unknown_optimizer(tmp_path):
    path = write(tmp_path, """train {
  data synthetic {}
  targets { label = int64[N] }
  loss cross_entropy {}
  optimizer Adamx { lr = 0.1 }
}
""")
    d = only(errors(path), "E0206")
    assert d.message == "unknown optimizer kind `Adamx`"
    assert (d.span.line, d.span.col) == where(path, "Adamx")  # at the kind, not the section
    assert d.help == "did you mean `Adam`?"


def test_loss_on_a_missing_output(tmp_path):
    path = write(tmp_path, """train {
  data synthetic {}
  targets { label = int64[N] }
  loss cross_entropy { output = logit }
}
""")
    d = only(errors(path), "E0701")
    assert d.message == "the loss's output `logit` is not one of the model's outputs"
    assert (d.span.line, d.span.col) == where(path, "output = logit")
    assert d.help == "did you mean `logits`?"
    rendered = d.render()
    assert f"--> {path}:{d.span.line}:{d.span.col}" in rendered and "^^^^^^^^^^^^^^ unknown output" in rendered


def test_loss_on_an_undeclared_target(tmp_path):
    path = write(tmp_path, """train {
  data synthetic {}
  targets { label = int64[N] }
  loss cross_entropy { target = lable }
}
""")
    d = only(errors(path), "E0701")
    assert d.message == "the loss's target `lable` is not declared" and d.help == "did you mean `label`?"
    assert (d.span.line, d.span.col) == where(path, "target = lable")


@pytest.mark.parametrize("loss, target, fragment", [
    ("cross_entropy", "float32[N]", "cross_entropy with float targets needs class probabilities of the logits' "
                                    "shape [N, 3], but the target is float32[N]"),
    ("cross_entropy", "int64[N, 1]", "cross_entropy needs class indices int64[N] for logits float32[N, 3], "
                                     "but the target is int64[N, 1]"),
    ("cross_entropy", "int32[N]", "cross_entropy needs int64 class indices [N] for logits float32[N, 3]"),
    ("nll", "float32[N, 3]", "nll needs int64 class indices, but the target is float32[N, 3]"),
    ("mse", "float32[N]", "mse needs a target of the output's shape [N, 3], but the target is float32[N]"),
    ("huber", "int64[N, 3]", "huber needs a float target, but the target is int64[N, 3]"),
    ("bce_with_logits", "int64[N, 3]", "bce_with_logits needs float targets (0/1 or probabilities)"),
])
def test_target_that_does_not_fit_the_loss(tmp_path, loss, target, fragment):
    path = write(tmp_path, f"""train {{
  data synthetic {{}}
  targets {{ label = {target} }}
  loss {loss} {{}}
}}
""")
    d = only(errors(path), "E0701")
    assert fragment in d.message
    assert (d.span.line, d.span.col) == where(path, "label = ")
    assert d.help.startswith("declare it as") or d.help.startswith("for class indices")


def test_regression_target_that_torch_would_broadcast(tmp_path):
    path = tmp_path / "reg.dlspec"
    path.write_text("""spec 1

model R {
  input x: float32[N, 4]
  y = x |> fc: Linear(1)
  output y
}

train {
  data synthetic {}
  targets { price = float32[N] }
  loss l1 {}
}
""")
    d = only(errors(path), "E0701")
    assert d.message == ("l1 needs a target of the output's shape [N, 1], but the target is float32[N] "
                         "(torch would broadcast the two and silently compute the wrong loss)")
    assert d.help == "declare it as float32[N, 1]"


@pytest.mark.parametrize("loss, target", [("cross_entropy", "float32[N, 3]"), ("cross_entropy", "int64[N]"),
                                          ("mse", "float32[N, 3]"), ("bce_with_logits", "float32[N, 3]")])
def test_targets_that_fit(tmp_path, loss, target):
    path = write(tmp_path, f"train {{\n  data synthetic {{}}\n  targets {{ label = {target} }}\n  loss {loss} {{}}\n}}\n")
    assert errors(path) == []


def test_sequence_logits_take_class_indices_per_position(tmp_path):
    path = tmp_path / "seq.dlspec"
    path.write_text("""spec 1

model Lm {
  input tokens: int64[N, T]
  logits = tokens |> wte: Embedding(50, 8) |> head: Linear(50)
  output logits
}

train {
  data synthetic { dims { T = 6 } }
  targets { next = int64[N, T] }
  loss cross_entropy {}
  metrics = [accuracy]
}
""")
    spec = specc.load(path)
    plan = make_plan(spec, build_ir(spec))
    assert plan.losses[0].class_dim == -1 and plan.metrics[0].classes == 50


@pytest.mark.parametrize("loss, ignore_index", [("cross_entropy {}", -100), ("nll { ignore_index = 1 }", 1)])
def test_metrics_skip_the_labels_the_loss_ignores(tmp_path, loss, ignore_index):
    import torch
    from sklearn.metrics import accuracy_score, f1_score

    from specc.train.metrics import Metrics

    path = write(tmp_path, f"train {{\n  data synthetic {{}}\n  targets {{ label = int64[N] }}\n  loss {loss}\n"
                           "  metrics = [accuracy, f1]\n}\n")
    spec = specc.load(path)
    plan = make_plan(spec, build_ir(spec))
    assert [m.ignore_index for m in plan.metrics] == [ignore_index, ignore_index]
    logits = torch.tensor([[2.0, 0, 0], [0, 2, 0], [0, 0, 2], [2, 0, 0], [0, 2, 0], [0, 0, 2]])
    target = torch.tensor([0, ignore_index, 1, 1, ignore_index, 2])
    metrics = Metrics(plan)
    metrics.update((logits,), (target,))
    kept = target != ignore_index
    predicted = logits.argmax(1)[kept]
    labels = sorted(set(range(3)) - {ignore_index})  # torchmetrics leaves an ignored class out of the macro average
    assert metrics.compute() == pytest.approx({
        "val/accuracy": accuracy_score(target[kept], predicted),
        "val/f1": f1_score(target[kept], predicted, average="macro", labels=labels)})


def test_missing_data_file(tmp_path):
    path = write(tmp_path, """train {
  data npz { path = "nowhere.npz" }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    d = only(errors(path), "E0702")
    assert d.message == f"data file not found: {tmp_path / 'nowhere.npz'}"
    assert (d.span.line, d.span.col) == where(path, 'path = "nowhere.npz"')


def test_npz_array_that_does_not_fit_the_input(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 5), "float32"), label=np.zeros(10, "int64"))
    path = write(tmp_path, """train {
  data npz { path = "d.npz" }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    d = only(errors(path), "E0702")
    assert d.message == "array `x` in d.npz has shape [10, 5], which does not fit float32[N, 4]"


def test_npz_float_labels_for_integer_target(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 4), "float32"), y=np.zeros(10, "float32"))
    path = write(tmp_path, """train {
  data npz { path = "d.npz", targets { label = "y" } }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    d = only(errors(path), "E0702")
    assert d.message == "array `y` in d.npz holds floats, but int64[N] needs integers"
    assert (d.span.line, d.span.col) == where(path, 'label = "y"')


def test_npy_folder_without_the_input_file(tmp_path):
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "label.npy", np.zeros(10, "int64"))
    path = write(tmp_path, """train {
  data npy { path = "arrays" }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    d = only(errors(path), "E0702")
    assert d.message.startswith("no data for input `x`: no such file:") and d.message.endswith("x.npy")


def test_csv_with_missing_columns(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,c,d,class\n1,2,3,4,0\n")
    path = write(tmp_path, """train {
  data csv {
    path = "t.csv"
    inputs { x = ["a", "b", "c", "e"] }
    targets { label = "clas" }
  }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    diags = errors(path)
    assert [d.code for d in diags] == ["E0702", "E0702"]
    target, column = diags
    assert target.message == "column `clas` is not in t.csv" and target.help == "did you mean `class`?"
    assert (target.span.line, target.span.col) == where(path, 'label = "clas"')
    assert column.message == "column `e` is not in t.csv"
    assert (column.span.line, column.span.col) == where(path, 'x = ["a"')


def test_csv_columns_that_do_not_fit_the_input(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,c,class\n1,2,3,0\n")
    path = write(tmp_path, """train {
  data csv { path = "t.csv", inputs { x = "*" }, targets { label = "class" } }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    d = only(errors(path), "E0702")
    assert d.message == "input `x` is float32[N, 4] (4 values per row) but gets 3 columns of t.csv"


def test_a_misspelt_target_column_beside_star_inputs_is_one_error(tmp_path):
    """The real `class` column falls among "*"'s columns: no second error about their number."""
    (tmp_path / "t.csv").write_text("a,b,c,d,class\n1,2,3,4,0\n")
    path = write(tmp_path, """train {
  data csv { path = "t.csv", inputs { x = "*" }, targets { label = "clas" } }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    d = only(errors(path), "E0702")
    assert d.message == "column `clas` is not in t.csv" and d.help == "did you mean `class`?"


def test_monitor_that_is_not_logged(tmp_path):
    path = write(tmp_path, """train {
  data synthetic {}
  targets { label = int64[N] }
  loss cross_entropy {}
  metrics = [accuracy]
  early_stop { monitor = "val/acc" }
}
""")
    d = only(errors(path), "E0701")
    assert d.message == "cannot monitor `val/acc`: it is not logged" and d.help == "did you mean `val/accuracy`?"
    assert (d.span.line, d.span.col) == where(path, 'monitor = "val/acc"')


def test_validation_monitor_without_validation_data(tmp_path):
    path = write(tmp_path, """train {
  data synthetic { val_fraction = 0 }
  targets { label = int64[N] }
  loss cross_entropy {}
  early_stop {}
}
""")
    d = only(errors(path), "E0701")
    assert d.message.startswith("`val/loss` needs a validation split")


def test_metric_that_does_not_fit_the_loss(tmp_path):
    path = write(tmp_path, """train {
  data synthetic {}
  targets { label = int64[N] }
  loss cross_entropy {}
  metrics = [accuracy, r2]
}
""")
    d = only(errors(path), "E0701")
    assert d.message == "metric `r2` is for regression, but the loss is cross_entropy (classification)"
    assert (d.span.line, d.span.col) == where(path, "metrics = ")


def test_synthetic_data_needs_sizes_for_symbols(tmp_path):
    path = tmp_path / "seq.dlspec"
    path.write_text("""spec 1

model S {
  input x: float32[N, T, 4]
  y = x |> fc: Linear(2)
  output y
}

train {
  data synthetic {}
  targets { t = float32[N, T, 2] }
  loss mse {}
}
""")
    diags = errors(path)
    assert {d.message for d in diags} == {"synthetic data needs a size for `T` (input `x` is float32[N, T, 4])",
                                          "synthetic data needs a size for `T` (target `t` is float32[N, T, 2])"}
    assert diags[0].help == "add `dims { T = 32 }` to the data section"


def test_plans_are_checked_without_torch(tmp_path):
    path = write(tmp_path, "train {\n  data synthetic {}\n  targets { label = int64[N] }\n  loss cross_entropy {}\n}\n")
    code = (f"import sys, specc\nfrom specc.compiled import build_ir\nfrom specc.train.plan import make_plan\n"
            f"spec = specc.load({str(path)!r})\nmake_plan(spec, build_ir(spec))\n"
            f"assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- overrides --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [("3", 3), ("1e-3", 1e-3), ("true", True), ("-2", -2),
                                         ("[accuracy, f1]", ["accuracy", "f1"]), ('"x y"', "x y"),
                                         ("AdamW", "AdamW"), ("val/accuracy", "val/accuracy"),
                                         ("data/train.csv", "data/train.csv")])
def test_set_values_are_literals_or_text(text, value):
    assert overrides.parse_value(text) == value


def _spec(tmp_path):
    return specc.load(write(tmp_path, """train {
  data synthetic {}
  targets { label = int64[N] }
  loss cross_entropy {}
  optimizer AdamW { lr = 0.01 }
}
"""))


def test_set_overrides_the_train_section(tmp_path):
    spec = overrides.apply(_spec(tmp_path), overrides.parse_sets(
        ["train.epochs=3", "train.optimizer.lr=1e-4", "train.metrics=[accuracy]", "train.checkpoints.every_steps=5"]))
    t = spec.train
    assert (t.epochs, t.optimizer.lr, t.optimizer.kind, t.metrics, t.checkpoints.every_steps) == \
        (3, 1e-4, "AdamW", ["accuracy"], 5)
    assert spec.span("train", "epochs").file == "<--set>"


def test_python_overrides_take_numpy_numbers_but_not_booleans_for_numbers(tmp_path):
    import numpy as np
    spec = overrides.apply(_spec(tmp_path), overrides.from_kwargs({"epochs": np.int64(3), "optimizer.lr": np.float32(0.5)}))
    assert (spec.train.epochs, spec.train.optimizer.lr) == (3, 0.5)
    assert type(spec.train.epochs) is int
    spec = overrides.apply(_spec(tmp_path), overrides.from_kwargs({"epochs": 2, "optimizer.lr": 1, "compile": True}))
    assert (spec.train.epochs, spec.train.optimizer.lr, spec.train.compile) == (2, 1.0, True)
    with pytest.raises(SpecError) as err:
        overrides.apply(_spec(tmp_path), overrides.from_kwargs({"epochs": True}))
    assert only(err.value.diagnostics, "E0202").message == "train.epochs: input should be a valid integer"


def test_set_one_item_of_a_pair_given_or_left_at_its_default(tmp_path):
    spec = overrides.apply(_spec(tmp_path), overrides.parse_sets(["train.optimizer.betas.1=0.95"]))
    assert spec.train.optimizer.betas == (0.9, 0.95)  # the other one is AdamW's default
    spec = overrides.apply(spec, overrides.parse_sets(["train.optimizer.betas.0=0.8"]))
    assert spec.train.optimizer.betas == (0.8, 0.95)
    with pytest.raises(SpecError) as err:
        overrides.apply(spec, overrides.parse_sets(["train.optimizer.betas.2=0.5"]))
    assert only(err.value.diagnostics, "E0202").message == "no item 2 in train.optimizer.betas"


def test_set_a_list_item_of_a_single_section(tmp_path):
    """`train.loss.0.weight` works whether the spec has one loss or several."""
    spec = overrides.apply(_spec(tmp_path), overrides.parse_sets(["train.loss.0.weight=0.5"]))
    assert spec.train.loss.weight == 0.5
    with pytest.raises(SpecError) as err:
        overrides.apply(_spec(tmp_path), overrides.parse_sets(["train.loss.1.weight=0.5"]))
    d = only(err.value.diagnostics, "E0202")
    assert d.message == "train.loss.1: no item 1; there is one section here (item 0)" and d.span.file == "<--set>"
    with pytest.raises(SpecError) as err:
        overrides.apply(_spec(tmp_path), overrides.parse_sets(["train.loss.0=3"]))
    d = only(err.value.diagnostics, "E0202")
    assert d.message == "train.loss.0 is a whole section: set its keys one by one (train.loss.0.KEY=VALUE)"


def test_an_unknown_key_of_a_data_kind_suggests_that_kinds_keys(tmp_path):
    """`samples` is a key of synthetic data, not of digits: "did you mean `samples`?" helped no one."""
    with pytest.raises(SpecError) as err:  # the spec's data is synthetic, which has `samples`
        overrides.apply(_spec(tmp_path), overrides.parse_sets(["train.data.kind=digits", "train.data.samples=5"]))
    d = only(err.value.diagnostics, "E0201")
    assert d.message == "unknown key `samples` in train.data"
    assert d.help.startswith("known keys: ") and "samples" not in d.help and "val_fraction" in d.help


def test_set_errors_point_at_the_set(tmp_path):
    spec = _spec(tmp_path)
    with pytest.raises(SpecError) as err:
        overrides.apply(spec, overrides.parse_sets(["train.epochs=2", "train.epoch=0", "train.batch_size=0"]))
    by_code = {d.code: d for d in err.value.diagnostics}
    assert len(err.value.diagnostics) == 2
    unknown, invalid = by_code["E0201"], by_code["E0202"]
    assert (unknown.code, unknown.span.file, unknown.span.line) == ("E0201", "<--set>", 2)
    assert unknown.message == "unknown key `epoch` in train" and unknown.help == "did you mean `epochs`?"
    assert (invalid.code, invalid.span.line) == ("E0202", 3)
    assert invalid.message == "train.batch_size: input should be greater than or equal to 1"
    assert "3 | train.batch_size=0" in invalid.render()


def test_set_outside_the_train_section(tmp_path):
    with pytest.raises(SpecError) as err:
        overrides.parse_sets(["model.width=3"])
    d = only(err.value.diagnostics, "E0201")
    assert d.message == "`--set model.width=3`: only settings of the train section can be set"


def test_plan_errors_about_an_overridden_setting_point_at_the_set(tmp_path):
    spec = overrides.apply(_spec(tmp_path), overrides.parse_sets(["train.loss.output=logit"]))
    with pytest.raises(SpecError) as err:
        make_plan(spec, build_ir(spec))
    d = only(err.value.diagnostics, "E0701")
    assert (d.span.file, d.span.line) == ("<--set>", 1) and d.help == "did you mean `logits`?"


def test_specc_train_stops_before_anything_runs(tmp_path, capsys):
    from specc.cli import main

    path = write(tmp_path, """train {
  data csv { path = "missing.csv", inputs { x = "*" }, targets { label = "y" } }
  targets { label = int64[N] }
  loss cross_entropy { output = logit }
}
""")
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "error[E0701]: the loss's output `logit` is not one of the model's outputs" in err
    assert f"error[E0702]: data file not found: {tmp_path / 'missing.csv'}" in err
    assert not (tmp_path / "out").exists()


def test_target_types_read_the_specs_constants_and_model_parameters(tmp_path):
    path = tmp_path / "m.dlspec"
    path.write_text("""spec 1

K = 3

model M(H = 2) {
  input x: float32[N, 4]
  y = x |> Linear(K * H)
  output y
}

train {
  data synthetic { samples = 64 }
  targets { t = float32[N, K * H] }
  loss mse {}
}
""")
    assert errors(path) == []
    spec = specc.load(path)
    plan = make_plan(spec, build_ir(spec, params={"H": 5}))
    assert str(plan.targets[0].type) == "float32[N, 15]"
