"""Overrides of the train section: `--set train.epochs=3` on the command line, `train(epochs=3)` in Python.

An override replaces one setting (dotted path; list items by index: `train.loss.0.weight`) and
the section is validated again with the same schema as the file. The overrides' text is
registered as a source of its own, so a schema error, and any later plan error about an
overridden setting, points at the `--set` that caused it.
"""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import Diagnostic, Failed, SpecError
from ..schema.train import TrainConfig
from ..schema.values import plain
from ..source import SourceSpan, register_source

SET_SOURCE = "<--set>"
KWARGS_SOURCE = "<train(...)>"


@dataclass(frozen=True)
class Override:
    path: tuple  # inside the train section: ("optimizer", "lr"), ("loss", 0, "weight")
    value: object
    span: SourceSpan  # the whole `key=value` in the override source


class _TrainSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    train: TrainConfig


def parse_sets(texts: list[str]) -> list[Override]:
    """`train.optimizer.lr=1e-3` -> Override. Values are dlspec literals; other text is a string."""
    register_source(SET_SOURCE, "\n".join(texts))
    overrides, problems = [], []
    for line, text in enumerate(texts, 1):
        span = SourceSpan(SET_SOURCE, line, 1, line, max(2, len(text) + 1))
        key, eq, raw = text.partition("=")
        parts = key.strip().split(".")
        if not eq or not key.strip():
            problems.append(Diagnostic("E0202", f"`--set {text}` needs the form KEY=VALUE", span,
                                       label="no `=`", help="e.g. --set train.epochs=3"))
        elif parts[0] != "train" or len(parts) < 2:
            problems.append(Diagnostic("E0201", f"`--set {text}`: only settings of the train section can be set",
                                       span, label="not in train", help=f"write train.{key.strip()}={raw}"))
        else:
            overrides.append(Override(_path(parts[1:]), parse_value(raw.strip()), span))
    if problems:
        raise SpecError(problems)
    return overrides


def from_kwargs(kwargs: dict) -> list[Override]:
    """`train(epochs=3, **{"optimizer.lr": 0.01})`; a dict value replaces a whole sub-section."""
    texts = [f"{key}={value!r}" for key, value in kwargs.items()]
    register_source(KWARGS_SOURCE, "\n".join(texts))
    out = []
    for line, (key, value) in enumerate(kwargs.items(), 1):
        parts = key.split(".")
        if parts[0] == "train" and len(parts) > 1:
            parts = parts[1:]
        out.append(Override(_path(parts), plain(value, lists=True),
                            SourceSpan(KWARGS_SOURCE, line, 1, line, len(texts[line - 1]) + 1)))
    return out


def _path(parts) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in parts)


def parse_value(text: str):
    """A dlspec literal (3, 1e-3, true, "x", [accuracy, f1], a name); any other text is taken as a string."""
    from ..frontend.parse import parse
    from ..frontend.transform import DocumentBuilder, to_ast

    try:
        expr = to_ast(parse(text, SET_SOURCE, start="expr_line"), SET_SOURCE)
    except Failed:
        return text
    builder = DocumentBuilder(SET_SOURCE)
    value = builder._config_value(expr, ())
    return text if builder.diagnostics else value


def apply(spec, overrides: list[Override]):
    """The spec with its train section overridden and validated again; raises SpecError."""
    if not overrides:
        return spec
    if spec.train is None:
        raise SpecError([Diagnostic("E0701", f"{spec.path} has no train section to override", overrides[0].span)])
    doc = spec.train.model_dump(exclude_unset=True)
    defaults = spec.train.model_dump()
    source_map = dict(spec.source_map)
    problems = []
    for o in overrides:
        problem = _assign(doc, defaults, o.path, o.value)
        if problem:
            problems.append(Diagnostic("E0202", problem, o.span, label="cannot set this"))
            continue
        prefix = ("train",) + o.path
        for key in [k for k in source_map if k[:len(prefix)] == prefix]:
            del source_map[key]
        source_map[prefix] = o.span
    if problems:
        raise SpecError(problems)
    try:
        train = _TrainSection.model_validate({"train": doc}).train
    except ValidationError as err:
        from ..frontend.load import schema_diagnostics
        raise SpecError(schema_diagnostics(err, {"train": doc}, source_map, spec.path)) from None
    new = spec.model_copy(update={"train": train})
    new._source_map = source_map
    return new


def _assign(doc: dict, defaults: dict, path: tuple, value) -> str | None:
    """Set doc[path] = value. `defaults`: the whole section, for an item of a list the file leaves at
    its default (`optimizer.betas.0`)."""
    node, default = doc, defaults
    for i, part in enumerate(path[:-1]):
        where = ".".join(map(str, ("train",) + path[:i + 1]))
        if isinstance(part, int) and isinstance(node, dict):  # one section (`loss`) is a list of one
            if part != 0:
                return f"{where}: no item {part}; there is one section here (item 0)"
            continue
        if isinstance(node, list):
            if not isinstance(part, int) or not 0 <= part < len(node):
                return f"{where}: no item {part} in this list of {len(node)}"
            node, default = node[part], _at(default, part)
        elif isinstance(node, dict):
            if part not in node and isinstance(path[i + 1], int) and isinstance(_at(default, part), (list, tuple)):
                node[part] = _at(default, part)
            if isinstance(node.get(part), tuple):  # a pair of numbers (betas) is edited as a list
                node[part] = list(node[part])
            node, default = node.setdefault(part, {}), _at(default, part)
            if not isinstance(node, (dict, list)):
                return f"{where} is a value, not a section"
        else:
            return f"{where} is a value, not a section"
    last = path[-1]
    if isinstance(last, int) and isinstance(node, dict):  # item 0 of one section: the section itself
        section = ".".join(map(str, ("train",) + path))
        return f"{section} is a whole section: set its keys one by one ({section}.KEY=VALUE)"
    if isinstance(node, list):
        if not isinstance(last, int) or not 0 <= last < len(node):
            return f"no item {last} in train.{'.'.join(map(str, path[:-1]))}"
    node[last] = value
    return None


def _at(node, part):
    """node[part] of the defaults, or None where they have no such setting."""
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, (list, tuple)) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def with_overrides(compiled, kwargs: dict):
    """A Compiled whose spec has these train-section overrides (same IR and model)."""
    from ..compiled import Compiled

    spec = apply(compiled.spec, from_kwargs(kwargs))
    return Compiled(spec, compiled.ir, compiled.model)
