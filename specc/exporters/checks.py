"""The caller's arguments and the artifact's destination, checked before any work starts.

A wrong type or value of a common option (seed, dims, latency_batch_sizes,
latency_max_seconds) or of the path is a Python caller's mistake: a TypeError or ValueError of
one sentence naming the argument. A destination that cannot take the artifact (a folder where
the artifact or its manifest goes) is an ExportError naming the path, so `specc build` reports
it on the target's line.
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from ..schema.export import MAX_BATCH_SIZE, MAX_BATCH_SIZES
from .base import ExportError, Signature
from .manifest import manifest_path

MAX_SEED = 2**63 - 1 - MAX_BATCH_SIZES  # each sample draws from seed + its index


def check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
    checked = Path(path)
    if not checked.name or checked.name in (".", ".."):
        raise ValueError(f"path must name a file, got {str(path)!r}")
    return checked


def check_options(options: dict, sig: Signature) -> dict:
    """The resolved options with the common ones checked and normalised (ints, floats, tuples)."""
    return options | {
        "seed": _integer("seed", options["seed"], 0, MAX_SEED),
        "dims": check_dims(options["dims"], sig),
        "latency_batch_sizes": check_latency_batch_sizes(options["latency_batch_sizes"]),
        "latency_max_seconds": check_seconds("latency_max_seconds", options["latency_max_seconds"]),
    }


def check_dims(dims, sig: Signature) -> dict:
    """{symbol: size} for the model's symbols other than the batch one (batch_sizes sets that)."""
    if not isinstance(dims, dict):
        raise TypeError(f"dims must be a dict of symbol sizes such as {{'T': 16}}, got {type(dims).__name__}")
    batch, others = sig.symbols[:1], sig.symbols[1:]
    out = {}
    for name, size in dims.items():
        if name in batch:
            raise ValueError(f"dims cannot set the batch dim `{name}`: the batch_sizes option does")
        if name not in others:
            known = f"its other symbols are {', '.join(others)}" if others else "it has no symbol besides the batch dim"
            raise ValueError(f"dims names `{name}`, which is not a symbol of the model ({known})")
        out[name] = _integer(f"dims[{name!r}]", size, 1, None)
    return out


def check_latency_batch_sizes(sizes) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (list, tuple)):
        raise TypeError(f"latency_batch_sizes must be a list or tuple of batch sizes such as (1, 32), "
                        f"got {type(sizes).__name__}")
    if len(sizes) > MAX_BATCH_SIZES:
        raise ValueError(f"latency_batch_sizes takes at most {MAX_BATCH_SIZES} batch sizes, got {len(sizes)}")
    return tuple(_integer("each of latency_batch_sizes", size, 1, MAX_BATCH_SIZE) for size in sizes)


def check_seconds(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _integer(name: str, value, lo: int, hi: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be at most {hi}, got {value}")
    return int(value)


def check_destination(target: str, path: Path) -> None:
    """The artifact's and the manifest's paths must be free for a file, in a folder that is one
    or can be made: checked before the export, so it fails at once, not after the work."""
    for dest in (path, manifest_path(path)):
        check_free(target, dest)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ExportError("E0801", f"cannot write the {target} artifact: {parent} is not a folder")
            break


def check_free(target: str, dest: Path) -> None:
    """A file may be replaced at `dest`; a folder there may not."""
    if dest.is_dir():
        raise ExportError("E0801", f"cannot write the {target} artifact: {dest} is a folder",
                          help="remove it, or export to another path")
