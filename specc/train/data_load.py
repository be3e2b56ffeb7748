"""Data loading: a probed DataPlan (data.py) read into memory as tensors, the second of the data stages.

`load_data` reads the source into tensors of the declared dtypes and shapes, refusing values that
would poison or crash training (each located at its array index or CSV cell), splits train/val
with `data.seed`, and normalises float inputs. `in_model_dtype` casts the float inputs to the
dtype of the model that trains on them.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import Diagnostic, SpecError
from ..ir import dims as D
from ..ir.types import FLOAT_DTYPES, INT_DTYPES, TensorType
from .data import CSV_ENCODING, DataPlan, Field, cell_span, npy_name, npy_path


@dataclass(frozen=True)
class Split:
    """Samples in memory: one tensor per slot, all with the same first dimension."""

    tensors: dict  # slot name -> torch.Tensor

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values()))) if self.tensors else 0


@dataclass(frozen=True)
class Dataset:
    train: Split
    val: Split | None
    normalization: dict  # input -> {"mean": tensor, "std": tensor} (or {"scale": float})


def load_data(plan: DataPlan, spec_span: Callable) -> Dataset:
    """Read the source into tensors of the declared types; split, then normalise float inputs."""
    cfg = plan.config
    everything = _read(plan, plan.path, spec_span)
    if plan.val_path is not None:
        train, val = Split(everything), Split(_read(plan, plan.val_path, spec_span))
    else:
        train, val = _split(Split(everything), cfg.val_fraction, cfg.seed, spec_span)
    stats = _fit_normalization(plan, train)
    return Dataset(_normalized(train, stats), _normalized(val, stats) if val is not None else None, stats)


def in_model_dtype(dataset: Dataset, inputs, weight_dtype: str, model) -> Dataset:
    """The dataset with the float inputs declared in the spec's weight dtype cast to the model's own
    (`specc.compile(dtype="float64")`), by the rule the exporters' samples follow."""
    from ..exporters.samples import input_dtype, model_float_dtype

    dtypes = {s.name: input_dtype(s.type.dtype, weight_dtype, model_float_dtype(model)) for s in inputs}

    def cast(split: Split | None) -> Split | None:
        return split and Split({k: t.to(dtypes[k]) if k in dtypes else t for k, t in split.tensors.items()})
    return dataclasses.replace(dataset, train=cast(dataset.train), val=cast(dataset.val))


def _read(plan: DataPlan, path: Path | None, spec_span) -> dict:
    reader = {"digits": _read_digits, "synthetic": _read_synthetic, "npz": _read_arrays, "npy": _read_arrays,
              "csv": _read_csv}[plan.kind]
    arrays = reader(plan, path, spec_span)
    tensors = {f.slot.name: _as_declared(arrays[f.slot.name], f.slot.type) for f in plan.fields}
    if not len(Split(tensors)):  # an empty validation file would log a val/loss of 0 and pick best.pt by it
        raise SpecError([Diagnostic("E0702", f"{path.name} has no samples", spec_span("data", _setting(plan, path)),
                                    label="empty")])
    return tensors


def _setting(plan: DataPlan, path: Path) -> str:
    """The data setting that names the file `path`."""
    return "val_path" if path == plan.val_path else "path"


def _as_declared(array, t: TensorType):
    """A tensor of the slot's dtype and shape. An array of the slot's rank keeps its sizes (the probe
    checked them); flat rows (CSV columns, the 64 pixels of a digit) are reshaped to the static shape."""
    import numpy as np
    import torch

    # torch reads native byte order only (a big-endian array saved elsewhere keeps its order)
    tensor = array if isinstance(array, torch.Tensor) else \
        torch.as_tensor(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("=")))
    shape = tensor.shape if tensor.dim() == t.rank else (len(tensor), *(int(d) for d in t.shape[1:]))
    return tensor.to(getattr(torch, t.dtype)).reshape(shape).contiguous()


# ---- the sources ------------------------------------------------------------------------------
# Every reader takes (plan, path, spec_span); digits and synthetic data need no file.
def _read_digits(plan: DataPlan, path, spec_span) -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    image, label = (f.slot.name for f in plan.fields)
    # flat rows of 64 pixels: reshaped to the input's shape, which need not be 8x8 (e.g. [N, 4, 16])
    return {image: (digits.data / 16.0).astype("float32"), label: digits.target.astype("int64")}


