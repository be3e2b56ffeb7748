"""Data sources: probed before training (here, torch-free), then loaded into memory as tensors (data_load.py).

`probe_data` checks a `data` section against the model's inputs and the declared targets
without reading whole files: files exist, CSV headers have the columns, array headers have
shapes and dtypes that fit. What comes out is a DataPlan: a Field for each input and target,
saying where its values come from. `load_data` (data_load.py) then reads everything into tensors
of the declared dtypes and shapes, splits train/val with `data.seed`, and normalises float inputs.

Sources: `digits` (scikit-learn's bundled 8x8 digits, offline), `synthetic` (random tensors
shaped from the model), `npz` / `npy` (arrays by key / file), `csv` (columns -> inputs and
targets). Relative paths are resolved against the spec file's folder.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import Diagnostic, did_you_mean, guess_or_known
from ..io import machine_memory
from ..ir import dims as D
from ..ir.types import FLOAT_DTYPES, INT_DTYPES, TensorType
from ..schema.train import CLASS_LOSSES, IGNORE_INDEX
from ..source import SourceSpan, register_source, source_line

DIGITS_PIXELS = 64
DIGITS_CLASSES = 10
MAX_SYNTHETIC_VALUES = 2**30  # all synthetic tensors together (4 GiB of float32); refused before allocating
MISSING_FILE = "no such file"  # the label of a missing data file: `specc check` warns, `specc train` stops
CSV_ENCODING = "utf-8-sig"  # UTF-8, with or without the byte order mark that Excel writes


@dataclass(frozen=True)
class Slot:
    """A named tensor the data provides: a model input or a declared target."""

    name: str
    type: TensorType


@dataclass(frozen=True)
class TargetUse:
    """What the plan's loss makes of a target: the data's labels are checked against it."""

    loss: str  # the loss kind the target feeds
    classes: int | None  # the output's class count, for a class loss (None: not one, or not a fixed size)
    ignore_index: int | None  # the loss's ignore_index setting (None: it has none)


@dataclass(frozen=True)
class Field:
    """Where one slot's values come from: an array key, a .npy file, CSV columns, or generated."""

    slot: Slot
    role: str  # input | target
    source: tuple = ()  # npz: (key,); npy: (file,); csv: column names; synthetic: ()
    loss: str | None = None  # the loss this target feeds (synthetic data draws fitting values)
    classes: int | None = None  # the output's class count, for a target of class indices (None: unknown)
    ignore_index: int = IGNORE_INDEX  # a class-index label that the loss skips
    rows: tuple[int, str] | None = None  # an input's Embedding: (its number of rows, its layer)
    int_high: int | None = None  # synthetic integers: the exclusive upper bound of the values drawn

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


