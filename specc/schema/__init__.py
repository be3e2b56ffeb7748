"""The document schema: Pydantic v2 models for every part of a spec."""
from .document import BlockDef, ModelDef, Spec
from .export import ExportConfig
from .train import TrainConfig

__all__ = ["Spec", "ModelDef", "BlockDef", "TrainConfig", "ExportConfig"]
