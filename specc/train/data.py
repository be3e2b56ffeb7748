"""Data sources: probed before training (torch-free), then loaded into memory as tensors.

`probe_data` checks a `data` section against the model's inputs and the declared targets
without reading whole files: files exist, CSV headers have the columns, array headers have
shapes and dtypes that fit. `load_data` then reads everything into tensors of the declared
dtypes and shapes, splits train/val with `data.seed`, and normalises float inputs.

Sources: `digits` (scikit-learn's bundled 8x8 digits, offline), `synthetic` (random tensors
shaped from the model), `npz` / `npy` (arrays by key / file), `csv` (columns -> inputs and
targets). Relative paths are resolved against the spec file's folder.
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

from ..errors import Diagnostic, SpecError, did_you_mean
from ..io import machine_memory
from ..ir import dims as D
from ..ir.types import FLOAT_DTYPES, INT_DTYPES, TensorType
from ..source import SourceSpan, register_source, source_line

DIGITS_PIXELS = 64
DIGITS_CLASSES = 10
MAX_SYNTHETIC_VALUES = 2**30  # all synthetic tensors together (4 GiB of float32); refused before allocating
MISSING_FILE = "no such file"  # the label of a missing data file: `specc check` warns, `specc train` stops
CLASS_LOSSES = ("cross_entropy", "nll")  # losses whose integer targets index the output's classes
IGNORE_INDEX = -100  # their default ignore_index (torch's): a label that is skipped, not a class
CSV_ENCODING = "utf-8-sig"  # UTF-8, with or without the byte order mark that Excel writes


@dataclass(frozen=True)
class Slot:
    """A named tensor the data provides: a model input or a declared target."""

    name: str
    type: TensorType


@dataclass(frozen=True)
class Field:
    """Where one slot's values come from: an array key, a .npy file, CSV columns, or generated."""

    slot: Slot
    role: str  # input | target
    source: tuple = ()  # npz: (key,); npy: (file,); csv: column names; synthetic: (high,) for ints
    loss: str | None = None  # the loss this target feeds (synthetic data draws fitting values)
    classes: int | None = None  # the output's class count, for a target of class indices (None: unknown)
    ignore_index: int = IGNORE_INDEX  # a class-index label that the loss skips
    rows: tuple[int, str] | None = None  # an input's Embedding: (its number of rows, its layer)

    @property
    def class_indices(self) -> bool:
        """Whether the values are class labels of cross_entropy / nll: each in [0, classes) or ignore_index."""
        return self.role == "target" and self.loss in CLASS_LOSSES and self.slot.type.dtype in INT_DTYPES


@dataclass(frozen=True)
class DataPlan:
    config: object  # the data section (schema model)
    fields: tuple[Field, ...]
    path: Path | None = None
    val_path: Path | None = None
    dims: tuple[tuple[str, int], ...] = ()  # synthetic: sizes of symbols other than the batch dim

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def has_val(self) -> bool:
        return self.val_path is not None or self.config.val_fraction > 0


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


