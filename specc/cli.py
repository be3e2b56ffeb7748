"""The `specc` command. Exit codes: 0 ok, 1 the spec has errors, 2 wrong usage, 3 internal error."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from contextlib import contextmanager

from .errors import REPORT_URL, SpecError, UsageError

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE, as a shell reports a writer its reader left


def _positive_int(text: str) -> int:
    try:
        value = int(text)  # Python's own digits: 1_000 yes, _1 or 1__0 no
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _path(text: str) -> str:
    """A path argument: any text but the empty one (which names no file)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


def cmd_check(args) -> int:
    from . import report
    from .checker import INTERNAL_ERROR, expand_paths
    from .checker import check as run_check

    files = expand_paths(args.paths)
    missing = [f for f in files if not os.path.lexists(f)]  # a broken link is the file's problem (E0901)
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    if not files:
        raise UsageError("no spec files (.dlspec, .yaml, .yml) found in " + ", ".join(args.paths))
    diagnostics = run_check(files, max_params=args.max_params)
    output = report.FORMATS[args.format](diagnostics, len(files))
    if output:
        print(output)
    if any(d.code == INTERNAL_ERROR for d in diagnostics):
        return EXIT_INTERNAL
    return EXIT_SPEC if any(d.severity == "error" for d in diagnostics) else EXIT_OK


def cmd_schema(args) -> int:
    import json

    from .schema import Spec

    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "specc spec document"
    print(json.dumps(schema, indent=2))
    return EXIT_OK


def cmd_ops(args) -> int:
    from .opdocs import describe_op, list_ops

    if args.name:
        text = describe_op(args.name)
        if text is None:
            from .errors import did_you_mean
            from .ir.ops import OPS
            hint = f"{did_you_mean(args.name, OPS)} " if did_you_mean(args.name, OPS) else ""
            raise UsageError(f"unknown op `{args.name}`; {hint}`specc ops` lists them")
        print(text)
    else:
        print(list_ops())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="specc", description="Compile declarative deep-learning model specs.")
    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="check specs for errors (torch-free; for CI)")
    p.add_argument("paths", nargs="+", type=_path, metavar="PATH", help="spec files, folders or globs")
    p.add_argument("--format", choices=["text", "json", "github", "sarif"], default="text")
    p.add_argument("--max-params", type=_positive_int, default=None, metavar="N",
                   help="reject models with more than N parameters")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("schema", help="print the JSON Schema of the YAML spec document")
    p.set_defaults(run=cmd_schema)

    p = sub.add_parser("ops", help="list the ops, or describe one")
    p.add_argument("name", nargs="?")
    p.set_defaults(run=cmd_ops)

    _add_later_commands(sub)
    return parser


def _lazy(target: str):
    """A command handler imported only when its command runs ("module:function")."""
    def run(args):
        import importlib
        module, name = target.split(":")
        return getattr(importlib.import_module(module), name)(args)
    return run


