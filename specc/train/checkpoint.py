"""Checkpoints: atomic, plain (tensors and Python values only), enough to resume exactly.

A checkpoint holds the model, optimizer, scheduler and grad-scaler states, every RNG state
(torch, CUDA/MPS, numpy, Python; one set per rank) and the position (epoch, next batch,
optimizer step). The data order is a function of (seed, epoch), so nothing else is needed to
continue mid-epoch. Files are written to a temp file, fsynced and renamed over the target, so
a crash (or SIGKILL) never leaves a half-written checkpoint, and they load with
`torch.load(weights_only=True)`.

    OUT/checkpoints/step-00000120.pt   the last `keep_last` positions
    OUT/checkpoints/best.pt            the weights with the best monitored value (and its metrics)
"""
from __future__ import annotations

import errno
import os
import random
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from ..io import atomic_path, interrupts_deferred, naming
from .progress import SUMMARY_FILE

FORMAT = 1
STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


@dataclass(frozen=True)
class Position:
    """Where a run continues: in `epoch` (0-based) at batch `batch`, after `step` optimizer steps."""

    epoch: int = 0
    batch: int = 0
    step: int = 0


def save(path: Path, state: dict) -> None:
    """Write `state` to `path` atomically; Ctrl-C or SIGTERM meanwhile stops the run after it."""
    with interrupts_deferred():
        tmp = atomic_path(path)
        try:
            with naming(path):  # a full disk names the checkpoint
                with open(tmp, "wb") as fh:
                    torch.save(state, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
                _fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# What a position checkpoint (step-*.pt) holds, all of it needed to resume.
POSITION_KEYS = ("model", "optimizer", "scheduler", "rng", "position", "partial", "elapsed", "stopped_early",
                 "early_stop", "best", "spec", "train")


def read(path: Path):
    """torch.load(path, weights_only=True) onto the CPU; ValueError saying why when it cannot be read."""
    try:
        with warnings.catch_warnings():  # e.g. on a pickle protocol: advice for torch's developers
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - garbage bytes fail anywhere in the unpickler (IndexError, ...)
        raise ValueError(_why_unreadable(err)) from None


def load(path: Path) -> dict:
    """A position checkpoint's state; ValueError saying why when the file is damaged or is not one."""
    try:
        state = read(path)
    except ValueError as err:
        raise ValueError(f"{path.name} cannot be read: {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not a specc training checkpoint (format {FORMAT})")
    missing = [k for k in POSITION_KEYS if k not in state]
    if missing:
        raise ValueError(f"{path.name} is not a complete training checkpoint (it has no {', '.join(missing)})")
    return state


def _why_unreadable(err: Exception) -> str:
    """Why torch.load(weights_only=True) refused a file, in words for the user (torch's own advice,
    to load with weights_only=False, would run code from the file, which specc never does)."""
    text = str(err)
    if isinstance(err, OSError) and err.errno not in (None, errno.EINVAL):  # no permission, ...: say that
        return err.strerror or text
    if isinstance(err, (OSError, EOFError)) or "zip archive" in text or "corrupted" in text:  # EINVAL: cut short
        return "it is damaged or cut short"
    # the unpickler refused it (UnpicklingError), or met bytes it cannot read at all (KeyError: 101, ...)
    return "it holds no checkpoint of tensors and plain values (damaged, or code specc will not run)"


class Checkpoints:
    """The checkpoint folder of a run: numbered positions (keep the last N) and the best weights."""

    def __init__(self, run_dir: Path, keep_last: int):
        self.dir = Path(run_dir) / "checkpoints"
        self.keep_last = keep_last

    def steps(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := STEP_FILE.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        steps = self.steps()
        return steps[-1] if steps else None

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"

    def save_position(self, state: dict, step: int) -> Path:
        path = self.dir / f"step-{step:08d}.pt"
        save(path, state)
        for old in self.steps()[:-self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def set_aside(self, paths: list[Path], say) -> None:
        """Rename unreadable checkpoints to NAME.damaged: kept for the user, but no longer counted by
        keep_last (which would keep them, newest by number, and delete the good ones)."""
        for path in paths:
            target, n = path.with_name(path.name + ".damaged"), 1
            while target.exists():
                n += 1
                target = path.with_name(f"{path.name}.damaged-{n}")
            path.rename(target)
            say(f"note: moved the unreadable {path.name} aside to {target}")

    def save_best(self, model_state: dict, info: dict) -> Path:
        save(self.best_path, {"format": FORMAT, "model": model_state, **info})
        return self.best_path


# ---- the run folder, for either engine ---------------------------------------------------------
def engine_checkpoints(run_dir: Path) -> dict[str, list[Path]]:
    """The checkpoints in OUT/checkpoints by the engine that wrote them."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return {"specc": [], "lightning": []}
    return {"specc": sorted([*folder.glob("step-*.pt"), *folder.glob("best.pt")]),
            "lightning": sorted(folder.glob("*.ckpt"))}


def previous_run(run_dir: Path, engine: str, resume: bool, resumable: bool, say) -> bool:
    """Whether a fresh run replaces a finished one in `run_dir`; UsageError for an unfinished run
    without --resume, or for --resume of the other engine's run. `resumable`: this engine has
    something to resume from (then --resume continues it and this returns False)."""
    found = engine_checkpoints(run_dir)
    other = "lightning" if engine == "specc" else "specc"
    if resume:
        if resumable:
            return False
        if found[other]:
            raise UsageError(f"{run_dir} holds a run of the {other} engine ({found[other][-1].name}): resume it "
                             f'with engine = "{other}", or choose another --out')
        say(f"note: nothing to resume in {run_dir}: starting a new run")
    any_found = found["specc"] + found["lightning"]
    if any_found and not (Path(run_dir) / SUMMARY_FILE).exists():
        raise UsageError(f"{run_dir} holds an unfinished run (last checkpoint {any_found[-1].name}); "
                         "pass --resume to continue it, or choose another --out")
    return bool(any_found)


def clear_run(run_dir: Path, say) -> None:
    """Remove a finished run's checkpoints (either engine's), summary, TensorBoard logs and exports, saying so."""
    from ..exporters import remove_other_artifacts

    say(f"note: replacing the finished run in {run_dir}")
    found = engine_checkpoints(run_dir)
    for path in found["specc"] + found["lightning"] + [Path(run_dir) / SUMMARY_FILE]:
        path.unlink(missing_ok=True)
    if (Path(run_dir) / "tensorboard").is_dir():  # the new run's curves would mix with the old ones
        shutil.rmtree(Path(run_dir) / "tensorboard")
    remove_other_artifacts(run_dir, ())  # they hold the old run's weights


def position_from(state: dict) -> Position:
    return Position(**state["position"])


# ---- RNG states ------------------------------------------------------------------------------
def rng_state() -> dict:
    np_kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": _python_state(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if hasattr(torch, "mps") and torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(_python_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and hasattr(torch, "mps") and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


def _python_state(state: tuple) -> dict:
    version, internal, gauss = state
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _python_tuple(state: dict) -> tuple:
    return state["version"], tuple(state["internal"].tolist()), state["gauss"]
