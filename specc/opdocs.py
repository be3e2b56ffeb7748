"""Op reference generated from the registry: `specc ops [NAME]` and docs/ops.md."""
from __future__ import annotations

import re

from .ir.ops import OPS


def _signature(op) -> str:
    parts = []
    for name, field in op.params.model_fields.items():
        if field.is_required():
            parts.append(name)
        else:
            default = field.default
            parts.append(f"{name} = {_literal(default)}")
    return f"{op.name}(" + ", ".join(parts) + ")"


def _literal(v) -> str:
    from .frontend.unparse import literal
    return literal(v) if isinstance(v, (int, float, str, bool, tuple, list, type(None))) else str(v)


def list_ops() -> str:
    by_category: dict[str, list] = {}
    for op in OPS.values():
        by_category.setdefault(op.category, []).append(op)
    lines = []
    for category in sorted(by_category):
        lines.append(f"{category}:")
        for op in sorted(by_category[category], key=lambda o: o.name):
            summary = op.doc.strip().split("\n", 1)[0]
            lines.append(f"  {op.name:<26} {summary}")
    return "\n".join(lines)


def describe_op(name: str) -> str | None:
    op = OPS.get(name)
    if op is None:
        return None
    lines = [_signature(op), "", op.doc.strip()]
    if op.inferred:
        lines.append(f"\nInferred from the input (may be omitted): {', '.join(op.inferred)}")
    if op.positional:
        lines.append(f"Positional order: {', '.join(op.positional)}")
    lo, hi = op.inputs
    lines.append(f"Tensor inputs: {lo}" + ("" if lo == hi else f" to {hi}" if hi is not None else " or more"))
    if op.example:
        lines.append(f"Example: {op.example}")
    return "\n".join(lines)


def _markdown_text(doc: str) -> list[str]:
    """An op's doc as Markdown paragraphs, one a line; outside `code`, * (in shapes and formulas) and <
    are escaped so that they print as written rather than as emphasis or HTML."""
    def escape(line: str) -> str:
        parts = line.split("`")
        parts[::2] = [re.sub(r"([\\*<])", r"\\\1", p) for p in parts[::2]]
        return "`".join(parts)
    return [x for line in doc.strip().splitlines() for x in (escape(line), "")]


def markdown() -> str:
    """docs/ops.md."""
    out = ["# Op reference", "", "Generated from the op registry by `specc ops`; "
           "`python -m specc.opdocs > docs/ops.md` regenerates it.", ""]
    for op in sorted(OPS.values(), key=lambda o: (o.category, o.name)):
        out += [f"## {op.name}", "", f"`{_signature(op)}`", "", *_markdown_text(op.doc)]
        if op.inferred:
            out += [f"- inferred from the input: {', '.join(f'`{n}`' for n in op.inferred)}"]
        if op.positional:
            out += [f"- positional order: `{', '.join(op.positional)}`"]
        lo, hi = op.inputs
        out += [f"- tensor inputs: {lo}" + ("" if lo == hi else f" to {hi}" if hi is not None else " or more")]
        if op.example:
            out += [f"- example: `{op.example}`"]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown(), end="")