# ---- probing -------------------------------------------------------------------------------------
class _Probe:
    def __init__(self, cfg, base: Path, inputs, targets, target_losses: dict, ir, span_of: Callable):
        self.cfg, self.base, self.ir = cfg, base, ir
        self.inputs, self.targets = tuple(inputs), tuple(targets)
        self.target_losses = target_losses  # target -> (loss kind, classes or None, ignore_index or None)
        self.span_of = span_of
        self.diagnostics: list[Diagnostic] = []

    def error(self, message: str, *path, label: str = "", help: str | None = None, code: str = "E0702"):
        diagnostic = Diagnostic(code, message, self.span_of(*path), label=label, help=help)
        if diagnostic not in self.diagnostics:  # a damaged .npz is met once per array in it
            self.diagnostics.append(diagnostic)

    def resolve(self, text: str | None) -> Path | None:
        if text is None:
            return None
        p = Path(text).expanduser()
        return p if p.is_absolute() else self.base / p

    def existing(self, text: str | None, *path, what: str = "file") -> Path | None:
        p = self.resolve(text)
        if p is None:
            return None
        if not p.exists():
            self.error(f"data {what} not found: {p}", *path, label=MISSING_FILE,
                       help="relative paths are resolved against the spec file's folder")
            return None
        if not (p.is_dir() if what == "folder" else p.is_file()):  # /dev/zero or a pipe would be read for ever
            self.error(f"{p} is not a {'folder' if what == 'folder' else 'regular file'}", *path,
                       label=f"not a {what}")
            return None
        return p

    def run(self) -> DataPlan | None:
        kind = self.cfg.kind
        plan = {"digits": self.digits, "synthetic": self.synthetic, "npz": self.arrays, "npy": self.arrays,
                "csv": self.csv}[kind]()
        self._normalize()
        if self.diagnostics or plan is None:
            return None
        return dataclasses.replace(plan, fields=tuple(self._with_rows(f) for f in plan.fields))

    def _with_rows(self, f: Field) -> Field:
        """An integer input that an Embedding looks up knows the table's size (its values must be below it)."""
        if f.role != "input" or f.slot.type.dtype not in INT_DTYPES:
            return f
        return dataclasses.replace(f, rows=self._embedding_rows(f.slot))

    def _normalize(self) -> None:
        norm = self.cfg.normalize
        if norm is None:
            return
        if norm.kind == "scale" and norm.scale is None:
            self.error("normalize scale needs `scale` (e.g. scale = 0.0625)", "normalize", label="missing scale")
        if norm.kind == "fixed" and (norm.mean is None or norm.std is None):
            self.error("normalize fixed needs `mean` and `std`", "normalize", label="missing mean/std")

    # -- digits
    def digits(self) -> DataPlan | None:
        image = self._one(self.inputs, self.cfg.input, "input", "input")
        label = self._one(self.targets, self.cfg.target, "target", "target")
        if image is None or label is None:
            return None
        t = image.type
        if t.dtype not in FLOAT_DTYPES or _per_sample(t) != DIGITS_PIXELS:
            self.error(f"digits are 8x8 float images, but input `{image.name}` is {t}", label="does not fit",
                       help="declare the input as float32[N, 1, 8, 8] (or float32[N, 64])")
        lt = label.type
        if lt.dtype not in INT_DTYPES or _per_sample(lt) != 1:
            self.error(f"digits labels are class indices, but target `{label.name}` is {lt}", label="does not fit",
                       help=f"declare it as `{label.name} = int64[N]`")
        fields = (Field(image, "input", ("images",)), self._field(label, "target", ("labels",)))
        if fields[1].class_indices and (fields[1].classes or DIGITS_CLASSES) < DIGITS_CLASSES:
            self.error(f"digits labels are 0 to {DIGITS_CLASSES - 1}, but the output has only {fields[1].classes} "
                       "classes", label="too few classes", help=f"give the output {DIGITS_CLASSES} classes")
        return DataPlan(self.cfg, fields)

    def _one(self, slots, name, what: str, key: str) -> Slot | None:
        names = [s.name for s in slots]
        if name is not None:
            if name in names:
                return slots[names.index(name)]
            self.error(f"`{name}` is not a model {what}" if what == "input" else f"target `{name}` is not declared",
                       key, label=f"unknown {what}", help=_did_you_mean(name, names))
            return None
        if len(slots) == 1:
            return slots[0]
        if not slots:
            self.error("the data gives labels but no target is declared", label="no target",
                       help="declare one: targets { label = int64[N] }")
        else:
            self.error(f"the model has several {what}s ({', '.join(names)}): name the one for the data",
                       label=f"which {what}?", help=f"add `{key} = {names[0]}`")
        return None

    # -- synthetic
    def synthetic(self) -> DataPlan | None:
        env = dict(self.cfg.dims)
        slots = [(role, slot) for role, group in (("input", self.inputs), ("target", self.targets)) for slot in group]
        if not self._synthetic_dims(env, slots):
            return None
        fields, values = [], 0
        for role, slot in slots:
            missing = sorted(s for d in slot.type.shape[1:] if not D.is_static(d) for s in d.symbols
                             if s not in env)
            if missing:
                self.error(f"synthetic data needs a size for `{missing[0]}` ({role} `{slot.name}` is {slot.type})",
                           label="size unknown", help=f"add `dims {{ {missing[0]} = 32 }}` to the data section")
                continue
            sizes = [D.substitute(d, env) for d in slot.type.shape[1:]]
            if any(size < 1 for size in sizes):
                shown = ", ".join(f"{k} = {v}" for k, v in sorted(env.items()))
                self.error(f"with {shown}, {role} `{slot.name}` ({slot.type}) would be "
                           f"{D.fmt_shape(['N', *sizes])}: every size must be at least 1", "dims",
                           label="size below 1", help="choose larger sizes in `dims`")
                continue
            values += self.cfg.samples * D.prod(sizes)
            fields.append(self._field(slot, role, (self._int_high(slot, role),)))
        samples, fraction = self.cfg.samples, self.cfg.val_fraction
        if fraction > 0 and samples - max(1, int(round(samples * fraction))) < 1:
            self.error(f"synthetic data of {samples} sample{'s' if samples != 1 else ''} is too few to hold out "
                       f"{fraction:g} for validation and still train", "samples", label="too few samples",
                       help="raise `samples`, or set val_fraction = 0")
        if values > MAX_SYNTHETIC_VALUES:
            self.error(f"synthetic data of {samples:,} samples would hold {values:,} values, more than "
                       f"the limit of {MAX_SYNTHETIC_VALUES:,} (nothing was allocated)", "samples",
                       label="too large", help="lower `samples` (or the sizes in `dims`)")
        return DataPlan(self.cfg, tuple(fields), dims=tuple(sorted(env.items())))

    def _synthetic_dims(self, env: dict, slots) -> bool:
        """`dims` sizes symbols that the inputs and targets use, other than the batch dim."""
        batch = {str(slot.type.shape[0]) for _, slot in slots
                 if slot.type.shape and not D.is_static(slot.type.shape[0])}
        used = {s for _, slot in slots for d in slot.type.shape[1:] if not D.is_static(d) for s in d.symbols}
        ok = True
        for name in env:
            if name in batch and name not in used:
                self.error(f"`{name}` is the batch dimension: synthetic data has `samples` of it, not a size in dims",
                           "dims", name, label="batch dimension", help=f"remove `{name}` from dims; set `samples`")
                ok = False
            elif name not in used:
                self.error(f"dims gives a size for `{name}`, which no input or target uses", "dims", name,
                           label="unused", help=_did_you_mean(name, sorted(used)) if used else "remove it")
                ok = False
        return ok

    def _field(self, slot: Slot, role: str, source: tuple) -> Field:
        """A field that knows the loss its target feeds: its kind, classes and ignore_index."""
        if role != "target" or slot.name not in self.target_losses:
            return Field(slot, role, source)
        kind, classes, ignore_index = self.target_losses[slot.name]
        return Field(slot, role, source, kind, classes, IGNORE_INDEX if ignore_index is None else ignore_index)

    def _int_high(self, slot: Slot, role: str) -> int:
        """Exclusive upper bound for synthetic integers: class counts, embedding sizes."""
        if role == "target":
            classes = self.target_losses.get(slot.name, (None, None, None))[1]
            return classes or self.cfg.classes
        rows = self._embedding_rows(slot)
        return rows[0] if rows else self.cfg.classes

    def _embedding_rows(self, slot: Slot) -> tuple[int, str] | None:
        """The smallest Embedding table that input `slot` is looked up in: (its rows, its layer), or None."""
        sizes = [(getattr(self.ir.layers[n.layer].params, "num_embeddings", None), n.layer)
                 for n in self.ir.nodes if slot.name in n.inputs]
        sizes = [s for s in sizes if isinstance(s[0], int)]
        return min(sizes) if sizes else None

    # -- npz / npy
    def arrays(self) -> DataPlan | None:
        cfg = self.cfg
        self._unknown_names(cfg.inputs, self.inputs, "inputs", "input")
        self._unknown_names(cfg.targets, self.targets, "targets", "target")
        if cfg.kind == "npz" and cfg.path is None:
            self.error("npz data needs `path` (the .npz file)", label="missing path")
            return None
        # npy without `path`: the .npy files beside the spec
        path = self.existing(cfg.path or ".", "path", what="file" if cfg.kind == "npz" else "folder")
        val_path = self._val_path()
        if path is None:
            return None
        fields = []
        for role, slots, mapping in (("input", self.inputs, cfg.inputs), ("target", self.targets, cfg.targets)):
            for slot in slots:
                ref = mapping.get(slot.name, slot.name)
                fields.append(self._field(slot, role, (ref,)))
        for key, where in (("path", path), ("val_path", val_path)):
            if where is not None:
                sizes = {}  # symbol -> (size, array): the arrays of one file agree on N, T, ...
                for f in fields:
                    self._probe_array(f, where, key, sizes)
        return DataPlan(cfg, tuple(fields), path, val_path)

    def _val_path(self) -> Path | None:
        """The validation file; a val_fraction written beside it would be silently ignored, so it is refused."""
        cfg = self.cfg
        if cfg.val_path is not None and cfg.val_fraction > 0 and "val_fraction" in cfg.model_fields_set:
            self.error("val_fraction and val_path both give the validation split", "val_fraction",
                       label="one or the other", help="remove val_fraction: the validation data is val_path")
        return self.existing(cfg.val_path, "val_path", what="folder" if cfg.kind == "npy" else "file")

    def _unknown_names(self, mapping: dict, slots, key: str, what: str) -> None:
        names = [s.name for s in slots]
        for name in mapping:
            if name not in names:
                self.error(f"`{name}` is not a model {what}" if what == "input" else f"target `{name}` is not declared",
                           key, name, label=f"unknown {what}", help=_did_you_mean(name, names))

    def _probe_array(self, f: Field, path: Path, key: str, sizes: dict) -> None:
        mapping = "inputs" if f.role == "input" else "targets"
        try:
            shape, dtype, where = _array_header(self.cfg.kind, path, f.source[0])
        except ImportError:  # numpy comes with the torch extra; without it the arrays are checked by `specc train`
            return
        except FileNotFoundError as err:
            self.error(f"no data for {f.role} `{f.slot.name}`: {err}", mapping, f.slot.name,
                       label="not found", help=f"map it: {mapping} {{ {f.slot.name} = \"...\" }}")
            return
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            file = path if self.cfg.kind == "npz" else _npy_path(path, f.source[0])
            self.error(f"cannot read {file}: {err}", key, label="unreadable")
            return
        problem = fit_array(shape, dtype.kind, f.slot.type, sizes, where)
        if problem:
            self.error(f"{where} {problem}", mapping, f.slot.name, label="does not fit")
        memory = machine_memory()
        size = math.prod(shape) * dtype.itemsize  # from the header: a compressed npz may claim far more than it holds
        if memory is not None and size > memory:
            from ..summary import human_bytes
            self.error(f"{where} would take {human_bytes(size)}, more than this machine's {human_bytes(memory)} "
                       "of memory", key, label="too large")

    # -- csv
    def csv(self) -> DataPlan | None:
        cfg = self.cfg
        self._unknown_names(cfg.inputs, self.inputs, "inputs", "input")
        self._unknown_names(cfg.targets, self.targets, "targets", "target")
        path = self.existing(cfg.path, "path")
        val_path = self._val_path()
        if path is None:
            return None
        header = self._header(path)
        if header is None:
            return None
        if val_path is not None:
            val_header = self._header(val_path)
            if val_header is not None and val_header != header:
                self.error(f"{val_path} has other columns than {path}", "val_path", label="different header")
        fields = self._csv_fields(header, path)
        return DataPlan(cfg, fields, path, val_path) if fields is not None else None

    def _header(self, path: Path) -> list[str] | None:
        try:
            with open(path, newline="", encoding=CSV_ENCODING) as fh:
                row = next(csv.reader(fh, delimiter=self.cfg.delimiter), None)
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            self.error(f"cannot read {path}: {err}", "path", label="unreadable")
            return None
        if not row:
            self.error(f"{path} is empty: a CSV needs a header row", "path", label="empty file")
            return None
        header = [c.strip() for c in row]
        return header if self._unique_columns(header, row, path) else None

    def _unique_columns(self, header: list[str], row: list[str], path: Path) -> bool:
        """Columns are found by name: a used name (or any, under "*") must appear once, else which one is it?"""
        used = self._used_columns()
        for j, name in enumerate(header):
            first = header.index(name)
            if first < j and (used is None or name in used):
                self.diagnostics.append(Diagnostic(
                    "E0702", f"{path.name} has a duplicate column `{name}` (columns {first + 1} and {j + 1}): "
                    "columns are found by name", _cell_span(path, row, j, 1, self.cfg.delimiter),
                    label="duplicate column", help="rename one of them"))
                return False
        return True

    def _used_columns(self) -> set | None:
        """The column names the mapping uses; None when an input takes "*" (every column)."""
        return None if "*" in self.cfg.inputs.values() else self._named_columns()

    def _named_columns(self) -> set:
        """The column names the mapping names (an input's "*" takes the others)."""
        named = set(self.cfg.targets.values())
        for cols in self.cfg.inputs.values():
            if cols != "*":
                named |= {cols} if isinstance(cols, str) else set(cols)
        return named

    def _csv_fields(self, header: list[str], path: Path) -> tuple[Field, ...] | None:
        cfg, fields, ok = self.cfg, [], True
        used = self._named_columns()
        for slot in self.targets:
            col = cfg.targets.get(slot.name)
            if col is None:
                self.error(f"target `{slot.name}` has no column", "targets", label="unmapped",
                           help=f"add `{slot.name} = \"COLUMN\"` to targets")
                ok = False
                continue
            ok &= self._columns_exist([col], header, path, "targets", slot.name)
            if _per_sample(slot.type) != 1:
                self.error(f"a CSV column gives one value per row, but target `{slot.name}` is {slot.type}",
                           "targets", slot.name, label="does not fit", help=f"declare it as {slot.type.dtype}[N]")
                ok = False
            fields.append(self._field(slot, "target", (col,)))
        for slot in self.inputs:
            cols = cfg.inputs.get(slot.name)
            if cols is None:
                self.error(f"input `{slot.name}` has no columns", "inputs", label="unmapped",
                           help=f"add `{slot.name} = [\"a\", \"b\"]` (or \"*\": all other columns) to inputs")
                ok = False
                continue
            cols = [c for c in header if c not in used] if cols == "*" else ([cols] if isinstance(cols, str) else cols)
            if not self._columns_exist(cols, header, path, "inputs", slot.name):
                ok = False
                continue
            need = _per_sample(slot.type)
            # a misspelt column name leaves its real column among "*"'s: one mistake, one message
            misspelt = cfg.inputs[slot.name] == "*" and not used <= set(header)
            if need != len(cols) and not misspelt:
                self.error(f"input `{slot.name}` is {slot.type} ({need} values per row) but gets "
                           f"{len(cols)} column{'s' if len(cols) != 1 else ''} of {path.name}",
                           "inputs", slot.name, label="does not fit")
                ok = False
            fields.append(Field(slot, "input", tuple(cols)))
        return tuple(fields) if ok else None

    def _columns_exist(self, cols, header, path: Path, key: str, name: str) -> bool:
        missing = [c for c in cols if c not in header]
        for c in missing:
            self.error(f"column `{c}` is not in {path.name}", key, name, label="no such column",
                       help=_did_you_mean(c, header))
        return not missing


