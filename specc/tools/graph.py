"""`specc graph`: draw a model from its IR, torch-free.

Layers are boxes labelled with their name and op; edges carry the shape of the tensor they
move. Layer paths give the nesting (`layer1.0.conv1` sits in `layer1` and `layer1.0`): every
named group (a block instance, a named list or repeat) is a cluster, labelled with its block
where it is one. `--depth N` collapses everything nested deeper than N path components into one
box per group. Output: Graphviz DOT (SVG/PNG through Graphviz's `dot` program) or a Mermaid
flowchart for Markdown.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from ..errors import UsageError
from ..ir.graph import group_prefixes


@dataclass
class Box:
    id: str
    label: tuple[str, ...]  # lines
    kind: str  # "layer" | "group" | "input" | "output"
    path: str = ""  # the layer path or group key ("" for inputs and outputs)
    tooltip: str = ""


@dataclass
class Cluster:
    path: str
    label: str
    boxes: list = field(default_factory=list)
    children: dict = field(default_factory=dict)  # path -> Cluster


@dataclass
class Drawing:
    name: str
    root: Cluster
    edges: list  # (from box id, to box id, label)


def _shape(t) -> str:
    text = str(t)
    return text[len("float32"):] if text.startswith("float32[") else text


def drawing(graph, depth: int | None = None) -> Drawing:
    """The boxes, clusters and edges of a model graph, with groups deeper than `depth` collapsed."""
    blocks = graph.block_groups()
    root = Cluster("", graph.name)

    def cluster(path: str) -> Cluster:
        node = root
        for prefix in group_prefixes(path + ".x") if path else []:
            if prefix not in node.children:
                label = prefix + (f": {blocks[prefix]}" if prefix in blocks else "")
                node.children[prefix] = Cluster(prefix, label)
            node = node.children[prefix]
        return node

    box_of: dict[str, str] = {}  # value id -> the box that makes it
    for name in graph.inputs:
        box = Box(f"input:{name}", (name, _shape(graph.values[name].type)), "input")  # ":" is in no layer path
        root.boxes.append(box)
        box_of[name] = box.id
    groups: dict[str, Box] = {}
    edges: dict[tuple, str] = {}  # (from box, to box, value id) -> label: one edge per value a box takes in
    for node in graph.nodes:
        layer = graph.layers[node.layer]
        parts = node.layer.split(".")
        if depth is not None and len(parts) > depth:
            key = ".".join(parts[:depth])
            box = groups.get(key)
            if box is None:
                label = (key, blocks.get(key, "group"))
                box = groups[key] = Box(f"group:{key}", label, "group", key, key)
                cluster(key.rpartition(".")[0]).boxes.append(box)
        else:
            auto = re.fullmatch(re.escape(layer.op.lower()) + r"_\d+", parts[-1])  # relu_0: just "ReLU"
            label = (layer.op,) if auto else (parts[-1], layer.op)
            box = Box(node.id, label, "layer", node.layer, f"{node.layer}: {layer.op}")
            cluster(node.layer.rpartition(".")[0]).boxes.append(box)
        for value in node.inputs:
            if value in box_of and box_of[value] != box.id:
                edges[(box_of[value], box.id, value)] = _shape(graph.values[value].type)
        for value in node.outputs:
            box_of[value] = box.id
    for name, value in zip(graph.output_names, graph.outputs):
        box = Box(f"output:{name}", (name,), "output")
        root.boxes.append(box)
        edges[(box_of[value], box.id, value)] = _shape(graph.values[value].type)
    return Drawing(graph.name, root, [(a, b, label) for (a, b, _), label in edges.items()])


# ---- Graphviz DOT -------------------------------------------------------------------------
STYLE = {
    "layer": 'shape=box, style="rounded,filled", fillcolor="#e8f0fe"',
    "group": 'shape=box3d, style="filled", fillcolor="#d2e3fc"',
    "input": 'shape=ellipse, style="filled", fillcolor="#fef7e0"',
    "output": 'shape=ellipse, style="filled", fillcolor="#e6f4ea"',
}


def _q(text: str) -> str:
    """A DOT quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(d: Drawing) -> str:
    lines = [f"digraph {_q(d.name)} {{",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, labeljust=l];',
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9, color="#5f6368"];']

    def emit(cluster: Cluster, indent: str) -> None:
        for box in cluster.boxes:
            tooltip = f", tooltip={_q(box.tooltip)}" if box.tooltip else ""
            lines.append(f"{indent}{_q(box.id)} [label={_q(chr(10).join(box.label))}, {STYLE[box.kind]}{tooltip}];")
        for child in cluster.children.values():
            lines.append(f"{indent}subgraph {_q('cluster_' + child.path)} {{")
            lines.append(f'{indent}  label={_q(child.label)}; style="rounded,dashed"; color="#9aa0a6";')
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit(d.root, "  ")
    lines += [f"  {_q(a)} -> {_q(b)} [label={_q(label)}];" for a, b, label in d.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---- Mermaid ------------------------------------------------------------------------------
MERMAID_SHAPE = {"layer": ('["', '"]'), "group": ('[["', '"]]'), "input": ('(["', '"])'), "output": ('(["', '"])')}


def _m(text: str) -> str:
    """Text for a quoted Mermaid label (quotes and angle brackets as entities)."""
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(d: Drawing) -> str:
    ids: dict[str, str] = {}

    def mid(box_id: str) -> str:  # Mermaid ids: plain words, never a keyword such as `end`
        return ids.setdefault(box_id, f"n{len(ids)}_" + re.sub(r"\W", "_", box_id))

    lines = ["flowchart TD"]
    count = [0]

    def emit(cluster: Cluster, indent: str) -> None:
        for box in cluster.boxes:
            left, right = MERMAID_SHAPE[box.kind]
            lines.append(f"{indent}{mid(box.id)}{left}{'<br/>'.join(map(_m, box.label))}{right}")
        for child in cluster.children.values():
            count[0] += 1
            lines.append(f'{indent}subgraph g{count[0]}["{_m(child.label)}"]')
            emit(child, indent + "  ")
            lines.append(f"{indent}end")

    emit(d.root, "  ")
    lines += [f'  {mid(a)} -->|"{_m(label)}"| {mid(b)}' for a, b, label in d.edges]
    return "\n".join(lines) + "\n"


# ---- the command -------------------------------------------------------------------------
def _load(path: str, model: str | None):
    from ..compiled import build_ir
    from ..frontend.load import load_file

    if not os.path.isfile(path):
        raise UsageError(f"{path} is a folder, not a spec file" if os.path.isdir(path) else f"no such file: {path}")
    return build_ir(load_file(path), model)


def render(text: str, fmt: str) -> bytes:
    """DOT -> SVG or PNG through Graphviz's `dot` (UsageError when it is not installed)."""
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError(f"--format {fmt} needs Graphviz's `dot` program: install Graphviz "
                         "(apt-get install graphviz, brew install graphviz), or use --format dot or mermaid")
    done = subprocess.run([exe, f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=300)
    if done.returncode != 0:
        raise UsageError(f"Graphviz's dot could not render --format {fmt}: "
                         f"{done.stderr.decode(errors='replace').strip() or f'exit code {done.returncode}'}")
    return done.stdout


def cmd_graph(args) -> int:
    from ..io import write_bytes_atomic

    if args.depth is not None and args.depth < 1:
        raise UsageError("--depth must be at least 1")
    if args.format == "png" and not args.out:
        raise UsageError("--format png needs -o FILE")
    graph = _load(args.spec, args.model)
    d = drawing(graph, args.depth)
    if args.format == "mermaid":
        data: bytes | str = to_mermaid(d)
    elif args.format == "dot":
        data = to_dot(d)
    else:
        data = render(to_dot(d), args.format)
    if args.out:
        write_bytes_atomic(args.out, data.encode() if isinstance(data, str) else data)
    elif isinstance(data, bytes):
        sys.stdout.buffer.write(data)
    else:
        sys.stdout.write(data)
    return 0
