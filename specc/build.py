"""`specc build`: compile, write the weights (safetensors), print the summary, and export."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import UsageError


def save_weights(model, path) -> None:
    """safetensors, written atomically; tied parameters are stored once."""
    from safetensors import SafetensorError
    from safetensors.torch import save_model

    from .io import atomic_path, set_default_mode

    try:
        tmp = atomic_path(path)
        try:
            save_model(model, str(tmp))
            set_default_mode(tmp)  # safetensors writes a file of its own, 0600
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except (OSError, SafetensorError) as err:  # safetensors reports a full disk as a SafetensorError
        raise UsageError(f"cannot write the weights to {path}: {getattr(err, 'strerror', None) or err}") from None


def load_weights(model, path) -> None:
    """Weights from a .safetensors file or a checkpoint of `specc train` (.pt) or of its Lightning
    engine (.ckpt), loaded weights_only."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such weights file: {path}")
    safetensors = path.suffix == ".safetensors"
    state = None if safetensors else _checkpoint_weights(path)
    try:
        if safetensors:
            from safetensors.torch import load_model
            load_model(model, str(path), strict=True)
        else:
            model.load_state_dict(state, strict=True)
    except Exception as err:  # noqa: BLE001 - a file of any content may come in: every failure is "not these weights"
        raise UsageError(f"cannot load weights from {path}: {str(err).strip() or type(err).__name__}") from None


def _checkpoint_weights(path: Path):
    """The model's state_dict in a `specc train` checkpoint, or in a Lightning one (its `model.` keys)."""
    from .train.checkpoint import read
    try:
        state = read(path)
    except ValueError as err:
        raise UsageError(f"cannot load weights from {path}: {err}") from None
    if isinstance(state, dict) and "model" in state:
        return state["model"]
    if isinstance(state, dict) and "pytorch-lightning_version" in state and isinstance(state.get("state_dict"), dict):
        return {k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")}
    return state


def cmd_build(args) -> int:
    import specc

    from .compiled import load_spec

    spec = load_spec(args.spec)
    targets = list(dict.fromkeys(list(args.export) + list(spec.export.targets() if spec.export else [])))
    if targets:
        from .exporters import get
        for target in targets:  # an unknown name fails before anything is built or written
            get(target)
    compiled = specc.compile(spec, model=args.model)
    out = Path(args.out or Path("build") / Path(args.spec).stem)
    if args.weights:
        load_weights(compiled.model, args.weights)
    else:
        print("warning: no --weights given: writing and exporting the initial (untrained) weights",
              file=sys.stderr)
    weights = out / "model.safetensors"
    save_weights(compiled.model, weights)
    from .exporters import export_targets, remove_other_artifacts
    for stale in remove_other_artifacts(out, targets):
        print(f"note: removed {stale}, exported from an earlier build's weights", file=sys.stderr)
    print(compiled.summary(depth=1))
    print(f"\nweights: {weights}")
    return export_targets(compiled, targets, out, verbose=args.verbose) if targets else 0
