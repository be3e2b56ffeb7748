"""specc: a compiler for declarative deep-learning model specs.

    spec = specc.load("specs/digits_cnn.dlspec")     # validated Spec, or SpecError
    diagnostics = specc.check(["specs/"])            # every problem, never raises on bad specs
    compiled = specc.compile(spec)                   # .model (nn.Module), .plan, .train(), .export()

Importing specc (and checking specs) never imports torch.
"""
from __future__ import annotations

from .errors import Diagnostic, SpecError, UsageError

__version__ = "0.1.0"
__all__ = ["load", "check", "compile", "Spec", "Diagnostic", "SpecError", "UsageError", "__version__"]


def __getattr__(name: str):
    if name == "Spec":  # imported on first use: `import specc` stays light for the CLI
        from .schema import Spec
        return Spec
    raise AttributeError(f"module 'specc' has no attribute {name!r}")


def load(path) -> "Spec":
    """Read and validate a spec file (.dlspec or .yaml); raises SpecError with every diagnostic."""
    from .frontend.load import load_file
    return load_file(path)


def check(paths, max_params: int | None = None) -> list[Diagnostic]:
    """Check files, folders or globs; returns every diagnostic (an empty list when all is well)."""
    from .checker import check as _check
    return _check(paths, max_params=max_params)


def compile(spec_or_path, *, model: str | None = None, device=None, dtype=None, compile: bool = False,
            params: dict | None = None):
    """Build a spec into a PyTorch module; returns a `Compiled` (.model, .spec, .ir, .plan)."""
    from .compiled import compile_spec
    return compile_spec(spec_or_path, model=model, device=device, dtype=dtype, compile=compile, params=params)
