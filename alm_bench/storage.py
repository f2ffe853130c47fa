"""Storage faults (no space, read-only, permission denied, quota, file-size limit) as one-line errors,
checked up front where possible; and file modes that honour the umask."""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from pathlib import Path

from .errors import StorageError

_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit, see ulimit -f)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "input/output error",
}
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_storage_fault(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        name = getattr(exc, "sqlite_errorname", "")
        return name.startswith(("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PERM"))
    return isinstance(exc, OSError) and exc.errno in _REASONS


def reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return str(exc)


def is_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorname", "").startswith("SQLITE_FULL")
    return isinstance(exc, OSError) and exc.errno in _FULL


def fault(exc: BaseException, action: str, path: Path | str, elsewhere: str) -> StorageError:
    """``cannot <action> <path>: <reason>; <what to do>``; ``elsewhere`` says how to go elsewhere."""
    fix = "free space there" if is_full(exc) else "make it writable"
    return StorageError(f"cannot {action} {path}: {reason(exc)}; {fix}, or {elsewhere}")


def write_problem(directory: Path) -> OSError | None:
    """Create ``directory`` and write a small file in it; the error if that fails (root included:
    a read-only mount or a full disk fails for root too)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".alm-bench-probe.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(b"\0" * 4096)
        finally:
            os.unlink(probe)
    except OSError as exc:
        return exc
    return None


def require_writable(directory: Path, what: str, elsewhere: str) -> None:
    problem = write_problem(Path(directory))
    if problem is not None:
        raise fault(problem, f"write {what} in", directory, elsewhere)


def umask() -> int:
    try:  # Linux: read it without changing it (os.umask alone must set it, racing other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def file_mode() -> int:
    """The mode ``open()`` would give a new file: 0666 less the umask (mkstemp always gives 0600)."""
    return 0o666 & ~umask()
