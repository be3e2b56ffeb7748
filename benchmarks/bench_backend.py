"""Compiled specs against the same networks hand-written in PyTorch, interleaved in one process.

    python benchmarks/bench_backend.py [--pairs 10]

Targets (issue: torch backend): forward+backward of ResNet-18 (batch 16) and of the tutorial
CNN: ratio compiled/hand-written <= 1.02 (median of >= 10 interleaved pairs); spec path ->
ready ResNet-50 module against constructing the hand-written ResNet-50: ratio <= 1.10.

specs/resnet50.dlspec has torchvision's init (kaiming normal convs), and so has the hand-written
reference, which like torchvision runs PyTorch's default init first and then overwrites it; specc
skips a default init that the spec's overwrites. The second build figure removes the init from
both sides, so it measures what specc's front end and fx code generation add. The last figure
shows the same effect on GPT-2-sized layers with GPT-2's normal(0.02) init. The big models'
meta-device compile (target: under 2 s each) is timed in fresh processes, where it is slowest.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reference_models as ref  # noqa: E402

import specc  # noqa: E402


def step_time(model, x, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        model(x).sum().backward()
    return (time.perf_counter() - start) / repeats


def forward_backward(name: str, hand_factory, shape, pairs: int, repeats: int) -> float:
    torch.manual_seed(0)
    hand = hand_factory()
    compiled = specc.compile(ROOT / "specs" / f"{name}.dlspec").model
    compiled.load_state_dict(hand.state_dict())
    x = torch.randn(shape)
    for _ in range(3):  # warm up, in turns (the first steps of a process also warm the allocator and caches)
        for model in (hand, compiled):
            step_time(model, x, 2)
    ratios = []
    for i in range(pairs):
        order = (compiled, hand) if i % 2 else (hand, compiled)  # alternate who goes first
        times = {id(m): step_time(m, x, repeats) for m in order}
        ratios.append(times[id(compiled)] / times[id(hand)])
    return statistics.median(ratios)


def build_time(spec_path: Path, hand_factory, pairs: int) -> float:
    """Median of spec path -> ready module / hand-written construction, garbage collected before
    each timed build (an fx GraphModule is freed by the cycle collector, a plain module at once)."""
    specc.compile(spec_path)  # warm: imports, grammar cache
    builders = {"spec": lambda: specc.compile(spec_path), "hand": hand_factory}
    ratios = []
    for i in range(pairs):
        took = {}
        for name in ("spec", "hand") if i % 2 else ("hand", "spec"):  # alternate who goes first
            gc.collect()
            start = time.perf_counter()
            builders[name]()
            took[name] = time.perf_counter() - start
        ratios.append(took["spec"] / took["hand"])
    return statistics.median(ratios)


def without_init(folder: Path) -> Path:
    """resnet50.dlspec and its import with every `init = kaiming` removed (PyTorch's default init)."""
    for rel in ("resnet50.dlspec", "std/resnet.dlspec"):
        text = (ROOT / "specs" / rel).read_text()
        assert ", init = kaiming" in text, f"{rel} has no `init = kaiming` to remove"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text.replace(", init = kaiming", ""))
    return folder / "resnet50.dlspec"


GPT2_SIZED = """model GPT2Sized {
  input idx: int64[N, T]
  y = idx |> wte: Embedding(50257, 768, init = normal(std = 0.02))
    |> c_fc: Linear(3072, init = normal(std = 0.02)) |> c_proj: Linear(768, init = normal(std = 0.02))
  output y
}
"""


def gpt2_sized_by_hand() -> nn.Module:
    """The same three layers as hand-written PyTorch inits them: default init, then normal_ (GPT-2's)."""
    model = nn.Sequential(nn.Embedding(50257, 768), nn.Linear(768, 3072), nn.Linear(3072, 768))
    for layer in model:
        nn.init.normal_(layer.weight, std=0.02)
        if getattr(layer, "bias", None) is not None:
            nn.init.zeros_(layer.bias)
    return model


META_COMPILE = """import sys, time
import torch, specc
start = time.perf_counter()
specc.compile(sys.argv[1], device="meta")
print(time.perf_counter() - start)
"""


def cold_meta_compile(name: str, processes: int = 3) -> float:
    """Median seconds of specc.compile(spec, device="meta") in a fresh process (imports not counted)."""
    import subprocess
    times = [float(subprocess.run([sys.executable, "-c", META_COMPILE, str(ROOT / "specs" / f"{name}.dlspec")],
                                  check=True, capture_output=True, text=True).stdout)
             for _ in range(processes)]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"ResNet-18 fwd+bwd, batch 16: compiled / hand-written = "
          f"{forward_backward('resnet18', ref.resnet18, (16, 3, 224, 224), args.pairs, 2):.3f}")
    print(f"tutorial CNN fwd+bwd, batch 64: compiled / hand-written = "
          f"{forward_backward('tutorial_cnn', ref.TutorialCNN, (64, 3, 32, 32), args.pairs, 20):.3f}")
    resnet50 = ROOT / "specs" / "resnet50.dlspec"
    print(f"spec -> ResNet-50 module / torchvision-style construction (torchvision's init) = "
          f"{build_time(resnet50, ref.resnet50, args.pairs):.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        default_init = build_time(without_init(Path(tmp)), lambda: ref.resnet50(torchvision_init=False), args.pairs)
    print(f"  the same with PyTorch's default init on both sides (specc's own overhead) = {default_init:.3f}")
    print("cold compile on the meta device, fresh process: " + ", ".join(
        f"{name} {cold_meta_compile(name):.2f} s" for name in ("gpt2_small", "bert_base", "vit_b16")))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gpt2_sized.dlspec"
        path.write_text(GPT2_SIZED)
        print(f"spec -> GPT-2-sized embedding + MLP with normal(std = 0.02) / hand-written (default init, then "
              f"normal_) = {build_time(path, gpt2_sized_by_hand, args.pairs):.3f}")


if __name__ == "__main__":
    main()