def probe_data(cfg, base: Path, inputs, targets, target_losses: dict, ir, span_of) -> tuple[DataPlan | None, list]:
    probe = _Probe(cfg, base, inputs, targets, target_losses, ir, span_of)
    plan = probe.run()
    return plan, probe.diagnostics


def fit_array(shape: tuple, dtype_kind: str, declared: TensorType, sizes: dict, where: str) -> str | None:
    """Why array `where` of `shape` cannot feed a slot of type `declared` (None when it can). `sizes` holds
    the sizes that symbols took in the arrays checked before it ({name: (size, array)}), and gets this one's."""
    if dtype_kind not in "biuf":
        return f"holds {_kind_name(dtype_kind)} values, not numbers"
    if declared.dtype in INT_DTYPES and dtype_kind == "f":
        return f"holds floats, but {declared} needs integers"
    if len(shape) != declared.rank:
        return f"has shape {list(shape)}, which does not fit {declared} (rank {len(shape)} vs {declared.rank})"
    for got, want in zip(shape, declared.shape):
        if D.is_static(want):
            if got != want:
                return f"has shape {list(shape)}, which does not fit {declared}"
        elif len(want.symbols) == 1 and want == D.Sym.var(next(iter(want.symbols))):
            name = next(iter(want.symbols))
            size, first = sizes.setdefault(name, (got, where))
            if size != got:
                other = f" ({first})" if first != where else ""
                return f"has shape {list(shape)}: `{name}` would be both {size}{other} and {got}"
    return None


