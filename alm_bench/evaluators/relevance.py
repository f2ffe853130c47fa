"""How relevant the context a retrieval-augmented model retrieved is to each query (the RAG paper's
Table 4 and Figure 1), measured from what the model reports in its outputs' details.

A model that retrieves (``rag``) returns :class:`alm_bench.protocol.Generated` texts whose details
hold ``{"retrieval": {"retrieved": [{"id", "caption", "labels", "score", "audio_similarity"}, ...]}}``.
Per item:

- ``retrieval audio similarity``: the mean similarity of the retrieved clips to the query clip, in
  the model's audio encoder (the model computes it: only it has the vectors);
- ``retrieval text similarity``: the mean cosine of the retrieved captions to the item's reference
  captions under the run's text encoder (``--text-encoder``; recorded in the results);
- ``retrieved same kinds``: the fraction of retrieved pairs whose sound kinds (labels) are exactly the
  query's, where both have labels (the synthetic suite: ground truth is known).

Each is the mean of its per-item values over the items that have one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..data import Item
from ..uncertainty import ratio
from .base import Metric

AUDIO, TEXT, KIND = "retrieval audio similarity", "retrieval text similarity", "retrieved same kinds"
METRICS = (Metric(AUDIO), Metric(TEXT), Metric(KIND))


def retrieved(details: dict | None) -> list[dict] | None:
    """The retrieved entries an output's details list, or None when nothing was retrieved."""
    found = (details or {}).get("retrieval", {}).get("retrieved")
    return found if isinstance(found, list) else None


def item_relevance(item: Item, entries: list[dict], encode_texts: Callable[[list[str]], np.ndarray]) -> dict:
    """The three per-item values (None where one cannot be measured)."""
    if not entries:
        return {AUDIO: None, TEXT: None, KIND: None}
    audio = [e["audio_similarity"] for e in entries if e.get("audio_similarity") is not None]
    captions = [e["caption"] for e in entries if e.get("caption")]
    text = None
    if captions and item.captions:
        vectors = encode_texts(captions + list(item.captions))
        text = float((vectors[: len(captions)] @ vectors[len(captions):].T).mean())
    labelled = [set(e.get("labels") or ()) for e in entries if e.get("labels")]
    kind = float(np.mean([labels == set(item.labels) for labels in labelled])) if labelled and item.labels else None
    return {AUDIO: float(np.mean(audio)) if audio else None, TEXT: text, KIND: kind}


def corpus_relevance(per_item: list[dict | None]) -> dict[str, float]:
    """Each metric's mean over the items that have a value; metrics no item has are left out."""
    out = {}
    for name, values in _columns(per_item).items():
        out[name] = float(ratio(np.ones((1, len(values[0]))), values[0], values[1])[0])
    return out


def relevance_statistic(per_item: list[dict | None], index: np.ndarray) -> Callable[[np.ndarray], dict]:
    """The same means under resampling weights ``[b, units]`` (for the bootstrap intervals)."""
    columns = _columns(per_item)
    return lambda weights: {name: ratio(weights[:, index], num, den) for name, (num, den) in columns.items()}


def _columns(per_item: list[dict | None]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    columns = {}
    for name in (AUDIO, TEXT, KIND):
        values = [(row or {}).get(name) for row in per_item]
        if any(v is not None for v in values):
            present = np.array([v is not None for v in values], dtype=np.float64)
            columns[name] = (np.array([v if v is not None else 0.0 for v in values], dtype=np.float64), present)
    return columns
