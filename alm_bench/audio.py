"""Audio I/O: decode any rate, channel count and length into what a model declares.

Decoding goes through soundfile and resampling through soxr; nothing here touches torch.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import ItemError
from .protocol import AudioFormat

_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha(path: Path | str) -> str:
    """SHA-256 of the file's bytes: the audio content hash used in cache keys.

    Memoised per (path, size, mtime) so a repeated run does not read files twice.
    """
    path = str(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ItemError(f"cannot read audio file {path}: {exc.strerror}") from None
    memo_key = (path, st.st_size, st.st_mtime_ns)
    if memo_key not in _SHA_MEMO:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _SHA_MEMO[memo_key] = digest.hexdigest()
    return _SHA_MEMO[memo_key]


def decode(path: Path | str, fmt: AudioFormat) -> np.ndarray:
    """Read ``path`` as float32 mono at ``fmt.sample_rate``, cut to ``max_seconds``, padded to
    ``min_seconds``.  Raises :class:`ItemError` with the reason for an unreadable, empty or
    non-finite file."""
    try:
        info = sf.info(str(path))
        frames = -1
        if fmt.max_seconds:  # read only what is kept
            frames = int(np.ceil(fmt.max_seconds * info.samplerate)) + 16
        data, rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise ItemError(f"cannot decode audio file {path}: {exc}") from None
    if data.size == 0:
        raise ItemError(f"audio file {path} is empty (0 samples)")
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise ItemError(f"audio file {path} holds non-finite samples")
    return conform(mono, rate, fmt)


def conform(mono: np.ndarray, rate: int, fmt: AudioFormat) -> np.ndarray:
    """Resample a mono signal to ``fmt`` and apply its length policy."""
    if rate != fmt.sample_rate:
        mono = soxr.resample(mono, rate, fmt.sample_rate, quality="HQ")
    if fmt.max_seconds:
        mono = mono[: int(round(fmt.max_seconds * fmt.sample_rate))]
    min_len = int(round(fmt.min_seconds * fmt.sample_rate))
    if len(mono) < min_len:
        mono = np.pad(mono, (0, min_len - len(mono)))
    return np.ascontiguousarray(mono, dtype=np.float32)
