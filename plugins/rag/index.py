"""The KB's vectors in a faiss inner-product index, built once and kept in the run's cache.

Each pair is one row ``[Enc_A(audio) ; Enc_T(caption)]``, both halves L2-normalised, in an
``IndexFlatIP`` (exact search).  A query ``[x ; y]`` then scores ``<x, a_k> + <y, t_k>``: every
retrieval mode is a choice of query (``retrieval``), as the paper's concatenated embeddings (eq. 8-9).
The file lives in ``CACHE_DIR/rag/`` under a key of the KB's content hash and both encoders' names,
settings and audio formats, so a changed KB or encoder builds a new one and a repeated run loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from alm_bench.errors import UsageError

from .encoders import Encoders
from .kb import KnowledgeBase

FORMAT = 1  # bump when the layout of the rows changes


def faiss_module():
    try:
        import faiss
    except ImportError:
        raise UsageError("rag needs faiss: pip install 'alm-bench[rag]' (or faiss-cpu)") from None
    return faiss


@dataclass
class PairIndex:
    index: Any
    audio_dim: int
    path: Path | None
    #: True when this call built the index, False when it was loaded from the cache
    built: bool

    @cached_property
    def rows(self) -> np.ndarray:
        return self.index.reconstruct_n(0, self.index.ntotal)


def index_key(kb: KnowledgeBase, encoders: Encoders) -> str:
    described = json.dumps({"format": FORMAT, "kb": kb.content_hash, "encoders": encoders.describe()},
                           sort_keys=True, default=str)
    return hashlib.sha256(described.encode()).hexdigest()[:24]


def load_or_build(kb: KnowledgeBase, encoders: Encoders, cache_dir: Path | None) -> PairIndex:
    faiss = faiss_module()
    folder = Path(cache_dir) / "rag" if cache_dir else None
    key = index_key(kb, encoders)
    path = folder / f"index-{key}.faiss" if folder else None
    meta = path.with_suffix(".json") if path else None
    if path is not None and path.is_file() and meta.is_file():
        return PairIndex(faiss.read_index(str(path)), json.loads(meta.read_text())["audio_dim"], path, False)
    rows, audio_dim = pair_rows(kb, encoders)
    index = faiss.IndexFlatIP(rows.shape[1])
    index.add(rows)
    if folder is not None:
        _save(faiss, index, audio_dim, kb, path, meta)
    return PairIndex(index, audio_dim, path, True)


def pair_rows(kb: KnowledgeBase, encoders: Encoders) -> tuple[np.ndarray, int]:
    """One ``[audio ; caption]`` row per pair; each distinct clip is embedded once."""
    clips = kb.distinct_clips()
    audio = encoders.embed_files([path for _, path in clips])
    row_of = {sha: i for i, (sha, _) in enumerate(clips)}
    text = encoders.embed_texts([e.caption for e in kb.entries])
    rows = np.concatenate([audio[[row_of[e.sha] for e in kb.entries]], text], axis=1)
    return np.ascontiguousarray(rows, dtype=np.float32), audio.shape[1]


def _save(faiss, index, audio_dim: int, kb: KnowledgeBase, path: Path, meta: Path) -> None:
    """Written beside and renamed into place: a killed build leaves no half index."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
        faiss.write_index(index, str(tmp))
        meta_tmp = tmp.with_suffix(".json")
        meta_tmp.write_text(json.dumps({"audio_dim": audio_dim, "kb": kb.source, "kb_hash": kb.content_hash,
                                        "pairs": len(kb.entries)}))
        meta_tmp.replace(meta)
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache: the index is used in memory and built again next time