def _read_synthetic(plan: DataPlan, path, spec_span) -> dict:
    import torch

    cfg = plan.config
    gen = torch.Generator().manual_seed(cfg.seed)
    env = dict(plan.dims)
    out = {}
    for f in plan.fields:
        t = f.slot.type
        shape = (cfg.samples,) + tuple(D.substitute(d, env) for d in t.shape[1:])
        if t.dtype in FLOAT_DTYPES:
            values = torch.randn(shape, generator=gen)
            if f.loss == "bce_with_logits":
                values = (values > 0).float()
        elif t.dtype == "bool":
            values = torch.rand(shape, generator=gen) < 0.5
        else:
            values = torch.randint(0, f.int_high, shape, generator=gen)
        out[f.slot.name] = values
    return out


def _read_arrays(plan: DataPlan, path: Path, spec_span) -> dict:
    import numpy as np

    arrays = {}
    if plan.kind == "npz":
        with np.load(path, allow_pickle=False) as npz:
            for f in plan.fields:
                what = f"array `{f.source[0]}` in {path.name}"
                arrays[f.slot.name] = _load_array(lambda: npz[f.source[0]], f, what, spec_span)
    else:
        for f in plan.fields:
            file = npy_path(path, f.source[0])
            arrays[f.slot.name] = _load_array(lambda: np.load(file, allow_pickle=False), f, npy_name(file),
                                              spec_span)
    _same_length(arrays, path, spec_span)
    return arrays


def _load_array(load: Callable, f: Field, what: str, spec_span):
    """One array, read whole and checked; a member or file cut short or corrupted is an E0702, not a crash."""
    try:
        array = load()
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise SpecError([Diagnostic("E0702", f"cannot read {what}: {err}", _field_span(f, spec_span),
                                    label="unreadable", help="the file is damaged or incomplete: write it again")])
    _refuse_bad_array_value(f, array, what, spec_span)
    return array


def _refuse_bad_array_value(f: Field, array, what: str, spec_span) -> None:
    """An E0702 at the field's mapping for the first value of `array` that fails a check: "{what} has ..."."""
    for bad, problem, label, help in _value_problems(f, array):
        index = _first(bad)
        if index is not None:
            message = f"{what} " + problem.format(value=array[index], at=f"at index {_fmt_index(index)}")
            raise SpecError([Diagnostic("E0702", message, _field_span(f, spec_span), label=label, help=help)])


def _field_span(f: Field, spec_span):
    return spec_span("data", "inputs" if f.role == "input" else "targets", f.slot.name)


def _same_length(arrays: dict, where: Path, spec_span) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{n}: {k}" for n, k in lengths.items())
        raise SpecError([Diagnostic("E0702", f"the arrays in {where} have different numbers of samples ({listing})",
                                    spec_span("data"), label="lengths differ")])


def _read_csv(plan: DataPlan, path: Path, spec_span) -> dict:
    import numpy as np

    cfg = plan.config
    records = _csv_records(path, cfg.delimiter, spec_span("data", _setting(plan, path)))
    header = [c.strip() for c in records[0][1]]
    where = {c: i for i, c in enumerate(header)}
    body = [(line, r) for line, r in records[1:] if any(cell.strip() for cell in r)]
    for line, row in body:
        _check_row_length(row, line, len(header), path, cfg.delimiter)
    out = {}
    for f in plan.fields:
        cols = [where[c] for c in f.source]
        values = np.empty((len(body), len(cols)), dtype="float64")
        for i, (line, row) in enumerate(body):
            for j, col in enumerate(cols):
                values[i, j] = _cell(row, col, line, path, header[col], cfg.delimiter)
        _refuse_bad_cell(f, values, (body, cols, path, header, cfg.delimiter))
        out[f.slot.name] = values if f.role == "input" else values[:, 0]
    return out


