"""Data sources load into tensors of the declared types; batches are a function of (seed, epoch, rank)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import specc
from specc.compiled import build_ir
from specc.errors import SpecError
from specc.train.batches import Batches, Shard
from specc.train.data_load import load_data
from specc.train.plan import make_plan


def plan_of(tmp_path, text: str, name: str = "m.dlspec"):
    path = tmp_path / name
    path.write_text(text)
    spec = specc.load(path)
    return make_plan(spec, build_ir(spec))


def load(plan):
    return load_data(plan.data, plan.span)


CLASSIFIER = """spec 1

model M {{
  input x: {input}
  logits = x |> Flatten |> fc: Linear(10)
  output logits
}}

train {{
  {data}
  targets {{ label = int64[N] }}
  loss cross_entropy {{}}
}}
"""


@pytest.mark.parametrize("input_type, shape", [("float32[N, 1, 8, 8]", (1, 8, 8)), ("float32[N, 64]", (64,))])
def test_digits(tmp_path, input_type, shape):
    plan = plan_of(tmp_path, CLASSIFIER.format(input=input_type, data="data digits { val_fraction = 0.2, seed = 1 }"))
    data = load(plan)
    x, y = data.train.tensors["x"], data.train.tensors["label"]
    assert x.shape == (1438,) + shape and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(data.val) == 359 and float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert sorted(set(y.tolist())) == list(range(10))
    again = load(plan)
    assert torch.equal(again.val.tensors["x"], data.val.tensors["x"])  # the split is seeded


def test_digits_need_an_image_input(tmp_path):
    with pytest.raises(SpecError) as err:
        plan_of(tmp_path, CLASSIFIER.format(input="float32[N, 32]", data="data digits {}"))
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.message == "digits are 8x8 float images, but input `x` is float32[N, 32]"


def test_synthetic_data_follows_the_model(tmp_path):
    plan = plan_of(tmp_path, """spec 1

model Tagger {
  input tokens: int64[N, T]
  logits = tokens |> wte: Embedding(7, 4) |> head: Linear(5)
  output logits
}

train {
  data synthetic { samples = 40, val_fraction = 0.25, dims { T = 6 } }
  targets { tags = int64[N, T] }
  loss cross_entropy {}
}
""")
    data = load(plan)
    tokens, tags = data.train.tensors["tokens"], data.train.tensors["tags"]
    assert tokens.shape == (30, 6) and tags.shape == (30, 6) and len(data.val) == 10
    assert int(tokens.max()) < 7 and int(tags.max()) < 5  # within the embedding and the classes


def test_csv_star_takes_the_other_columns(tmp_path):
    rows = ["a,b,label,c"] + [f"{i},{i * 2},{i % 3},{-i}" for i in range(10)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    plan = plan_of(tmp_path, """spec 1

model M {
  input x: float32[N, 3]
  logits = x |> fc: Linear(3)
  output logits
}

