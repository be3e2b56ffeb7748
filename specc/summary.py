"""`specc summary`: a per-layer table computed from the IR (no torch, nothing allocated)."""
from __future__ import annotations

import math

from .ir import dims as D
from .ir.graph import group_prefixes
from .ir.ops import OPS
from .ir.types import DTYPE_BYTES


def _group(path: str, depth: int | None) -> str:
    parts = path.split(".")
    return path if depth is None or len(parts) <= depth else ".".join(parts[:depth])


def summary_rows(graph, depth: int | None = None) -> list[dict]:
    """One row per layer application, in execution order. With `depth`, the consecutive
    applications inside a group nested deeper collapse into one row for the group; without it,
    a heading row (no figures) names each group as its layers begin."""
    blocks = graph.block_groups()
    tied = {t.target for t in graph.ties}
    counted: set[str] = set()
    rows: list[dict] = []
    previous: list[str] = []
    for node in graph.nodes:
        layer = graph.layers[node.layer]
        params = 0
        if node.layer not in counted:  # a shared layer's parameters count once
            counted.add(node.layer)
            params = sum(math.prod(s) for k, s in OPS[layer.op].param_shapes(layer.params).items()
                         if f"{node.layer}.{k}" not in tied)
        key = _group(node.layer, depth)
        shape = ", ".join(str(graph.values[o].type) for o in node.outputs)
        if key != node.layer and rows and rows[-1]["name"] == key:
            row = rows[-1]
            row["params"] += params
            row["macs"] = D.add(row["macs"], node.macs)
            row["output"] = shape
            continue
        groups = group_prefixes(node.layer) if depth is None else []
        rows += [{"name": g, "op": blocks.get(g, "group"), "output": "", "params": None, "macs": None,
                  "depth": g.count(".")} for g in groups if g not in previous]
        previous = groups
        rows.append({"name": key, "op": layer.op if key == node.layer else blocks.get(key, "group"),
                     "output": shape, "params": params, "macs": node.macs, "depth": key.count(".")})
    return rows


def summary_table(graph, depth: int | None = None) -> str:
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be 1 or more (the top-level layers), got {depth}")
    rows = summary_rows(graph, depth)
    header = ("layer", "op", "output", "params", "MACs")
    table = [header] + [("  " * r["depth"] + r["name"].rsplit(".", 1)[-1] if depth is None else r["name"],
                         r["op"], r["output"], "" if r["params"] is None else f"{r['params']:,}",
                         "" if r["macs"] is None else str(r["macs"])) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for i, row in enumerate(table):
        cells = [row[j].ljust(widths[j]) if j < 3 else row[j].rjust(widths[j]) for j in range(len(header))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    total = graph.param_count
    inputs = ", ".join(f"{v} {graph.values[v].type}" for v in graph.inputs)
    outputs = ", ".join(f"{name} {graph.values[v].type}" for name, v in zip(graph.output_names, graph.outputs))
    lines += ["", f"model {graph.name}: inputs {inputs}; outputs {outputs}",
              f"parameters: {total:,} ({human_bytes(total * DTYPE_BYTES[graph.weight_dtype])} as {graph.weight_dtype})",
              f"MACs per forward pass: {graph.macs}{_per_sample(graph.macs)}"]
    return "\n".join(lines)


def _per_sample(macs) -> str:
    """ " (per sample: 1,208,320)" when the MACs depend on the batch N alone."""
    if not isinstance(macs, D.Sym) or macs.symbols != {"N"} or any(mono != ("N",) for mono, _ in macs.terms):
        return ""
    return f" (per sample: {D.substitute(macs, {'N': 1}):,})"


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


def cmd_summary(args) -> int:
    from .compiled import build_ir, load_spec

    graph = build_ir(load_spec(args.spec), args.model)
    print(summary_table(graph, depth=args.depth))
    return 0
