"""The `specc` command. Exit codes: 0 ok, 1 the spec has errors, 2 wrong usage, 3 internal error."""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from .errors import REPORT_URL, SpecError, UsageError

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def cmd_check(args) -> int:
    from . import report
    from .checker import expand_paths
    from .checker import check as run_check

    files = expand_paths(args.paths)
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    if not files:
        raise UsageError("no spec files (.dlspec, .yaml, .yml) found in " + ", ".join(args.paths))
    diagnostics = run_check(files, max_params=args.max_params)
    output = report.FORMATS[args.format](diagnostics, len(files))
    if output:
        print(output)
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
            raise UsageError(f"unknown op `{args.name}`; `specc ops` lists them")
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
    p.add_argument("paths", nargs="+", metavar="PATH", help="spec files, folders or globs")
    p.add_argument("--format", choices=["text", "json", "github", "sarif"], default="text")
    p.add_argument("--max-params", type=_positive_int, default=None, metavar="N",
                   help="reject models with more than N parameters")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("schema", help="print the JSON Schema of the YAML spec document")
    p.set_defaults(run=cmd_schema)

    p = sub.add_parser("ops", help="list the ops, or describe one")
    p.add_argument("name", nargs="?")
    p.set_defaults(run=cmd_ops)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


_EXTRA_COMMANDS: list = []  # later stages (build, train, export, fmt, ...) add their subcommands here


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SpecError as err:
        print(str(err), file=sys.stderr)
        return EXIT_SPEC
    except UsageError as err:
        print(f"specc: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("specc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception:  # noqa: BLE001 - a bug in specc: say so, and where to report it
        print(traceback.format_exc(), file=sys.stderr)
        print(f"specc: internal error (this is a bug in specc, not in your spec).\n"
              f"Please report it with the spec and the trace above at {REPORT_URL}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
