"""Schema of the `export` section: the deployment targets built by `specc build`."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

# Verification runs the model once per batch size on random inputs made at that size, so the
# sizes are bounded: 1..MAX_BATCH_SIZE each, at most MAX_BATCH_SIZES of them.
MAX_BATCH_SIZE = 4096
MAX_BATCH_SIZES = 8


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False, strict=True)

    atol: Annotated[float, Field(ge=0.0)] = 1e-4
    rtol: Annotated[float, Field(ge=0.0)] = 1e-3
    # verified at these batch sizes (the sample inputs are drawn at each one)
    batch_sizes: Annotated[list[Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)]],
                           Field(min_length=1, max_length=MAX_BATCH_SIZES)] = [2, 7]


class OnnxTarget(Target):
    opset: Annotated[int, Field(ge=13, le=23)] = 18


class Pt2Target(Target):
    pass


class AotiTarget(Target):
    pass


class TensorRTTarget(Target):
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    atol: Annotated[float, Field(ge=0.0)] = 1e-3
    rtol: Annotated[float, Field(ge=0.0)] = 1e-2


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False, strict=True)

    onnx: Optional[OnnxTarget] = None
    pt2: Optional[Pt2Target] = None
    aoti: Optional[AotiTarget] = None
    tensorrt: Optional[TensorRTTarget] = None

    def targets(self) -> dict[str, Target]:
        return {name: t for name in ("onnx", "pt2", "aoti", "tensorrt") if (t := getattr(self, name)) is not None}
