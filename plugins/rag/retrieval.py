"""The paper's retrieval modes as queries on the pair index, and self-exclusion.

With ``a`` the query clip's audio vector and ``t`` a text query's vector (both L2-normalised), a KB
pair ``(a_k, t_k)`` scores (section 3.3-3.4 and 4.1 of the paper):

- ``audio-to-audio``:   <a, a_k>                               query [a ; 0]
- ``audio-to-text``:    <a, t_k>  (shared audio-text space)    query [0 ; a]
- ``audio-to-mixture``: <a, a_k> + <a, t_k>  (shared space)    query [a ; a]
- ``pair-to-pair``:     W <a, a_k> + (1 - W) <t, t_k>          query [W a ; (1 - W) t]
- ``generative-pair-to-pair``: the same, ``t`` the base model's own caption of the clip.

A query never retrieves a pair whose audio has the query's content hash (as in the authors' code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .index import PairIndex
from .kb import KnowledgeBase

MODES = ("audio-to-audio", "audio-to-text", "audio-to-mixture", "pair-to-pair", "generative-pair-to-pair")
CROSS_MODAL = ("audio-to-text", "audio-to-mixture")
TEXT_QUERY = ("pair-to-pair", "generative-pair-to-pair")


@dataclass(frozen=True)
class Hit:
    entry: int
    score: float
    audio_similarity: float
    text_similarity: float | None


def query_rows(mode: str, audio: np.ndarray, text: np.ndarray | None, w: float, text_dim: int) -> np.ndarray:
    """The ``[n, audio_dim + text_dim]`` queries of ``mode`` for n clips (and their text queries)."""
    n = len(audio)
    if mode == "audio-to-audio":
        parts = [audio, np.zeros((n, text_dim), np.float32)]
    elif mode == "audio-to-text":
        parts = [np.zeros_like(audio), audio]
    elif mode == "audio-to-mixture":
        parts = [audio, audio]
    else:
        parts = [w * audio, (1 - w) * text]
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def search(index: PairIndex, kb: KnowledgeBase, queries: np.ndarray, audio: np.ndarray, text: np.ndarray | None,
           shas: list[str], k: int) -> list[list[Hit]]:
    """The top ``k`` pairs for each query, leaving out pairs of the query's own clip."""
    own = {sha: 0 for sha in shas}
    for entry in kb.entries:
        if entry.sha in own:
            own[entry.sha] += 1
    depth = min(index.index.ntotal, k + max(own.values(), default=0))
    scores, found = index.index.search(queries, depth)
    rows = index.rows
    a_dim = index.audio_dim
    results = []
    for q, sha in enumerate(shas):
        hits = []
        for score, entry in zip(scores[q], found[q]):
            if entry < 0 or kb.entries[entry].sha == sha:
                continue
            row = rows[entry]
            hits.append(Hit(int(entry), float(score), float(audio[q] @ row[:a_dim]),
                            float(text[q] @ row[a_dim:]) if text is not None else None))
            if len(hits) == k:
                break
        results.append(hits)
    return results