def _kind_name(kind: str) -> str:
    return {"O": "Python object", "U": "text", "S": "byte-string", "c": "complex", "M": "date", "V": "raw"}.get(kind, kind)


def _array_header(kind: str, where: Path, ref: str):
    """(shape, dtype, description) of one array, read from its header only."""
    if kind == "npz":
        with zipfile.ZipFile(where) as zf:
            names = {n[:-4] if n.endswith(".npy") else n: n for n in zf.namelist()}
            if ref not in names:
                guess = did_you_mean(ref, names)
                raise FileNotFoundError(f"{where.name} has no array `{ref}`"
                                        + (f" ({guess})" if guess else f"; it has {', '.join(names)}"))
            with zf.open(names[ref]) as fh:
                shape, dtype = _npy_header(fh, zf.getinfo(names[ref]).file_size, f"array `{ref}`")
        return shape, dtype, f"array `{ref}` in {where.name}"
    path = _npy_path(where, ref)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as fh:
        shape, dtype = _npy_header(fh, path.stat().st_size, "the array")
    return shape, dtype, _npy_name(path)


def _npy_header(fh, size: int, what: str) -> tuple:
    """(shape, dtype) from the header of .npy data of `size` bytes, nothing unpickled. Data cut short (its
    header intact) would fail only when it is read: say so now."""
    import numpy as np

    version = np.lib.format.read_magic(fh)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = reader(fh)
    dtype = np.dtype(dtype)
    need = fh.tell() + math.prod(shape) * dtype.itemsize
    if not dtype.hasobject and size < need:  # an object array is refused as not numbers
        raise ValueError(f"{what} is truncated ({size} of the {need} bytes its header promises)")
    return tuple(shape), dtype


