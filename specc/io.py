"""Atomic file writes: a temp file in the same folder, then os.replace, so nothing a user made
is ever left half-written."""
from __future__ import annotations

import errno
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def naming(path):
    """A system error inside (a full disk, a name too long) names `path`, the file the user asked
    for, rather than nothing or the temp file beside it."""
    try:
        yield
    except OSError as err:
        if err.errno is None:  # raised by code, not by the system
            raise
        raise OSError(err.errno, err.strerror, str(path)) from None


@contextmanager
def interrupts_deferred():
    """Ctrl-C (SIGINT) or SIGTERM arriving inside takes effect when the block is done, so what it
    writes (a checkpoint) is written whole, its temp file removed, before the run stops. Only the
    main thread receives signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: arrived.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)  # None: set outside Python
        if arrived:
            signal.raise_signal(arrived[0])  # now handled as it would have been


def machine_memory() -> int | None:
    """Bytes of memory this machine has (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return None


def _default_mode() -> int:
    """The permissions a plain open() would give (mkstemp makes files 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_beside(path: Path) -> tuple[int, str]:
    if path.is_dir():  # else os.replace would say so only after the data is written, about the temp name
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with naming(path):
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def write_bytes_atomic(path, data: bytes) -> None:
    """Replace the file at `path` (through a symlink: its target) keeping its permissions, or make it.
    A device or a pipe (`-o /dev/stdout`) is written to as it is: it cannot be replaced."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        with open(path, "wb") as f:
            f.write(data)
        return
    path = Path(os.path.realpath(path))
    mode = path.stat().st_mode & 0o777 if path.is_file() else _default_mode()
    fd, tmp = _temp_beside(path)
    os.chmod(tmp, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def atomic_path(path):
    """A temp path beside `path` for writers that want a file name (torch.save, exporters);
    call `os.replace(tmp, path)` when done. A writer that makes the file anew (safetensors
    does) leaves it 0600: call set_default_mode(tmp) before the replace."""
    fd, tmp = _temp_beside(Path(path))
    try:
        os.close(fd)
        os.chmod(tmp, _default_mode())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def set_default_mode(path) -> None:
    """The permissions a plain open() would give (0644 under umask 022), e.g. to a temp file
    a writer replaced with its own 0600 one."""
    os.chmod(path, _default_mode())
