"""The IR's parameter counts equal the reference architectures exactly (torch-free)."""
from pathlib import Path

import pytest

import specc
from specc.ir.build import build

ROOT = Path(__file__).resolve().parent.parent

REFERENCE = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "vgg16": 138_357_544,
    "mobilenet_v2": 3_504_872,
    "vit_b16": 86_567_656,
    "gpt2_small": 124_439_808,  # LM head tied to the token embedding
    "bert_base": 109_482_240,  # encoder with pooler
    "tutorial_cnn": 545_098,
}


@pytest.mark.parametrize("name,count", REFERENCE.items())
def test_param_count_equals_reference(name, count):
    graph, diagnostics = build(specc.load(ROOT / "specs" / f"{name}.dlspec"))
    assert diagnostics == []
    assert graph.param_count == count


def test_every_spec_checks_clean():
    assert specc.check([str(ROOT / "specs")]) == []