def _npy_path(folder: Path, ref: str) -> Path:
    p = Path(ref)
    if p.suffix != ".npy":
        p = p.with_name(p.name + ".npy")
    return p if p.is_absolute() else folder / p


def _npy_name(file: Path) -> str:
    """A .npy file named with its folder: the training and the validation folder hold files of the same names."""
    return f"{file.parent.name}/{file.name}"


def _per_sample(t: TensorType):
    return D.prod(t.shape[1:])


def _did_you_mean(name: str, choices) -> str | None:
    """A guess, or else the choices there are."""
    return did_you_mean(name, choices) or (f"known: {', '.join(choices)}" if choices else None)


# ---- loading -----------------------------------------------------------------------------------
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
            values = torch.randint(0, f.source[0], shape, generator=gen)
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
            file = _npy_path(path, f.source[0])
            arrays[f.slot.name] = _load_array(lambda: np.load(file, allow_pickle=False), f, _npy_name(file),
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
    _check_array(f, array, what, spec_span)
    return array


def _check_array(f: Field, array, what: str, spec_span) -> None:
    """Refuse values that would poison or crash training: non-finite floats, out-of-range integers and labels."""
    import numpy as np

    if array.size == 0 or array.dtype.kind not in "biuf":
        return
    low, high = _bounds(f)
    lo, hi = array.min(), array.max()  # NaN propagates: one pass decides, a second only locates the culprit
    if array.dtype.kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
        index = _first(~np.isfinite(array))
        _array_error(f, f"{what} has {array[index]} at index {_fmt_index(index)}, which is not a finite number",
                     "not a finite number", spec_span)
    if f.class_indices and not (lo >= 0 and (f.classes is None or hi < f.classes)):  # else: look at each
        index = _first(~_is_label(array, f))
        if index is not None:
            _array_error(f, f"{what} has the class label {array[index]} at index {_fmt_index(index)}, "
                            f"{_classes_text(f)}", "label out of range", spec_span, _labels_help(f))
    if not (low <= lo and hi <= high):
        index = _first((array < low) | (array > high))
        _array_error(f, f"{what} has {array[index]} at index {_fmt_index(index)}, "
                        f"outside the range of {f.slot.type.dtype}", "out of range", spec_span)
    if f.rows and not (0 <= lo and hi < f.rows[0]):
        index = _first((array < 0) | (array >= f.rows[0]))
        _array_error(f, f"{what} has the id {array[index]} at index {_fmt_index(index)}, {_rows_text(f)}",
                     "id out of range", spec_span)


def _array_error(f: Field, message: str, label: str, spec_span, help: str | None = None):
    raise SpecError([Diagnostic("E0702", message, _field_span(f, spec_span), label=label, help=help)])


def _field_span(f: Field, spec_span):
    return spec_span("data", "inputs" if f.role == "input" else "targets", f.slot.name)


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
        _check_cells(f, values, (body, cols, path, header, cfg.delimiter))
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
                                    _cell_span(path, [], 0, line, delimiter), label="unreadable")]) from None
    return records


