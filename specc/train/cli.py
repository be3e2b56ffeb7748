"""`specc train SPEC [--model M] [--out DIR] [--resume] [--nproc N] [--set key=value]... [--export TARGET]...`

Loads the spec, applies the `--set` overrides, checks the plan (every problem located, before
anything runs), trains (here, under torchrun for --nproc N, or on Lightning), then exports the
trained weights to the `--export` targets or the spec's export section, each one verified.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import Diagnostic, SpecError


def cmd_train(args) -> int:
    import specc

    from ..compiled import load_spec
    from . import distributed, overrides
    from .engine_common import check_batch_split
    from .trainer import train

    from ..exporters import get as exporter

    spec = overrides.apply(load_spec(args.spec), overrides.parse_sets(args.overrides))
    for target in _targets(spec, args.export):  # a misspelt one, or one this machine lacks, fails now
        exporter(target).require()
    if spec.train is None:
        raise SpecError([Diagnostic("E0701", f"{args.spec} has no train section",
                                    help="add one: train { data digits {} loss cross_entropy {} }")])
    compiled = specc.compile(spec, model=args.model)
    compiled.plan  # the plan is checked here, in every process, before anything starts  # noqa: B018
    out = Path(args.out or Path("runs") / Path(args.spec).stem)
    if args.nproc > 1 and not distributed.launched() and spec.train.engine == "specc":
        check_batch_split(compiled.plan, args.nproc)  # once, here, rather than in every process
        return distributed.relaunch(args.nproc, _argv(args, out))
    epochs_before = _epochs_done(out)
    train(compiled, out_dir=out, resume=args.resume, nproc=args.nproc)
    if not distributed.is_main_process():
        return 0
    if _epochs_done(out) != epochs_before:  # new weights: the folder's exports of other targets no longer match
        from ..exporters import remove_other_artifacts
        for stale in remove_other_artifacts(out, _targets(spec, args.export)):
            print(f"note: removed {stale}, exported from the run's earlier weights", file=sys.stderr)
    return _export(compiled, spec, args.export, out)


def _epochs_done(out: Path) -> int:
    """The epochs the run in `out` has recorded (0 for none)."""
    from .progress import read_metrics
    records = read_metrics(out)
    return records[-1]["epoch"] if records else 0


def _argv(args, out: Path) -> list[str]:
    """This command again, for each process torchrun starts."""
    argv = ["train", str(args.spec), "--out", str(out)]
    argv += ["--model", args.model] if args.model else []
    argv += ["--resume"] if args.resume else []
    for text in args.overrides:
        argv += ["--set", text]
    for target in args.export:
        argv += ["--export", target]
    return argv


def _targets(spec, requested: list[str]) -> list[str]:
    """The --export targets, then those of the spec's export section."""
    return list(dict.fromkeys(list(requested) + list(spec.export.targets() if spec.export else [])))


def _export(compiled, spec, requested: list[str], out: Path) -> int:
    targets = _targets(spec, requested)
    if not targets:
        return 0
    from ..exporters import export_targets

    compiled.model.cpu().eval()
    print(f"exporting the trained weights: {', '.join(targets)}", file=sys.stderr)
    return export_targets(compiled, targets, out, verbose=False)
