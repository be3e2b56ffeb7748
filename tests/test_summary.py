"""`specc summary`: computed from the IR, torch-free."""
import subprocess
import sys
from pathlib import Path

from specc.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_summary_table(capsys):
    assert main(["summary", str(ROOT / "specs" / "digits_cnn.dlspec")]) == 0
    out = capsys.readouterr().out
    assert "conv2          Conv2d       float32[N, 64, 8, 8]  18,496  1179648*N" in out
    assert "parameters: 29,258 (114.3 KB as float32)" in out
    assert "MACs per forward pass: 1208320*N (per sample: 1,208,320)" in out
    assert "outputs logits float32[N, 10]" in out


def test_summary_depth_collapses_blocks(capsys):
    assert main(["summary", "--depth", "1", str(ROOT / "specs" / "resnet18.dlspec")]) == 0
    out = capsys.readouterr().out
    layer1 = next(line for line in out.splitlines() if line.startswith("layer1 "))
    assert "float32[N, 64, 56, 56]" in layer1 and "147,968" in layer1
    assert "layer1.0" not in out and "parameters: 11,689,512" in out


def test_summary_is_torch_free():
    code = ("import sys; from specc.cli import main; main(['summary', 'specs/gpt2_small.dlspec']); "
            "assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "parameters: 124,439,808" in out.stdout


def test_summary_memory_uses_the_weights_dtype(tmp_path, capsys):
    """float64 inputs make a float64 model (as specc.compile builds it): 8 bytes a parameter."""
    spec = tmp_path / "m.dlspec"
    spec.write_text("model M {\n  input x: float64[N, 8]\n  y = x |> Linear(4)\n  output y\n}\n")
    assert main(["summary", str(spec)]) == 0
    assert "parameters: 36 (288 B as float64)" in capsys.readouterr().out