def _check_row_length(row, line: int, columns: int, path: Path, delimiter: str) -> None:
    """A row of more or fewer cells than the header (an unquoted delimiter in a value) would shift its values
    into the wrong columns: refuse it at the first cell past the header's columns, or at the row's end."""
    if len(row) == columns:
        return
    extra = len(row) > columns
    raise SpecError([Diagnostic(
        "E0702", f"line {line} of {path.name} has {len(row)} cells, but the header has {columns} columns",
        _cell_span(path, row, min(len(row), columns), line, delimiter), label="extra cell" if extra else "missing cell",
        help=f"quote a value that contains the delimiter {delimiter!r}" if extra else
        "give every row a cell for each column of the header")])


def _cell(row, col: int, line: int, path: Path, name: str, delimiter: str) -> float:
    try:
        return float(row[col])
    except ValueError:
        raise SpecError([Diagnostic("E0702", f"column `{name}` of {path.name} has a non-number "
                                    f"{row[col]!r} on line {line}", _cell_span(path, row, col, line, delimiter),
                                    label="not a number")]) from None


def _check_cells(f: Field, values, where: tuple) -> None:
    """Refuse, at its cell, a value that would poison or crash training (or wrap when cast to the slot's dtype)."""
    import numpy as np

    _refuse_cell(~np.isfinite(values), where, "has {text} on line {line}, which is not a finite number",
                 "not a finite number")
    if f.slot.type.dtype in INT_DTYPES:
        _refuse_cell(values != np.round(values), where, f"feeds an integer {f.role} but has {{text}} on line {{line}}",
                     "not a whole number")
    if f.class_indices:
        _refuse_cell(~_is_label(values, f), where, f"has the class label {{text}} on line {{line}}, {_classes_text(f)}",
                     "label out of range", _labels_help(f))
    low, high = _bounds(f)
    _refuse_cell((values < low) | (values > high), where,
                 f"has {{text}} on line {{line}}, outside the range of {f.slot.type.dtype}", "out of range")
    if f.rows:
        _refuse_cell((values < 0) | (values >= f.rows[0]), where, f"has the id {{text}} on line {{line}}, {_rows_text(f)}",
                     "id out of range")