train {
  data csv { path = "t.csv", val_fraction = 0, inputs { x = "*" }, targets { label = "label" } }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    data = load(plan)
    assert data.val is None
    assert data.train.tensors["x"][4].tolist() == [4.0, 8.0, -4.0]
    assert data.train.tensors["label"].tolist() == [i % 3 for i in range(10)]


TWO_FEATURES = """spec 1

model M {
  input x: float32[N, 2]
  logits = x |> fc: Linear(3)
  output logits
}

"""
CSV_SPEC = TWO_FEATURES + """train {
  data csv { path = "t.csv", inputs { x = ["a", "b"] }, targets { label = "y" } }
  targets { label = int64[N] }
  loss cross_entropy {}
}
"""


def test_csv_cell_that_is_not_a_number_is_located_in_the_csv(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,y\n1,2,0\n3,oops,1\n")
    plan = plan_of(tmp_path, CSV_SPEC)
    with pytest.raises(SpecError) as err:
        load(plan)
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.message == "column `b` of t.csv has a non-number 'oops' on line 3"
    assert (d.span.file, d.span.line, d.span.col, d.span.end_col) == (str(tmp_path / "t.csv"), 3, 3, 7)
    assert "3 | 3,oops,1" in d.render()


def test_csv_fractional_class_label(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,y\n1,2,0\n3,4,1.5\n")
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, CSV_SPEC))
    assert err.value.diagnostics[0].message == "column `y` of t.csv feeds an integer target but has '1.5' on line 3"


def test_npz_with_a_validation_file_and_standard_normalisation(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train.npz", 50), ("val.npz", 20)):
        np.savez(tmp_path / name, x=rng.normal(5.0, 3.0, (n, 2, 4)).astype("float32"),
                 label=rng.integers(0, 3, n))
    plan = plan_of(tmp_path, """spec 1

model M {
  input x: float32[N, 2, 4]
  logits = x |> Flatten |> fc: Linear(3)
  output logits
}

train {
  data npz { path = "train.npz", val_path = "val.npz", normalize { kind = "standard" } }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    data = load(plan)
    x = data.train.tensors["x"]
    assert len(data.train) == 50 and len(data.val) == 20
    assert torch.allclose(x.mean(dim=(0, 2)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2)), torch.ones(2), atol=1e-5)
    assert data.normalization["x"]["mean"].shape == (2, 1)


def test_npy_files_in_a_folder(tmp_path):
    (tmp_path / "arr").mkdir()
    np.save(tmp_path / "arr" / "features.npy", np.arange(24, dtype="float64").reshape(12, 2))
    np.save(tmp_path / "arr" / "label.npy", np.arange(12) % 3)
    plan = plan_of(tmp_path, """spec 1

model M {
  input x: float32[N, 2]
  logits = x |> fc: Linear(3)
  output logits
}

train {
  data npy { path = "arr", val_fraction = 0, inputs { x = "features" } }
  targets { label = int64[N] }
  loss cross_entropy {}
}
""")
    data = load(plan)
    assert data.train.tensors["x"].dtype == torch.float32 and data.train.tensors["x"][3].tolist() == [6.0, 7.0]


# ---- batches --------------------------------------------------------------------------------
def _tensors(n: int) -> dict:
    return {"x": torch.arange(n, dtype=torch.float32)[:, None], "y": torch.arange(n)}


def _rows(batches: Batches, epoch: int, start: int = 0) -> list[list[int]]:
    return [b.targets[0].tolist() for b in batches.epoch(epoch, start)]


def test_ranks_split_each_global_batch():
    one = Batches(_tensors(70), ["x"], ["y"], 16, shuffle=True, seed=3)
    two = [Batches(_tensors(70), ["x"], ["y"], 16, shuffle=True, seed=3, shard=Shard(r, 2)) for r in range(2)]
    for epoch in range(2):
        merged = [a + b for a, b in zip(_rows(two[0], epoch), _rows(two[1], epoch))]
        assert merged == _rows(one, epoch)
        assert [len(r) for r in _rows(two[0], epoch)] == [8, 8, 8, 8, 3]
    assert _rows(one, 0) != _rows(one, 1)


def test_the_order_is_a_function_of_seed_and_epoch():
    a = Batches(_tensors(50), ["x"], ["y"], 8, shuffle=True, seed=5)
    b = Batches(_tensors(50), ["x"], ["y"], 8, shuffle=True, seed=5)
    assert _rows(a, 4) == _rows(b, 4)
    assert _rows(a, 4)[2:] == _rows(b, 4, start=2)  # resuming at batch 2


def test_tails_are_dropped_for_training_and_merged_for_validation():
    assert Batches(_tensors(33), ["x"], ["y"], 16, shuffle=False, seed=0).sizes == [16, 16]  # 1 left: dropped
    assert Batches(_tensors(35), ["x"], ["y"], 16, shuffle=False, seed=0).sizes == [16, 16, 3]
    val = Batches(_tensors(33), ["x"], ["y"], 16, shuffle=False, seed=0, shard=Shard(0, 2), tail="merge")
    assert val.sizes == [16, 17]


def test_worker_processes_give_the_same_batches():
    plain = Batches(_tensors(40), ["x"], ["y"], 8, shuffle=True, seed=1)
    workers = Batches(_tensors(40), ["x"], ["y"], 8, shuffle=True, seed=1, workers=1)
    assert _rows(plain, 2) == _rows(workers, 2)


# ---- values that would crash or poison training are refused while loading, located -----------------
def _csv_error(tmp_path, text: str, spec: str = CSV_SPEC, *, at_plan: bool = False):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, spec)) if not at_plan else plan_of(tmp_path, spec)
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.span.file == str(tmp_path / "t.csv")
    return d


@pytest.mark.parametrize("label", ["3", "-1", "1e30"])
def test_csv_class_label_out_of_range(tmp_path, label):
    d = _csv_error(tmp_path, f"a,b,y\n1,2,0\n3,4,{label}\n")
    assert d.message == (f"column `y` of t.csv has the class label {label!r} on line 3, but the output has "
                         "3 classes (labels 0 to 2)")
    assert (d.span.line, d.span.col, d.span.end_col) == (3, 5, 5 + len(label))


def test_csv_infinite_class_label(tmp_path):
    d = _csv_error(tmp_path, "a,b,y\n1,2,0\n3,4,inf\n")
    assert d.message == "column `y` of t.csv has 'inf' on line 3, which is not a finite number"


def test_csv_ignored_class_label_is_kept(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,y\n1,2,0\n3,4,-100\n5,6,2\n")
    data = load(plan_of(tmp_path, CSV_SPEC.replace('path = "t.csv"', 'path = "t.csv", val_fraction = 0')))
    assert data.train.tensors["label"].tolist() == [0, -100, 2]  # cross_entropy's ignore_index (-100)


def test_integer_input_cell_beyond_its_dtype_is_refused_not_wrapped(tmp_path):
    spec = CSV_SPEC.replace("float32[N, 2]", "int32[N, 2]").replace(
        "logits = x |> fc: Linear(3)", "logits = x |> e: Embedding(10, 3) |> Flatten |> fc: Linear(3)")
    d = _csv_error(tmp_path, "a,b,y\n1,2,0\n1e30,4,1\n", spec)
    assert d.message == "column `a` of t.csv has '1e30' on line 3, outside the range of int32"


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf", "1e400"])
def test_csv_float_cell_that_is_not_finite(tmp_path, cell):
    d = _csv_error(tmp_path, f"a,b,y\n1,2,0\n3,{cell},1\n")
    assert d.message == f"column `b` of t.csv has {cell!r} on line 3, which is not a finite number"
    assert (d.span.line, d.span.col, d.span.end_col) == (3, 3, 3 + len(cell))


def test_csv_float_cell_too_large_for_float32(tmp_path):
    d = _csv_error(tmp_path, "a,b,y\n1,2,0\n3,1e39,1\n")
    assert d.message == "column `b` of t.csv has '1e39' on line 3, outside the range of float32"


def test_csv_duplicate_column_is_located_at_the_header(tmp_path):
    spec = CSV_SPEC.replace('x = ["a", "b"]', 'x = "*"').replace("float32[N, 2]", "float32[N, 4]")
    d = _csv_error(tmp_path, "a,a,c,d,y\n1,2,3,4,0\n5,6,7,8,1\n", spec, at_plan=True)
    assert d.message == "t.csv has a duplicate column `a` (columns 1 and 2): columns are found by name"
    assert (d.span.line, d.span.col, d.span.end_col) == (1, 3, 4)


def test_csv_duplicate_column_that_no_input_uses_is_harmless(tmp_path):
    (tmp_path / "t.csv").write_text("note,a,b,y,note\nx,1,2,0,z\nx,3,4,1,z\nx,5,6,2,z\n")
    assert len(load(plan_of(tmp_path, CSV_SPEC)).train) == 2


def test_csv_with_a_byte_order_mark(tmp_path):
    (tmp_path / "t.csv").write_text("y,a,b\n0,1,2\n1,3,4\n2,5,6\n", encoding="utf-8-sig")
    data = load(plan_of(tmp_path, CSV_SPEC.replace('path = "t.csv"', 'path = "t.csv", val_fraction = 0')))
    assert data.train.tensors["label"].tolist() == [0, 1, 2] and data.train.tensors["x"][0].tolist() == [1.0, 2.0]


def test_csv_with_a_byte_order_mark_locates_cells(tmp_path):
    (tmp_path / "t.csv").write_text("y,a,b\n0,1,2\n1,3,oops\n", encoding="utf-8-sig")
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, CSV_SPEC))
    assert "3 | 1,3,oops" in err.value.diagnostics[0].render()


NPZ_SPEC = TWO_FEATURES + """train {
  data npz { path = "d.npz", val_fraction = 0 }
  targets { label = int64[N] }
  loss cross_entropy {}
}
"""


def _npz_error(tmp_path, **arrays):
    base = {"x": np.zeros((10, 2), "float32"), "label": np.arange(10) % 3}
    np.savez(tmp_path / "d.npz", **{**base, **arrays})
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, NPZ_SPEC))
    (d,) = err.value.diagnostics
    assert d.code == "E0702"
    return d


def test_npz_class_label_out_of_range(tmp_path):
    labels = np.arange(10) % 3
    labels[6] = 7
    d = _npz_error(tmp_path, label=labels)
    assert d.message == "array `label` in d.npz has the class label 7 at index 6, but the output has 3 classes " \
                        "(labels 0 to 2)"


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_npz_float_array_that_is_not_finite(tmp_path, value):
    x = np.zeros((10, 2), "float32")
    x[4, 1] = value
    d = _npz_error(tmp_path, x=x)
    assert d.message == f"array `x` in d.npz has {value} at index [4, 1], which is not a finite number"


def test_npy_float_array_that_is_not_finite(tmp_path):
    (tmp_path / "arr").mkdir()
    x = np.zeros((6, 2))
    x[5, 0] = np.nan
    np.save(tmp_path / "arr" / "x.npy", x)
    np.save(tmp_path / "arr" / "label.npy", np.arange(6) % 3)
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, NPZ_SPEC.replace('npz { path = "d.npz"', 'npy { path = "arr"')))
    assert err.value.diagnostics[0].message == "arr/x.npy has nan at index [5, 0], which is not a finite number"


def _truncate_member(path, member: str, size: int) -> None:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        contents = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in contents.items():
            zf.writestr(name, data[:size] if name == member else data)


def test_npz_with_a_truncated_member_is_refused_by_the_probe(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((80, 2), "float32"), label=np.arange(80) % 3)
    _truncate_member(tmp_path / "d.npz", "x.npy", 200)
    with pytest.raises(SpecError) as err:
        plan_of(tmp_path, NPZ_SPEC)
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.message == f"cannot read {tmp_path / 'd.npz'}: array `x` is truncated " \
                                          "(200 of the 768 bytes its header promises)"


def test_npz_member_truncated_after_the_check_is_refused_while_loading(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((80, 2), "float32"), label=np.arange(80) % 3)
    plan = plan_of(tmp_path, NPZ_SPEC)
    _truncate_member(tmp_path / "d.npz", "x.npy", 200)
    with pytest.raises(SpecError) as err:
        load(plan)
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.message.startswith("cannot read array `x` in d.npz: ")


def test_digits_need_ten_classes(tmp_path):
    with pytest.raises(SpecError) as err:
        plan_of(tmp_path, CLASSIFIER.format(input="float32[N, 64]", data="data digits {}").replace("Linear(10)",
                                                                                                   "Linear(5)"))
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.message == "digits labels are 0 to 9, but the output has only 5 classes"


def test_a_label_equal_to_the_losss_ignore_index_is_kept(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2), "float32"), label=np.array([0, 255, 2, 1]))
    plan = plan_of(tmp_path, NPZ_SPEC.replace("cross_entropy {}", "cross_entropy { ignore_index = 255 }"))
    assert load(plan).train.tensors["label"].tolist() == [0, 255, 2, 1]
    with pytest.raises(SpecError) as err:  # without it, 255 is out of range: the default ignore_index is -100
        load(plan_of(tmp_path, NPZ_SPEC))
    assert "has the class label 255 at index 1" in err.value.diagnostics[0].message
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2), "float32"), label=np.array([0, 255, 2, 4]))
    with pytest.raises(SpecError) as err:  # 4 lies between the smallest and largest label, yet is no class
        load(plan)
    assert "has the class label 4 at index 3" in err.value.diagnostics[0].message


TOKENS_SPEC = """spec 1
model M {
  input tokens: int64[N, 3]
  y = tokens |> emb: Embedding(50, 4) |> Flatten |> Linear(2)
  output y
}
train {
  DATA
  targets { label = int64[N] }
  loss cross_entropy {}
  optimizer SGD { lr = 0.1 }
}
"""


def test_token_ids_beyond_the_embedding_are_refused_at_load(tmp_path):
    """torch would fail inside the Embedding ("index out of range in self") in the middle of training."""
    np.savez(tmp_path / "d.npz", tokens=np.array([[1, 2, 3], [4, 50, 6]]), label=np.array([0, 1]))
    plan = plan_of(tmp_path, TOKENS_SPEC.replace("DATA", 'data npz { path = "d.npz", val_fraction = 0 }'))
    with pytest.raises(SpecError) as err:
        load(plan)
    (d,) = err.value.diagnostics
    assert d.message == ("array `tokens` in d.npz has the id 50 at index [1, 1], "
                         "but Embedding `emb` has 50 rows (ids 0 to 49)")
    (tmp_path / "d.csv").write_text("a,b,c,y\n1,2,3,0\n4,-1,6,1\n")
    plan = plan_of(tmp_path, TOKENS_SPEC.replace(
        "DATA", 'data csv { path = "d.csv", inputs { tokens = ["a", "b", "c"] }, targets { label = "y" }, '
                'val_fraction = 0 }'))
    with pytest.raises(SpecError) as err:
        load(plan)
    (d,) = err.value.diagnostics
    assert d.message == "column `b` of d.csv has the id '-1' on line 3, but Embedding `emb` has 50 rows (ids 0 to 49)"
    assert (d.span.line, d.span.col) == (3, 3)


@pytest.mark.parametrize("row, cells, col, label", [
    ("1,000,2,1", 4, 9, "extra cell"),  # an unquoted thousands separator: b would silently read 0
    ("3,4", 2, 4, "missing cell"),  # just past the line's end
])
def test_csv_row_with_other_than_the_headers_number_of_cells_is_located(tmp_path, row, cells, col, label):
    (tmp_path / "t.csv").write_text(f"a,b,y\n1,2,0\n{row}\n")
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, CSV_SPEC))
    (d,) = err.value.diagnostics
    assert (d.code, d.message, d.span.line, d.span.col, d.label) == \
        ("E0702", f"line 3 of t.csv has {cells} cells, but the header has 3 columns", 3, col, label)


# ---- data loaded as declared, or refused before the first step -------------------------------------
@pytest.mark.parametrize("input_type", ["float32[N, 4, 16]", "float32[N, 64, 1]", "float32[N, 8, 8]"])
def test_digits_fill_any_input_of_64_values(tmp_path, input_type):
    plan = plan_of(tmp_path, CLASSIFIER.format(input=input_type, data="data digits { val_fraction = 0 }"))
    x = load(plan).train.tensors["x"]
    shape = tuple(int(d) for d in plan.data.fields[0].slot.type.shape[1:])
    assert x.shape == (1797, *shape) and x[1].flatten().tolist() == (load_digits().data[1] / 16).tolist()


SEQUENCES = """spec 1

model M {
  input x: float32[N, T, 4]
  h = x |> fc: Linear(3)
  output h
}

train {
  data npz { path = "d.npz" SETTINGS }
  targets { y = float32[N, T, 3] }
  loss mse {}
}
"""


def test_npz_arrays_of_one_file_agree_on_their_symbolic_sizes(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 6, 4), "float32"), y=np.zeros((10, 8, 3), "float32"))
    with pytest.raises(SpecError) as err:
        plan_of(tmp_path, SEQUENCES.replace(" SETTINGS", ""))
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.message == \
        "array `y` in d.npz has shape [10, 8, 3]: `T` would be both 6 (array `x` in d.npz) and 8"


def test_standard_normalisation_of_a_sequence_fits_another_length(tmp_path):
    rng = np.random.default_rng(0)
    for name, n, t in (("d.npz", 10, 6), ("v.npz", 5, 7)):
        np.savez(tmp_path / name, x=rng.normal(3.0, 2.0, (n, t, 4)).astype("float32"), y=np.zeros((n, t, 3), "f4"))
    data = load(plan_of(tmp_path, SEQUENCES.replace(
        "SETTINGS", ', val_path = "v.npz", normalize { kind = "standard" }')))
    assert data.normalization["x"]["mean"].shape == (1, 1)  # one mean over T: per position it would not fit T = 7
    assert data.val.tensors["x"].shape == (5, 7, 4)


def test_standard_normalisation_only_centres_a_constant_channel(tmp_path):
    for name, constant in (("d.npz", 1.0), ("v.npz", 5.0)):  # a value the training split never shows
        x = np.stack([np.full(10, constant), np.arange(10)], axis=1).astype("float32")
        np.savez(tmp_path / name, x=x, label=np.arange(10) % 3)
    data = load(plan_of(tmp_path, NPZ_SPEC.replace("val_fraction = 0", 'val_path = "v.npz", '
                                                   'normalize { kind = "standard" }')))
    assert data.normalization["x"]["std"][0] == 1.0 and data.val.tensors["x"][:, 0].tolist() == [4.0] * 10


def test_npz_array_in_big_endian_byte_order(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.arange(20).reshape(10, 2).astype(">f4"), label=(np.arange(10) % 3).astype(">i8"))
    data = load(plan_of(tmp_path, NPZ_SPEC))
    assert data.train.tensors["x"][3].tolist() == [6.0, 7.0] and data.train.tensors["label"][4] == 1


def test_npy_without_a_path_reads_the_specs_folder(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((10, 2), "float32"))
    np.save(tmp_path / "label.npy", np.arange(10) % 3)
    (tmp_path / "cwd").mkdir()
    np.save(tmp_path / "cwd" / "x.npy", np.ones((10, 2), "float32"))
    np.save(tmp_path / "cwd" / "label.npy", np.arange(10) % 3)
    monkeypatch.chdir(tmp_path / "cwd")
    data = load(plan_of(tmp_path, NPZ_SPEC.replace('npz { path = "d.npz",', "npy {")))
    assert data.train.tensors["x"].sum() == 0


def test_npy_object_array_is_refused_unread_and_a_val_file_is_named(tmp_path):
    for folder in ("arr", "val"):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "label.npy", np.arange(10) % 3)
    np.save(tmp_path / "arr" / "x.npy", np.array([{"a": 1}] * 10, dtype=object), allow_pickle=True)
    np.save(tmp_path / "val" / "x.npy", np.zeros((10, 3), "float32"))
    with pytest.raises(SpecError) as err:
        plan_of(tmp_path, NPZ_SPEC.replace('npz { path = "d.npz", val_fraction = 0',
                                           'npy { path = "arr", val_path = "val"'))
    assert [d.message for d in err.value.diagnostics] == [
        "arr/x.npy holds Python object values, not numbers",
        "val/x.npy has shape [10, 3], which does not fit float32[N, 2]"]


def test_a_damaged_validation_file_is_located_at_val_path(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 2), "float32"), label=np.arange(10) % 3)
    (tmp_path / "v.npz").write_text("not a zip file")
    with pytest.raises(SpecError) as err:
        plan_of(tmp_path, NPZ_SPEC.replace("val_fraction = 0", 'val_path = "v.npz"'))
    (d,) = err.value.diagnostics
    assert d.message == f"cannot read {tmp_path / 'v.npz'}: File is not a zip file"
    assert d.span.col == NPZ_SPEC.splitlines()[9].index("val_fraction") + 1


def test_val_fraction_beside_val_path_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 2), "float32"), label=np.arange(10) % 3)
    with pytest.raises(SpecError) as err:
        plan_of(tmp_path, NPZ_SPEC.replace("val_fraction = 0", 'val_path = "d.npz", val_fraction = 0.3'))
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.message == "val_fraction and val_path both give the validation split"


def test_csv_validation_file_without_rows_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    (tmp_path / "v.csv").write_text("a,b,y\n")
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, CSV_SPEC.replace('path = "t.csv"', 'path = "t.csv", val_path = "v.csv"')))
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.message == "v.csv has no samples" and d.span.file.endswith("m.dlspec")


def test_csv_that_is_not_utf8_is_refused_with_its_line(tmp_path):
    (tmp_path / "t.csv").write_bytes(b"a,b,y\n" + b"1,2,0\n" * 3000 + b"3,4,\xe9\n")
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, CSV_SPEC))
    (d,) = err.value.diagnostics
    assert d.code == "E0702" and d.message.startswith("line 3002 of t.csv is not UTF-8 text: byte 0xe9")


def test_csv_record_the_csv_module_refuses_is_located(tmp_path):
    d = _csv_error(tmp_path, 'a,b,y\n1,2,0\n"' + "1" * 200_000 + '",4,1\n')
    assert d.message == "line 3 of t.csv cannot be read as CSV: field larger than field limit (131072)"
    assert d.span.line == 3


def test_csv_lines_are_counted_across_a_quoted_line_break(tmp_path):
    d = _csv_error(tmp_path, 'a,b,y\n1,2,0\n"3\n",4,1\n5,oops,2\n')
    assert d.message == "column `b` of t.csv has a non-number 'oops' on line 5" and d.span.line == 5


def test_csv_cell_after_quoted_cells_is_located_where_it_is_written(tmp_path):
    (tmp_path / "t.csv").write_text('a,b,y\n1,2,0\n"3",oops,"1"\n')
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, CSV_SPEC))
    (d,) = err.value.diagnostics
    assert (d.span.line, d.span.col, d.span.end_col) == (3, 5, 9)


def test_csv_cell_after_a_quoted_line_break_is_located_on_its_own_line(tmp_path):
    (tmp_path / "t.csv").write_text('note,a,b,y\nx,1,2,0\n"two\nlines",3,oops,1\n')
    with pytest.raises(SpecError) as err:
        load(plan_of(tmp_path, CSV_SPEC))
    (d,) = err.value.diagnostics
    assert "'oops' on line 4" in d.message and (d.span.line, d.span.col, d.span.end_col) == (4, 10, 14)
