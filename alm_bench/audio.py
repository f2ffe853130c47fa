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


_STREAMED_SIZES = (0, 0xFFFFFFFF)  # a RIFF size a streaming writer left unset


def riff_mismatch(path: Path | str) -> str | None:
    """How a WAV file's content disagrees with its header (truncated or padded), or None.

    libsndfile reads whatever samples a cut file still holds (a WAV cut to 100 bytes decodes as 28
    samples), so the chunk sizes the header declares are compared with the bytes really there.
    Files that are not RIFF/WAVE are left to the decoder."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return None
        riff_size, offset = int.from_bytes(head[4:8], "little"), 12
        while True:
            fh.seek(offset)
            chunk = fh.read(8)
            if len(chunk) < 8:
                return f"holds no audio data: the file ends after {size} bytes, before its data chunk"
            declared = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                held = size - offset - 8
                if declared not in _STREAMED_SIZES and held < declared:
                    return f"is truncated: its header declares {declared} bytes of audio, the file holds {held}"
                break
            offset += 8 + declared + (declared & 1)
    if riff_size not in _STREAMED_SIZES and size > riff_size + 8 + 1:  # + 1: a pad byte some writers omit
        return f"is padded: {size - riff_size - 8} bytes follow the end its header declares ({riff_size + 8} bytes)"
    return None


def decode(path: Path | str, fmt: AudioFormat) -> np.ndarray:
    """Read ``path`` as float32 mono at ``fmt.sample_rate``, cut to ``max_seconds``, padded to
    ``min_seconds``.  Raises :class:`ItemError` with the reason for an unreadable, empty,
    truncated or padded (content not matching its header) or non-finite file."""
    try:
        mismatch = riff_mismatch(path)
        if mismatch:
            raise ItemError(f"audio file {path} {mismatch}")
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


def inspect(path: Path | str, seconds: float = 0.0) -> str | None:
    """What is wrong with an audio file, decoding all of it (``data check``), or None.

    ``seconds``: the length the dataset fixes for every clip (0: any); a clip may differ from it by 1%."""
    try:
        mismatch = riff_mismatch(path)
        if mismatch:
            return mismatch
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        return f"cannot be decoded ({exc})"
    if data.size == 0:
        return "holds no samples"
    if not np.isfinite(data).all():
        return "holds non-finite samples"
    length = len(data) / rate
    if seconds and abs(length - seconds) > 0.01 * seconds:
        return f"lasts {length:.3f} s where the dataset's clips last {seconds:g} s"
    return None