def _refuse_cell(bad, where: tuple, problem: str, label: str, help: str | None = None) -> None:
    """An E0702 at the first cell where `bad` holds: "column `c` of FILE " + problem (with {text}, {line})."""
    index = _first(bad)
    if index is None:
        return
    body, cols, path, header, delimiter = where
    (line, row), col = body[index[0]], cols[index[1]]
    message = f"column `{header[col]}` of {path.name} " + problem.format(text=repr(row[col]), line=line)
    raise SpecError([Diagnostic("E0702", message, _cell_span(path, row, col, line, delimiter), label=label, help=help)])


def _cell_span(path: Path, row, col: int, line: int, delimiter: str) -> SourceSpan:
    """Cell `col` of the row that starts on `line`, as written (quotes included); past the row's last
    cell, the end of the line."""
    register_source(str(path), path.read_text(encoding=CSV_ENCODING))
    text = source_line(str(path), line) or ""
    starts, quoted = [0], False  # where each cell starts in the line (a quoted delimiter is the cell's text)
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == delimiter and not quoted:
            starts.append(i + 1)
    if col >= len(starts):
        return SourceSpan(str(path), line, len(text) + 1, line, len(text) + 2)
    end = starts[col + 1] - 1 if col + 1 < len(starts) else len(text)
    return SourceSpan(str(path), line, starts[col] + 1, line, max(end, starts[col] + 1) + 1)


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
