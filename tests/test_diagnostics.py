"""Golden diagnostics: each bad spec in tests/diagnostics/err has its exact rendered message
in a `.expected` file beside it; each spec in tests/diagnostics/ok checks clean.

Regenerate after an intended change with: SPECC_UPDATE_GOLDEN=1 pytest tests/test_diagnostics.py
"""
import os
from pathlib import Path

import pytest

import specc
from specc import report

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path("tests/diagnostics")
ERR = sorted(p for p in (ROOT / GOLDEN / "err").iterdir() if p.suffix in (".dlspec", ".yaml", ".yml"))
OK = sorted(p for p in (ROOT / GOLDEN / "ok").iterdir() if p.suffix in (".dlspec", ".yaml", ".yml"))


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # messages show paths relative to the working directory


@pytest.mark.parametrize("path", ERR, ids=lambda p: p.name)
def test_error_golden(path):
    rel = str(path.relative_to(ROOT))
    diagnostics = specc.check([rel])
    assert diagnostics, f"{rel} should have errors"
    rendered = report.text(diagnostics, 1) + "\n"
    expected = path.with_suffix(path.suffix + ".expected")
    if os.environ.get("SPECC_UPDATE_GOLDEN"):
        expected.write_text(rendered)
    assert rendered == expected.read_text()


@pytest.mark.parametrize("path", OK, ids=lambda p: p.name)
def test_ok_specs_check_clean(path):
    diagnostics = specc.check([str(path.relative_to(ROOT))])
    assert diagnostics == [], "\n".join(d.render() for d in diagnostics)


def test_every_error_is_located():
    for path in ERR:
        for d in specc.check([str(path.relative_to(ROOT))]):
            assert d.span is not None and d.span.line >= 1, d.render()


def test_every_code_is_documented():
    """SARIF's helpUri points at docs/diagnostics.md#<code>: every code has its entry."""
    from specc.errors import CODES

    text = (Path(__file__).resolve().parent.parent / "docs" / "diagnostics.md").read_text()
    assert [line[4:] for line in text.splitlines() if line.startswith("### ")] == list(CODES)
