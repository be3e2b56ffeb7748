"""What a run tells its user: the live bar, per-epoch lines, OUT/metrics.jsonl, TensorBoard, the summary.

Only rank 0 reports. The tqdm bar (loss and samples/s) shows on a terminal and stays quiet when
stderr is not a TTY or CI=true; the one-line-per-epoch report and the summary are printed
either way (unless `verbose=False`). metrics.jsonl gets one JSON object per epoch, each line
written with a single O_APPEND write. TensorBoard logging happens when `tensorboard` is
installed (lazy import; nothing is required).
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from ..io import write_text_atomic

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


def interactive() -> bool:
    ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    return sys.stderr.isatty() and not ci


def read_metrics(run_dir: Path) -> list[dict]:
    """The complete records of OUT/metrics.jsonl: a torn last line, or any line that is not an
    epoch's record (not UTF-8, not JSON, no whole epoch number), is skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if _is_record(record):
            records.append(record)
    return records


def _is_record(record) -> bool:
    """What specc writes: an object with the epoch (counted from 1)."""
    epoch = record.get("epoch") if isinstance(record, dict) else None
    return isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1


class RunLog:
    def __init__(self, run_dir: Path, *, enabled: bool, verbose: bool):
        self.dir = Path(run_dir)
        self.enabled, self.verbose = enabled, verbose and enabled
        self.show_bar = self.verbose and interactive()
        self.bar = None
        self.tb = None  # opened by start(), once the run folder has been checked

    @property
    def metrics_path(self) -> Path:
        return self.dir / METRICS_FILE

    def start(self, fresh: bool, keep_epochs: int) -> None:
        """A fresh run empties metrics.jsonl; a resumed one keeps the epochs its checkpoint has."""
        if not self.enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tb = _tensorboard(self.dir)
        kept = [] if fresh else [r for r in read_metrics(self.dir) if r.get("epoch", 0) <= keep_epochs]
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    def say(self, text: str) -> None:
        if self.verbose:
            if self.bar is not None:
                self.bar.write(text)
            else:
                print(text, flush=True)

    # -- the bar
    def open_bar(self, epoch: int, epochs: int, total: int, done: int) -> None:
        if not self.show_bar:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                        leave=False, dynamic_ncols=True, file=sys.stderr)

    def progress(self, batches: int, loss: float, samples_per_s: float, step: int) -> None:
        if self.bar is not None:
            self.bar.update(batches)
            self.bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{samples_per_s:,.0f}", refresh=False)
        if self.tb is not None and math.isfinite(loss):
            self.tb.add_scalar("train/loss_step", loss, step)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # -- per epoch
    def epoch(self, record: dict, epochs: int) -> None:
        if not self.enabled:
            return
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        if self.tb is not None:
            for key, value in record.items():
                if key not in ("epoch", "step") and isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, record["epoch"])
            self.tb.flush()
        self.say(format_epoch(record, epochs))

    def summary(self, summary: dict) -> None:
        """OUT/summary.json (its presence marks a finished run) and the closing lines."""
        if not self.enabled:
            return
        write_text_atomic(self.dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
        self.say(format_summary(summary))

    def close(self) -> None:
        self.close_bar()
        if self.tb is not None:
            self.tb.close()


def format_epoch(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}"]
    for key, value in record.items():
        if "/" in key:
            parts.append(f"{key} {value:.4f}")
    parts.append(f"lr {record['lr']:.3g}")
    parts.append(f"{record['samples_per_s']:,.0f} samples/s")
    return "  ".join(parts)


def format_summary(summary: dict) -> str:
    final = summary["final"]
    metrics = "  ".join(f"{k} {v:.4f}" for k, v in final.items() if "/" in k)
    lines = [f"done: {summary['epochs_run']} epochs in {summary['seconds']:.1f} s   {metrics}"]
    best = summary.get("best")
    if best and best.get("value") is not None:
        lines.append(f"best {best['monitor']} {best['value']:.4f}: {best['checkpoint']}")
    lines.append(f"last checkpoint: {summary['last_checkpoint']}")
    return "\n".join(lines)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