def _add_later_commands(sub) -> None:
    p = sub.add_parser("summary", help="per-layer table: output shapes, parameters, MACs (torch-free)")
    p.add_argument("spec", type=_path, metavar="SPEC")
    p.add_argument("--model", help="the model to summarise when the file has several")
    p.add_argument("--depth", type=_positive_int, default=None, help="collapse blocks nested deeper than this")
    p.set_defaults(run=_lazy("specc.summary:cmd_summary"))

    p = sub.add_parser("build", help="compile to PyTorch, write weights (safetensors) and exports")
    p.add_argument("spec", type=_path, metavar="SPEC")
    p.add_argument("--model", help="the model to build when the file has several")
    p.add_argument("-o", "--out", default=None, type=_path, metavar="DIR",
                   help="output folder (default: build/<spec name>)")
    p.add_argument("--export", action="append", default=[], metavar="TARGET",
                   help="onnx, pt2, aoti or tensorrt (repeatable; also read from the spec's export section)")
    p.add_argument("--weights", type=_path, metavar="CKPT", help="a .safetensors file, or a checkpoint of "
                   "`specc train` (.pt) or of its Lightning engine (.ckpt) (default: the initial weights)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the exporters' own output")
    p.set_defaults(run=_lazy("specc.build:cmd_build"))

    p = sub.add_parser("emit", help="print a standalone PyTorch module (no specc import)")
    p.add_argument("spec", type=_path, metavar="SPEC")
    p.add_argument("--python", action="store_true", required=True, help="emit Python source")
    p.add_argument("--model", help="the model to emit when the file has several")
    p.add_argument("-o", "--out", type=_path, metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(run=_lazy("specc.emit:cmd_emit"))

    p = sub.add_parser("train", help="run the spec's training recipe")
    p.add_argument("spec", type=_path, metavar="SPEC")
    p.add_argument("--model", help="the model to train when the file has several")
    p.add_argument("--out", default=None, type=_path, metavar="DIR", help="run folder (default: runs/<spec name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--nproc", type=_positive_int, default=1, help="processes for DDP (torch.distributed)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a field, e.g. --set train.epochs=3 (validated like the file)")
    p.add_argument("--export", action="append", default=[], metavar="TARGET",
                   help="export and verify after training (repeatable; also read from the spec's export section)")
    p.set_defaults(run=_lazy("specc.train.cli:cmd_train"))

    p = sub.add_parser("plot", help="draw a run's learning curves to a PNG")
    p.add_argument("run_dir", type=_path, metavar="OUT")
    p.add_argument("-o", "--out", "--output", dest="out", type=_path, metavar="PNG", help="default: OUT/curves.png")
    p.set_defaults(run=_lazy("specc.train.plot:cmd_plot"))

    p = sub.add_parser("graph", help="draw the model: dot, svg, png or mermaid")
    p.add_argument("spec", type=_path, metavar="SPEC")
    p.add_argument("--format", choices=["dot", "svg", "png", "mermaid"], default="dot")
    p.add_argument("--depth", type=_positive_int, default=None, help="collapse blocks nested deeper than this")
    p.add_argument("--model", help="the model to draw when the file has several")
    p.add_argument("-o", "--out", type=_path, metavar="FILE", help="write to FILE (required for png)")
    p.set_defaults(run=_lazy("specc.tools.graph:cmd_graph"))

    p = sub.add_parser("fmt", help="format .dlspec files (keeps comments)")
    p.add_argument("paths", nargs="+", type=_path, metavar="PATH")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if unformatted")
    p.set_defaults(run=_lazy("specc.tools.fmt:cmd_fmt"))

    p = sub.add_parser("convert", help="convert between .dlspec and YAML")
    p.add_argument("spec", type=_path, metavar="SPEC")
    p.add_argument("--to", choices=["yaml", "dlspec"], required=True)
    p.add_argument("-o", "--out", type=_path, metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(run=_lazy("specc.tools.convert:cmd_convert"))


# the optional packages specc imports lazily -> the extra that installs each
EXTRAS = {"torch": "torch", "safetensors": "torch", "numpy": "torch", "torchmetrics": "train", "sklearn": "train",
          "tqdm": "train", "matplotlib": "train", "lightning": "lightning", "onnx": "onnx", "onnxruntime": "onnx",
          "onnxscript": "onnx", "torch_tensorrt": "tensorrt"}
# commands whose extra holds more than torch: without torch they name it, so one install is enough
COMMAND_EXTRAS = {"train": "train", "plot": "train"}


def _other_rank() -> bool:
    """A process of a multi-process run other than rank 0: what every process meets (the same spec,
    data and Ctrl-C), rank 0 reports alone."""
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) != "0"  # Lightning's set LOCAL_RANK only


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler, `kill`): stop as Ctrl-C does, cleaning up on the way out."""


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises Terminated while a command runs, where it would otherwise end the process at
    once, leaving temp files and saying nothing; a handler someone else set is kept."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def terminate(signum, frame):
        raise Terminated()
    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupted_during(err: BaseException) -> KeyboardInterrupt | None:
    """The interrupt an exception was raised while handling (torch's checkpoint writer raises its
    own error over a Ctrl-C that stopped it)."""
    while err is not None:
        if isinstance(err, KeyboardInterrupt):
            return err
        err = err.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 (Linux allows them) prints as its bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _sigterm_as_interrupt():
            return args.run(args)
    except SpecError as err:
        if not _other_rank():
            print(str(err), file=sys.stderr)
        # a SPEC argument that cannot be read is a usage error, as it is for `specc check`, and so is a
        # --model the file lacks (or none where it has several)
        return EXIT_USAGE if all(d.code in ("E0901", "E0411") for d in err.diagnostics) else EXIT_SPEC
    except UsageError as err:
        if not _other_rank():
            print(f"specc: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as err:
        return _stopped(err)
    except BrokenPipeError:  # the reader stopped early (`| head`): end as a Unix tool killed by SIGPIPE does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_BROKEN_PIPE
    except ModuleNotFoundError as err:
        package = (err.name or "").partition(".")[0]
        if package not in EXTRAS:
            return _internal_error()
        extra = COMMAND_EXTRAS.get(args.command, "torch") if EXTRAS[package] == "torch" else EXTRAS[package]
        print(f"specc: error: `specc {args.command}` needs {package}, which is not installed: "
              f"pip install 'specc[{extra}]'", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        if err.errno is None:  # raised by code, not by the system: a bug
            return _internal_error()
        # a path given wrongly or that cannot be written: an output folder that is a file, a
        # read-only or full disk, a name too long, ...
        print(f"specc: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001 - a bug in specc: say so, and where to report it
        interrupt = _interrupted_during(err)
        return _stopped(interrupt) if interrupt is not None else _internal_error()


def _stopped(interrupt: KeyboardInterrupt) -> int:
    """Exit 130 after Ctrl-C, 143 after SIGTERM, as a shell reports a process the signal ended."""
    terminated = isinstance(interrupt, Terminated)
    if not _other_rank():
        print(f"specc: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
    return 128 + (signal.SIGTERM if terminated else signal.SIGINT)


def _internal_error() -> int:
    """Called while handling the exception: its trace, and where to report it."""
    print(traceback.format_exc(), file=sys.stderr)
    print(f"specc: internal error (this is a bug in specc, not in your spec).\n"
          f"Please report it with the spec and the trace above at {REPORT_URL}", file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
