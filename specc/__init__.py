"""specc: a compiler for declarative deep-learning model specs.

    spec = specc.load("specs/digits_cnn.dlspec")     # validated Spec, or SpecError
    diagnostics = specc.check(["specs/"])            # every problem, never raises on bad specs
    compiled = specc.compile(spec)                   # .model (nn.Module), .plan, .train(), .export()

Importing specc (and checking specs) never imports torch.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import Diagnostic, SpecError, UsageError

if TYPE_CHECKING:
    from .compiled import Compiled
    from .schema import Spec

__version__ = "0.1.0"
__all__ = ["load", "check", "compile", "Spec", "Compiled", "Diagnostic", "SpecError", "UsageError", "__version__"]


def __getattr__(name: str):
    # imported on first use: `import specc` stays light for the CLI
    if name == "Spec":
        from .schema import Spec
        return Spec
    if name == "Compiled":
        from .compiled import Compiled
        return Compiled
    raise AttributeError(f"module 'specc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def load(path: str | os.PathLike) -> Spec:
    """Read and validate a spec file (.dlspec or .yaml); raises SpecError with every diagnostic."""
    from .frontend.load import load_file
    return load_file(path)


def check(paths: str | os.PathLike | Iterable[str | os.PathLike], max_params: int | None = None) -> list[Diagnostic]:
    """Check files, folders or globs; returns every diagnostic (an empty list when all is well).

    A bad spec gives diagnostics, never an exception; `max_params` (default 10**12) is the most
    parameters a model may have."""
    from .checker import check as _check
    return _check(paths, max_params=max_params)


def compile(spec_or_path: Spec | str | os.PathLike, *, model: str | None = None, device=None, dtype=None,
            compile: bool = False, params: dict[str, object] | None = None) -> Compiled:
    """Build a spec into a PyTorch module; returns a `Compiled` (.model, .spec, .ir, .plan).

    model: which model of a file with several; params: values for the model's parameters
    ({"width": 64}); device: a torch.device or its name ("cpu", "cuda:0", "meta" builds without
    memory); dtype: a floating-point torch.dtype or its name ("float64") for the weights, which
    otherwise take the inputs' dtype; compile: wrap the module in torch.compile.
    Raises SpecError for errors in the spec, TypeError or ValueError for a wrong argument.
    """
    from .compiled import compile_spec
    return compile_spec(spec_or_path, model=model, device=device, dtype=dtype, compile=compile, params=params)
