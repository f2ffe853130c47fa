"""Where CLAP weights come from: a local path, or the Hugging Face Hub through its own cache.

Downloads go through ``huggingface_hub`` (``HF_HOME`` / ``HF_HUB_CACHE`` decide where; a file is
fetched once, and ``HF_HUB_OFFLINE=1`` uses the cache alone).  Anything that cannot be had becomes
one line saying what and how to get it, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from alm_bench.errors import UsageError


def _unreachable(what: str, source: str, exc: Exception) -> UsageError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UsageError(f"cannot get the {what} {source} ({type(exc).__name__}: {reason[:160]}); check the "
                      f"name and the network, or download it and pass its local path")


def hub_snapshot(spec: str, revision: str | None = None, what: str = "checkpoint") -> str:
    """A local folder: ``spec`` itself when it is one, else the Hub repository ``spec`` downloaded once."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise UsageError(f"{what} {spec} is not a folder nor a Hub repository id (owner/name)")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(spec, revision=revision)
    except Exception as exc:  # offline, unknown repository, gated, ...: one line
        raise _unreachable(what, spec, exc) from None


def hub_file(repo: str, filename: str, what: str = "checkpoint") -> str:
    """One file of a Hub repository, downloaded once into the Hub cache."""
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo, filename)
    except Exception as exc:
        raise _unreachable(what, f"{repo}/{filename}", exc) from None
