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


NESTED = """block Inner(c) (x) {
  return x |> a: Linear(c) |> ReLU
}
block Outer(c) (x) {
  h = x |> pre: Linear(c)
  return h |> inner: Inner(c)
}
model Nest {
  input x: float32[N, T, 8]
  y = x |> o: Outer(16) |> stack: repeat 2 { Outer(16) } |> head: Linear(4)
  output y
}
"""


def _table(tmp_path, capsys, text, *args) -> str:
    spec = tmp_path / "m.dlspec"
    spec.write_text(text)
    assert main(["summary", str(spec), *args]) == 0
    return capsys.readouterr().out.split("\n\n")[0]


def test_summary_names_each_group_with_its_block(tmp_path, capsys):
    """Without --depth, a heading row names each group (a block instance by its block) so that the
    indented layers of stack.0 and stack.1 can be told apart."""
    assert _table(tmp_path, capsys, NESTED) == """\
layer         op      output             params     MACs
------------  ------  -----------------  ------  -------
o             Outer
  pre         Linear  float32[N, T, 16]     144  128*N*T
  inner       Inner
    a         Linear  float32[N, T, 16]     272  256*N*T
    relu_0    ReLU    float32[N, T, 16]       0        0
stack         group
  0           Outer
    pre       Linear  float32[N, T, 16]     272  256*N*T
    inner     Inner
      a       Linear  float32[N, T, 16]     272  256*N*T
      relu_0  ReLU    float32[N, T, 16]       0        0
  1           Outer
    pre       Linear  float32[N, T, 16]     272  256*N*T
    inner     Inner
      a       Linear  float32[N, T, 16]     272  256*N*T
      relu_0  ReLU    float32[N, T, 16]       0        0
head          Linear  float32[N, T, 4]       68   64*N*T"""


def test_summary_depth_labels_a_group_with_its_own_block(tmp_path, capsys):
    """`o` is an Outer (it was labelled Inner, the block of its last layer); a repeat is a group."""
    assert _table(tmp_path, capsys, NESTED, "--depth", "1") == """\
layer  op      output             params      MACs
-----  ------  -----------------  ------  --------
o      Outer   float32[N, T, 16]     416   384*N*T
stack  group   float32[N, T, 16]   1,088  1024*N*T
head   Linear  float32[N, T, 4]       68    64*N*T"""
    assert _table(tmp_path, capsys, NESTED, "--depth", "2") == """\
layer    op      output             params     MACs
-------  ------  -----------------  ------  -------
o.pre    Linear  float32[N, T, 16]     144  128*N*T
o.inner  Inner   float32[N, T, 16]     272  256*N*T
stack.0  Outer   float32[N, T, 16]     544  512*N*T
stack.1  Outer   float32[N, T, 16]     544  512*N*T
head     Linear  float32[N, T, 4]       68   64*N*T"""


def test_summary_shows_each_application_of_a_shared_layer(tmp_path, capsys):
    """The second `enc` was merged into the first row (out of order, its MACs doubled there);
    its parameters still count once."""
    assert _table(tmp_path, capsys, "model R {\n  input x: float32[N, 8]\n"
                  "  y = x |> enc: Linear(8) |> ReLU |> enc |> head: Linear(3)\n  output y\n}\n") == """\
layer   op      output         params  MACs
------  ------  -------------  ------  ----
enc     Linear  float32[N, 8]      72  64*N
relu_0  ReLU    float32[N, 8]       0     0
enc     Linear  float32[N, 8]       0  64*N
head    Linear  float32[N, 3]      27  24*N"""


def test_summary_macs_match_the_published_figures(capsys):
    """torchvision's ResNet-18 / ResNet-50 / VGG-16 at 224x224: 1.81 / 4.09 / 15.47 GMACs (fvcore)."""
    for name, macs in (("resnet18", "1,814,073,344"), ("resnet50", "4,089,184,256"), ("vgg16", "15,470,264,320")):
        assert main(["summary", "--depth", "1", str(ROOT / "specs" / f"{name}.dlspec")]) == 0
        assert f"(per sample: {macs})" in capsys.readouterr().out
