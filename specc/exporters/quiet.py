"""Keeping the exporters quiet, and their failures short.

The exporters print progress (`[torch.onnx] ...`), log warnings through their own handlers,
raise Python warnings, and their C++ parts (onnxruntime, the inductor's compiler) write to
the process's file descriptors directly. `quiet()` captures all of it: descriptors 1 and 2
go to a temporary file, Python's sys.stdout/sys.stderr to a buffer, warnings are ignored and
the noisy loggers raised to ERROR. `reason()` turns an exporter's exception into one paragraph.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings

NOISY_LOGGERS = ("torch", "torch.onnx", "torch.export", "torch._dynamo", "torch._inductor", "torch.fx",
                 "onnxscript", "onnx_ir", "torch_tensorrt")
MAX_REASON = 700  # characters


@contextlib.contextmanager
def quiet(verbose: bool = False):
    """Swallow everything the code inside prints (Python and C++ alike); a no-op when verbose."""
    if verbose:
        yield
        return
    with tempfile.TemporaryFile() as sink, _descriptors_to(sink), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings(), _loggers_at(logging.ERROR):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _descriptors_to(sink):
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        _flush(stream)
    saved = []
    try:
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
            os.dup2(sink.fileno(), fd)
    except OSError:  # no real descriptors (an embedding host): Python-level capture still applies
        pass
    try:
        yield
    finally:
        for stream in (sys.__stdout__, sys.__stderr__):
            _flush(stream)
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def _flush(stream) -> None:
    try:
        if stream is not None:
            stream.flush()
    except (OSError, ValueError):
        pass


@contextlib.contextmanager
def _loggers_at(level: int):
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(level, lg.level))
    try:
        yield
    finally:
        for lg, old in zip(loggers, before):
            lg.setLevel(old)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ADVICE = re.compile(r"\s*For more information, run with [^.]*\.")


def reason(err: BaseException) -> str:
    """The real reason of an exporter's failure, in one paragraph: the innermost exception of
    the chain that says something (wrappers like torch.onnx's TorchExportError add advice
    and a stack summary around it), its type and first lines."""
    root = _innermost(err)
    text = _ANSI.sub("", str(root)).strip()
    summary = _exception_summary(text)
    if summary:
        text = summary
    text = _ADVICE.sub("", _first_paragraphs(text)).strip()
    name = type(root).__name__
    out = f"{name}: {text}" if text else name
    return out if len(out) <= MAX_REASON else out[:MAX_REASON - 3].rstrip() + "..."


def _innermost(err: BaseException) -> BaseException:
    chain, seen = [err], {id(err)}
    while True:
        nxt = chain[-1].__cause__ or (None if chain[-1].__suppress_context__ else chain[-1].__context__)
        if nxt is None or id(nxt) in seen:
            break
        chain.append(nxt)
        seen.add(id(nxt))
    for candidate in reversed(chain):
        if str(candidate).strip():
            return candidate
    return err


def _exception_summary(text: str) -> str | None:
    """torch.onnx's errors end with '## Exception summary' and the underlying exception."""
    marker = "## Exception summary"
    if marker not in text:
        return None
    summary = text.split(marker, 1)[1]
    summary = summary.split("(Refer to the full stack trace", 1)[0].strip()
    return re.sub(r"^<class '[\w.]+'>:\s*", "", summary)


def _first_paragraphs(text: str) -> str:
    """Up to the first blank line after some content, joined into one line; torch's
    'For more information, run with ...' advice and trace lines dropped."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            if lines:
                break
            continue
        if stripped.startswith(("File \"", "Traceback", "The error above occurred", "For more information")):
            continue
        lines.append(stripped)
    return " ".join(lines)
