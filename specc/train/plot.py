"""`specc plot OUT [-o PNG]`: learning curves from OUT/metrics.jsonl (matplotlib, Agg backend)."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError
from ..io import atomic_path
from .progress import METRICS_FILE, read_metrics


def cmd_plot(args) -> int:
    run_dir = Path(args.run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise UsageError(f"no training records in {run_dir / METRICS_FILE} (is {run_dir} a `specc train` run folder?)")
    output = Path(args.out) if args.out else run_dir / "curves.png"
    plot_curves(records, output, title=run_dir.name)
    print(output)
    return 0


def plot_curves(records: list[dict], output: Path, title: str = "") -> None:
    """Losses, validation metrics and the learning rate against the epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    losses = [k for k in _keys(records) if k.endswith("/loss")]
    metrics = [k for k in _keys(records) if k.startswith("val/") and not k.endswith("/loss")]
    panels = [("loss", losses), ("validation metrics", metrics), ("learning rate", ["lr"])]
    panels = [(name, keys) for name, keys in panels if keys]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (name, keys) in zip(axes[0], panels):
        for key in keys:
            ax.plot(epochs, [_number(r.get(key)) for r in records], marker="o", markersize=3, label=key)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if name != "learning rate":
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = atomic_path(output)
    try:
        fig.savefig(tmp, format="png", dpi=110)
        os.replace(tmp, output)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def _number(value) -> float:
    """A record's value, or NaN (a gap in the curve) where it has none or something else."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def _keys(records: list[dict]) -> list[str]:
    seen: dict = {}
    for r in records:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)