def _csv_records(path: Path, delimiter: str, path_span) -> list[tuple[int, list[str]]]:
    """(line, cells) of each record, with the line it starts on (a quoted cell may span lines)."""
    raw = path.read_bytes()
    try:
        text = raw.decode(CSV_ENCODING)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise SpecError([Diagnostic("E0702", f"line {line} of {path.name} is not UTF-8 text: byte "
                                    f"{raw[err.start]:#04x} at offset {err.start}", path_span, label="not UTF-8",
                                    help="save the file as UTF-8")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records, line = [], 1
    try:
        for row in reader:
            records.append((line, row))
            line = reader.line_num + 1
    except csv.Error as err:
        raise SpecError([Diagnostic("E0702", f"line {line} of {path.name} cannot be read as CSV: {err}",
                                    cell_span(path, [], 0, line, delimiter), label="unreadable")]) from None
    return records


def _check_row_length(row, line: int, columns: int, path: Path, delimiter: str) -> None:
    """A row of more or fewer cells than the header (an unquoted delimiter in a value) would shift its values
    into the wrong columns: refuse it at the first cell past the header's columns, or at the row's end."""
    if len(row) == columns:
        return
    extra = len(row) > columns
    raise SpecError([Diagnostic(
        "E0702", f"line {line} of {path.name} has {len(row)} cells, but the header has {columns} columns",
        cell_span(path, row, min(len(row), columns), line, delimiter), label="extra cell" if extra else "missing cell",
        help=f"quote a value that contains the delimiter {delimiter!r}" if extra else
        "give every row a cell for each column of the header")])


def _cell(row, col: int, line: int, path: Path, name: str, delimiter: str) -> float:
    try:
        return float(row[col])
    except ValueError:
        span = cell_span(path, row, col, line, delimiter)
        raise SpecError([Diagnostic("E0702", f"column `{name}` of {path.name} has a non-number "
                                    f"{row[col]!r} on line {span.line}", span, label="not a number")]) from None


def _refuse_bad_cell(f: Field, values, where: tuple) -> None:
    """An E0702 at the first cell of `values` (rows x the field's columns) that fails a check, as written:
    "column `c` of FILE has ..."."""
    body, cols, path, header, delimiter = where
    for bad, problem, label, help in _value_problems(f, values):
        index = _first(bad)
        if index is not None:
            (line, row), col = body[index[0]], cols[index[1]]
            span = cell_span(path, row, col, line, delimiter)
            message = f"column `{header[col]}` of {path.name} " + problem.format(value=repr(row[col]),
                                                                                at=f"on line {span.line}")
            raise SpecError([Diagnostic("E0702", message, span, label=label, help=help)])


# ---- value checks (arrays and CSV cells alike) -------------------------------------------------
def _value_problems(f: Field, values):
    """The checks that refuse values which would poison or crash training, or wrap when cast to the
    slot's dtype, one by one: (which values fail it, the problem with {value} and {at} to fill in, label,
    help). The values' min and max decide whether any value fails a check; only then is it located."""
    import numpy as np

    if values.size == 0 or values.dtype.kind not in "biuf":
        return
    lo, hi = values.min(), values.max()  # NaN propagates into both
    floats = values.dtype.kind == "f"
    if floats and not (np.isfinite(lo) and np.isfinite(hi)):
        yield ~np.isfinite(values), "has {value} {at}, which is not a finite number", "not a finite number", None
    if floats and f.slot.type.dtype in INT_DTYPES:  # CSV numbers (an array of floats is refused by the probe)
        yield values != np.round(values), f"feeds an integer {f.role} but has {{value}} {{at}}", \
            "not a whole number", None
    if f.class_indices and not (lo >= 0 and (f.classes is None or hi < f.classes)):
        yield ~_is_label(values, f), f"has the class label {{value}} {{at}}, {_classes_text(f)}", \
            "label out of range", _labels_help(f)
    low, high = _bounds(f)
    if not (low <= lo and hi <= high):
        yield (values < low) | (values > high), f"has {{value}} {{at}}, outside the range of {f.slot.type.dtype}", \
            "out of range", None
    if f.rows and not (0 <= lo and hi < f.rows[0]):
        yield (values < 0) | (values >= f.rows[0]), f"has the id {{value}} {{at}}, {_rows_text(f)}", \
            "id out of range", None


def _first(mask):
    """The index of the first True in `mask` (a tuple for arrays of rank 2 and more), or None."""
    import numpy as np

    if mask.size == 0:
        return None
    flat = int(np.argmax(mask))
    if not mask.flat[flat]:
        return None
    return flat if mask.ndim == 1 else tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def _fmt_index(index) -> str:
    return f"[{', '.join(map(str, index))}]" if isinstance(index, tuple) else str(index)


def _bounds(f: Field) -> tuple[float, float]:
    """The values the slot's dtype holds (a float slot: its finite range)."""
    import torch

    if f.slot.type.dtype == "bool":
        return -math.inf, math.inf
    dtype = getattr(torch, f.slot.type.dtype)
    info = torch.finfo(dtype) if dtype.is_floating_point else torch.iinfo(dtype)
    return float(info.min), float(info.max)


def _is_label(values, f: Field):
    """Which values are labels of the output's classes (or the ignore_index, which the loss skips)."""
    valid = values >= 0
    if f.classes is not None:
        valid &= values < f.classes
    return valid | (values == f.ignore_index)


def _classes_text(f: Field) -> str:
    if f.classes is None:
        return "but class labels cannot be negative"
    return f"but the output has {f.classes} class{'es' if f.classes != 1 else ''} (labels 0 to {f.classes - 1})"


def _rows_text(f: Field) -> str:
    rows, layer = f.rows
    return f"but Embedding `{layer}` has {rows} rows (ids 0 to {rows - 1})"


def _labels_help(f: Field) -> str:
    return f"fix the labels, or give the output more classes; {f.loss} skips labels equal to its " \
           f"ignore_index ({f.ignore_index})"


# ---- split and normalisation ----------------------------------------------------------------
def _split(data: Split, fraction: float, seed: int, spec_span) -> tuple[Split, Split | None]:
    import torch

    n = len(data)
    n_val = 0 if fraction == 0 else max(1, int(round(n * fraction)))
    if n - n_val < 1:
        raise SpecError([Diagnostic("E0702", f"the data has {n} samples: too few to hold out {fraction:g} for "
                                    "validation and still train", spec_span("data", "val_fraction"))])
    if n_val == 0:
        return data, None
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
    return (Split({k: v[train_idx] for k, v in data.tensors.items()}),
            Split({k: v[val_idx] for k, v in data.tensors.items()}))


def _fit_normalization(plan: DataPlan, train: Split) -> dict:
    norm = plan.config.normalize
    if norm is None:
        return {}
    stats = {}
    for f in plan.fields:
        if f.role != "input" or f.slot.type.dtype not in FLOAT_DTYPES:
            continue
        x = train.tensors[f.slot.name]
        if norm.kind == "scale":
            stats[f.slot.name] = {"scale": float(norm.scale)}
        elif norm.kind == "fixed":
            stats[f.slot.name] = {"mean": float(norm.mean), "std": float(norm.std)}
        else:
            dims = [d for d in range(x.dim()) if d != _feature_dim(f.slot.type)]
            mean = x.double().mean(dim=dims, keepdim=True)
            std = x.double().std(dim=dims, keepdim=True).clamp_min(1e-8)
            # a channel constant in the training split is only centred: dividing by a std of ~0 would blow the
            # validation values up wherever they differ from that constant
            std[x.amax(dim=dims, keepdim=True) == x.amin(dim=dims, keepdim=True)] = 1.0
            stats[f.slot.name] = {"mean": mean[0].float(), "std": std[0].float()}
    return stats


def _feature_dim(t: TensorType) -> int | None:
    """Channels for images and sequences ([N, C, ...]), the features of tables ([N, F]); None (one mean and
    std for everything) when dim 1 has no fixed size: stats per position of a sequence [N, T, ...] would not
    fit another T."""
    return 1 if t.rank >= 2 and D.is_static(t.shape[1]) else None


def _normalized(split: Split, stats: dict) -> Split:
    if not stats:
        return split
    out = dict(split.tensors)
    for name, s in stats.items():
        x = out[name]
        out[name] = x * s["scale"] if "scale" in s else ((x - s["mean"]) / s["std"]).to(x.dtype)
    return Split(out)