# ---- probing -------------------------------------------------------------------------------------
class _Probe:
    def __init__(self, cfg, base: Path, inputs, targets, target_uses: dict[str, TargetUse], ir, span_of: Callable):
        self.cfg, self.base, self.ir = cfg, base, ir
        self.inputs, self.targets = tuple(inputs), tuple(targets)
        self.target_uses = target_uses
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
        plan = {"digits": self.probe_digits, "synthetic": self.probe_synthetic, "npz": self.probe_arrays,
                "npy": self.probe_arrays, "csv": self.probe_csv}[kind]()
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
    def probe_digits(self) -> DataPlan | None:
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
            self._unknown_slot(name, names, what, key)
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
    def probe_synthetic(self) -> DataPlan | None:
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
            fields.append(dataclasses.replace(self._field(slot, role, ()), int_high=self._int_high(slot, role)))
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
                           label="unused", help=guess_or_known(name, sorted(used)) if used else "remove it")
                ok = False
        return ok

    def _field(self, slot: Slot, role: str, source: tuple) -> Field:
        """A field that knows the loss its target feeds: its kind, classes and ignore_index."""
        use = self.target_uses.get(slot.name) if role == "target" else None
        if use is None:
            return Field(slot, role, source)
        ignore_index = IGNORE_INDEX if use.ignore_index is None else use.ignore_index
        return Field(slot, role, source, use.loss, use.classes, ignore_index)

    def _int_high(self, slot: Slot, role: str) -> int:
        """Exclusive upper bound for synthetic integers: class counts, embedding sizes."""
        if role == "target":
            use = self.target_uses.get(slot.name)
            return (use and use.classes) or self.cfg.classes
        rows = self._embedding_rows(slot)
        return rows[0] if rows else self.cfg.classes

    def _embedding_rows(self, slot: Slot) -> tuple[int, str] | None:
        """The smallest Embedding table that input `slot` is looked up in: (its rows, its layer), or None."""
        sizes = [(getattr(self.ir.layers[n.layer].params, "num_embeddings", None), n.layer)
                 for n in self.ir.nodes if slot.name in n.inputs]
        sizes = [s for s in sizes if isinstance(s[0], int)]
        return min(sizes) if sizes else None

    # -- npz / npy
    def probe_arrays(self) -> DataPlan | None:
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
                self._unknown_slot(name, names, what, key, name)

    def _unknown_slot(self, name: str, names: list[str], what: str, *path) -> None:
        """`name` (an input or target, as `what` says) is not one of `names`."""
        message = f"`{name}` is not a model input" if what == "input" else f"target `{name}` is not declared"
        self.error(message, *path, label=f"unknown {what}", help=guess_or_known(name, names))

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
            file = path if self.cfg.kind == "npz" else npy_path(path, f.source[0])
            self.error(f"cannot read {file}: {err}", key, label="unreadable")
            return
        problem = _array_fit_problem(shape, dtype.kind, f.slot.type, sizes, where)
        if problem:
            self.error(f"{where} {problem}", mapping, f.slot.name, label="does not fit")
        memory = machine_memory()
        size = math.prod(shape) * dtype.itemsize  # from the header: a compressed npz may claim far more than it holds
        if memory is not None and size > memory:
            from ..summary import human_bytes
            self.error(f"{where} would take {human_bytes(size)}, more than this machine's {human_bytes(memory)} "
                       "of memory", key, label="too large")

    # -- csv
    def probe_csv(self) -> DataPlan | None:
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
                    "columns are found by name", cell_span(path, row, j, 1, self.cfg.delimiter),
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
                       help=guess_or_known(c, header))
        return not missing


def probe_data(cfg, base: Path, inputs, targets, target_uses: dict[str, TargetUse], ir,
               span_of) -> tuple[DataPlan | None, list]:
    probe = _Probe(cfg, base, inputs, targets, target_uses, ir, span_of)
    plan = probe.run()
    return plan, probe.diagnostics


def _array_fit_problem(shape: tuple, dtype_kind: str, declared: TensorType, sizes: dict, where: str) -> str | None:
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
    path = npy_path(where, ref)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as fh:
        shape, dtype = _npy_header(fh, path.stat().st_size, "the array")
    return shape, dtype, npy_name(path)


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


def _per_sample(t: TensorType):
    return D.prod(t.shape[1:])


# ---- files and cells, shared with data_load.py ---------------------------------------------------
def npy_path(folder: Path, ref: str) -> Path:
    p = Path(ref)
    if p.suffix != ".npy":
        p = p.with_name(p.name + ".npy")
    return p if p.is_absolute() else folder / p


def npy_name(file: Path) -> str:
    """A .npy file named with its folder: the training and the validation folder hold files of the same names."""
    return f"{file.parent.name}/{file.name}"


def cell_span(path: Path, row, col: int, line: int, delimiter: str) -> SourceSpan:
    """Cell `col` of the record that starts on `line`, as written (quotes included), on the lines it is
    on (a quoted cell may hold line breaks); past the record's last cell, the end of the record."""
    file = str(path)
    register_source(file, path.read_text(encoding=CSV_ENCODING))
    cell, quoted, start, at = 0, False, (line, 0), line  # (line, 0-based column) where the cell starts

    def span(end_line: int, end: int) -> SourceSpan:
        empty = (end_line, end) == start
        return SourceSpan(file, start[0], start[1] + 1, end_line, end + 1 + empty)
    while True:
        text = source_line(file, at) or ""
        for i, ch in enumerate(text):
            if ch == '"':
                quoted = not quoted
            elif ch == delimiter and not quoted:
                if cell == col:
                    return span(at, i)
                cell, start = cell + 1, (at, i + 1)
        if not quoted or source_line(file, at + 1) is None:
            break
        at += 1
    if cell == col:
        return span(at, len(text))
    return SourceSpan(file, at, len(text) + 1, at, len(text) + 2)
