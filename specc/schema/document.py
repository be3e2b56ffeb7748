"""The Pydantic schema of a spec document (both .dlspec and YAML).

Model bodies, input types and parameter defaults arrive as syntax-tree nodes (the YAML
loader parses its strings with the dlspec grammar first); the JSON Schema shows them as the
strings a YAML author writes.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, PrivateAttr,
                      WithJsonSchema)

from ..frontend import ast as A
from .export import ExportConfig
from .train import TrainConfig

_STMT_TYPES = (A.Assign, A.Return, A.If, A.Tie, A.Input, A.Output)


def _instance_of(types, what: str):
    def check(value):
        if not isinstance(value, types):
            raise ValueError(f"expected {what}")
        return value
    return PlainValidator(check)


Statement = Annotated[Any, _instance_of(_STMT_TYPES, "a statement in dlspec syntax"),
                      WithJsonSchema({"type": "string", "description": "one statement in dlspec syntax, "
                                      "e.g. `x = image |> conv1: Conv2d(32, 3) |> ReLU`"})]
TensorTypeText = Annotated[Any, _instance_of(A.TensorTypeExpr, "a tensor type such as float32[N, 3, 32, 32]"),
                           WithJsonSchema({"type": "string", "pattern": r"^\s*[a-z0-9]+\s*\[.*\]\s*$",
                                           "description": "dtype and shape, e.g. float32[N, 3, 32, 32]"})]
ParamDefault = Annotated[Optional[Any], _instance_of((A.Literal, A.ListExpr, A.Name, A.BinOp, A.Unary, A.Cond,
                                                      A.Compare, A.BoolOp, type(None)), "a constant value"),
                         WithJsonSchema({"description": "a constant: number, string, boolean or list, or "
                                         "{expr: TEXT} for a dlspec expression such as `2 * base`; "
                                         "null marks a required parameter"})]


def _name(text: str) -> str:
    """A name as dlspec writes it. YAML keys are any text, and names reach generated Python (an
    input is a parameter of `forward`): anything else could be code."""
    if not _NAME.fullmatch(text):
        raise ValueError(f"`{text}` is not a name: letters, digits and `_`, not starting with a digit")
    return text


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Name = Annotated[str, AfterValidator(_name), WithJsonSchema({"type": "string", "pattern": f"^{_NAME.pattern}$"})]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, defer_build=True)


class ModelDef(Strict):
    params: dict[Name, ParamDefault] = {}
    inputs: dict[Name, TensorTypeText] = Field(min_length=1)
    body: list[Statement] = []
    outputs: list[Name] = Field(min_length=1)


class BlockDef(Strict):
    params: dict[Name, ParamDefault] = {}
    inputs: list[Name] = Field(min_length=1)
    body: list[Statement] = Field(min_length=1)


def _language_version(value):
    """`spec: true` or `spec: 1.0` is no version, though Python's True == 1.0 == 1."""
    if isinstance(value, (bool, float)):
        raise ValueError("the language version is the whole number 1")
    return value


class Spec(Strict):
    """A validated spec document. `path` and `source_map` locate every part of it."""

    spec: Annotated[Literal[1], BeforeValidator(_language_version)] = 1
    imports: list[str] = []
    constants: dict[Name, ParamDefault] = {}
    models: dict[Name, ModelDef] = {}
    blocks: dict[Name, BlockDef] = {}
    train: Optional[TrainConfig] = None
    export: Optional[ExportConfig] = None

    _path: str = PrivateAttr("<memory>")
    _folder: str = PrivateAttr(".")  # the file's folder, absolute when read from a file
    _source_map: dict = PrivateAttr(default_factory=dict)
    _text_hash: str = PrivateAttr("")

    @property
    def path(self) -> str:
        return self._path

    @property
    def folder(self) -> Path:
        """The folder imports and data paths are relative to: the file's, as it was when the file was
        read, whatever the working directory is later."""
        return Path(self._folder)

    @property
    def source_map(self) -> dict:
        return self._source_map

    @property
    def content_hash(self) -> str:
        return self._text_hash

    def span(self, *path):
        """The span of the longest known prefix of a document path."""
        for n in range(len(path), 0, -1):
            span = self._source_map.get(tuple(path[:n]))
            if span is not None:
                return span
        return None
