"""Checkpoint files for any plugin: a path or an http(s) URL downloaded once into the weights cache.

A URL is downloaded into ``$ALM_BENCH_CACHE/weights`` (or ``~/.cache/alm-bench/weights``) with a
progress bar; the SHA-256 is computed while it streams and recorded in ``NAME.sha256`` beside the
file, and a later load re-hashes the file and refuses one that no longer matches.  ``expected_sha``
pins a checksum.  Every failure is a one-line :class:`UsageError` that ends with ``how`` (how to get
the file), so the CLI prints it and exits 2.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Mapping

from alm_bench.errors import UsageError


def weights_dir() -> Path:
    from alm_bench.runner import default_cache_dir

    return default_cache_dir() / "weights"


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_name(url: str, official: Iterable[str] = ()) -> str:
    """The file's own name for official URLs; other URLs get a short hash so two never collide."""
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "checkpoint.pth"
    if url in set(official):
        return name
    return f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"


def local_file(spec: str, what: str, how: str, expected_sha: str | None = None,
               official: Iterable[str] = ()) -> tuple[Path, str]:
    """(path, sha256) of a checkpoint given as a path or URL; URLs are downloaded once."""
    if is_url(spec):
        path = weights_dir() / cache_name(spec, official)
        if not path.exists():
            download(spec, path, what, how)
        recorded = path.with_name(path.name + ".sha256")
        sha = sha256_file(path)
        if recorded.exists() and recorded.read_text().split()[0] != sha:
            raise UsageError(f"cached checkpoint {path} does not match the checksum recorded when it was "
                             f"downloaded; delete it to download it again")
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UsageError(f"{what} checkpoint {spec} not found; {how}")
        sha = sha256_file(path)
    if expected_sha and sha != expected_sha.lower():
        raise UsageError(f"checkpoint {path} has SHA-256 {sha}, not the pinned {expected_sha}")
    return path, sha


def download(url: str, path: Path, what: str, how: str) -> None:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")  # concurrent downloads never share one
    digest = hashlib.sha256()
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"alm-bench ({what} plugin)"})
        with urllib.request.urlopen(request, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
            with Progress("[progress.description]{task.description}", *columns, transient=True) as progress:
                task = progress.add_task(f"downloading {path.name}", total=total)
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    progress.advance(task, len(block))
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise UsageError(f"cannot download the {what} checkpoint {url} ({reason}); {how}") from None
    os.replace(partial, path)
    path.with_name(path.name + ".sha256").write_text(f"{digest.hexdigest()}  {path.name}\n")


def read_state_dict(path: Path, trusted: bool, what: str) -> dict:
    """The state dict of a checkpoint file (``file["model"]`` when the file wraps it, as Pengi's and
    LAVIS's do).  Loads with ``weights_only=True`` first; a file that needs full unpickling is loaded
    only when ``trusted`` (official URLs, or ``trust_checkpoint=true``), since unpickling can run code."""
    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as exc:
        if not trusted:
            raise UsageError(f"{path} cannot be loaded as tensors only ({str(exc).splitlines()[0]}); if you "
                             "trust the file, pass --model-args trust_checkpoint=true") from None
        blob = torch.load(path, map_location="cpu", weights_only=False)
    state = blob.get("model", blob) if isinstance(blob, Mapping) else None
    if not isinstance(state, Mapping):
        raise UsageError(f"{path} is not a {what} checkpoint (no state dict under 'model')")
    return dict(state)


# -- the Hugging Face Hub (through its own cache: HF_HOME / HF_HUB_CACHE; HF_HUB_OFFLINE=1 uses the cache alone)
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
