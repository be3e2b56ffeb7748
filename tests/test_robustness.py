"""No input, however broken, ends in a traceback: truncated and byte-mutated versions of every
spec in specs/ give exit code 0 or 1, and every error message is located."""
import random
import subprocess
import sys
from pathlib import Path

import specc
from specc.errors import Diagnostic

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.dlspec"))


def _variants(text: str, rng: random.Random, count: int):
    data = text.encode()
    for _ in range(count):
        kind = rng.randrange(4)
        if kind == 0:  # truncate
            yield data[: rng.randrange(len(data))]
        elif kind == 1:  # flip a byte
            i = rng.randrange(len(data))
            yield data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        elif kind == 2:  # delete a span
            i = rng.randrange(len(data))
            yield data[:i] + data[i + rng.randrange(1, 20):]
        else:  # duplicate a span
            i = rng.randrange(len(data))
            j = min(len(data), i + rng.randrange(1, 40))
            yield data[:j] + data[i:j] + data[j:]


def test_mutated_specs_never_crash(tmp_path):
    rng = random.Random(1234)
    n = 0
    for spec in SPECS:
        (tmp_path / "std").mkdir(exist_ok=True)
        for i, variant in enumerate(_variants(spec.read_text(), rng, 25)):
            path = tmp_path / f"{spec.stem}_{i}.dlspec"
            path.write_bytes(variant)
            diagnostics = specc.check([str(path)])  # must not raise
            for d in diagnostics:
                assert isinstance(d, Diagnostic)
                assert d.span is not None or d.code in ("E0411",), d.render()
                d.render()
            n += 1
    assert n >= 25 * len(SPECS) > 0


def test_cli_exit_codes_on_mutations(tmp_path):
    rng = random.Random(99)
    spec = ROOT / "specs" / "digits_cnn.dlspec"
    for i, variant in enumerate(_variants(spec.read_text(), rng, 12)):
        path = tmp_path / f"v{i}.dlspec"
        path.write_bytes(variant)
        out = subprocess.run([sys.executable, "-m", "specc", "check", str(path)], capture_output=True, text=True)
        assert out.returncode in (0, 1), out.stderr
        assert "Traceback" not in out.stdout + out.stderr
