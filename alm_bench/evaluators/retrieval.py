"""Text-to-audio and audio-to-text retrieval: R@1/5/10 and mAP@10.

Relevance is by caption text: a caption relevant to several clips (identical references) counts
for each, so duplicate references never make a perfect system look imperfect.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..calls import Call
from ..protocol import GenerateRequest
from ..uncertainty import random_ranking_ap, random_recall_at_k, ratio
from . import rerank
from .base import EvalContext, Method, MethodResult, Metric, cosine, count_failed, record_units

_MEASURES = ("R@1", "R@5", "R@10", "mAP@10")


def _caption_index(items) -> tuple[list[str], list[set[int]]]:
    """Unique reference captions and, for each, the indices of the clips it describes."""
    owners: dict[str, set[int]] = {}
    for i, item in enumerate(items):
        for caption in item.captions:
            owners.setdefault(caption, set()).add(i)
    texts = sorted(owners)
    return texts, [owners[t] for t in texts]


def _both_directions(text_vs_audio: np.ndarray, owners: list[set[int]], n_audio: int) -> dict[str, np.ndarray]:
    """Per-query values: ``t2a_*`` per caption, ``a2t_*`` per clip."""
    t2a = metrics.retrieval_per_query(text_vs_audio, owners)  # failed clips: NaN columns, ranked last
    relevant_texts = [{t for t, o in enumerate(owners) if a in o} for a in range(n_audio)]
    audio_vs_text = text_vs_audio.T.copy()
    for a in np.flatnonzero(np.isnan(audio_vs_text).all(axis=1)):  # a failed clip retrieves nothing right
        audio_vs_text[a] = 0.0
        audio_vs_text[a, list(relevant_texts[a])] = -1.0
    a2t = metrics.retrieval_per_query(audio_vs_text, relevant_texts)
    return {**{f"t2a_{k}": v for k, v in t2a.items()}, **{f"a2t_{k}": v for k, v in a2t.items()}}


def _records(items, outputs, errors, text_vs_audio, prompt, owners, per_query, reranked=None) -> list[dict]:
    """Per clip: the rank (1-based) of its best reference caption among all captions, its own a2t
    values and the summed t2a values of the captions it is the first owner of (for intervals); with
    re-ranking, those captions' summed re-ranked values and YES counts too."""
    records = []
    order = np.argsort(-np.nan_to_num(text_vs_audio.T, nan=-np.inf), axis=1, kind="stable")
    owned: dict[int, list[int]] = {}
    for t, owner in enumerate(owners):
        owned.setdefault(min(owner), []).append(t)
    for a, item in enumerate(items):
        mine = owned.get(a, [])
        records.append({"id": item.id, "prompt": prompt, "output": outputs[a], "target": list(item.captions),
                        "correct": None, "error": errors[a], "a2t_top1": int(order[a, 0]),
                        "a2t": {m: float(per_query[f"a2t_{m}"][a]) for m in _MEASURES},
                        "t2a": {m: float(per_query[f"t2a_{m}"][mine].sum()) for m in _MEASURES},
                        "t2a_queries": len(mine)})
        if reranked is not None:
            records[-1]["t2a_rerank"] = {name: float(reranked[name][mine].sum()) for name in reranked}
    return records


def _result(items, outputs, errors, text_vs_audio, prompt, owners, n_failed, reranked=None) -> MethodResult:
    per_query = _both_directions(text_vs_audio, owners, len(items))
    records = _records(items, outputs, errors, text_vs_audio, prompt, owners, per_query, reranked)
    result = MethodResult({k: float(v.mean()) for k, v in per_query.items()}, records, len(items), n_failed)
    if reranked is not None:
        result.metrics.update({name: float(v[0]) for name, v in rerank.metrics(reranked, np.ones((1, len(owners))),
                                                                              np.ones(len(owners))).items()})
    return result


def _chance(direction: str, measure: str):
    """A random ranking's expected value, averaged over the queries of one direction."""
    def chance(ctx: EvalContext) -> float:
        items = ctx.test_items
        _, owners = _caption_index(items)
        if direction == "t2a":
            relevant, documents = [len(o) for o in owners], len(items)
        else:
            relevant = [sum(1 for o in owners if a in o) for a in range(len(items))]
            documents = len(owners)
        if measure == "mAP@10":
            return float(np.mean([random_ranking_ap(r, documents, depth=10) for r in relevant]))
        k = int(measure[2:])
        return float(np.mean([random_recall_at_k(r, documents, k) for r in relevant]))
    return chance


class _Retrieval(Method):
    task_types = ("retrieval",)
    metrics = tuple(Metric(f"{d}_{m}", chance=_chance(d, m), headline=(d, m) == ("t2a", "R@1"))
                    for d in ("t2a", "a2t") for m in _MEASURES)

    def statistic(self, records, details):
        index = record_units(self, records)
        a2t = {m: np.array([r["a2t"][m] for r in records]) for m in _MEASURES}
        t2a = {m: np.array([r["t2a"][m] for r in records]) for m in _MEASURES}
        queries = np.array([r["t2a_queries"] for r in records], dtype=np.float64)
        reranked = {k: np.array([r["t2a_rerank"][k] for r in records]) for k in records[0].get("t2a_rerank", {})}

        def statistic(weights):
            w = weights[:, index]
            out = {f"a2t_{m}": ratio(w, values) for m, values in a2t.items()}
            out.update({f"t2a_{m}": ratio(w, values, queries) for m, values in t2a.items()})
            if reranked:
                out.update(rerank.metrics(reranked, w, queries))
            return out
        return statistic


class GenerativeRetrieval(_Retrieval):
    """Pengi's way: caption every clip, then match queries to the captions with a text encoder."""

    name = "retrieval"
    title = "Retrieval: generative"
    needs = ("generate",)
    needs_prompt = True
    uses_text_encoder = True
    #: rerank=llm: the RPG paper's re-ranking of each query's top ``candidates`` clips by a chat LLM ``judge``
    options = {"rerank": "none", "judge": "smollm2", "candidates": 20}
    description = "index clips by generated captions; match queries with a text encoder (optionally LLM re-ranked)"
    metrics = _Retrieval.metrics + rerank.METRICS

    def produces(self, spec, options):
        reranks = self.with_defaults(options)["rerank"] == "llm"
        return tuple(m.name for m in self.metrics if reranks or m not in rerank.METRICS)

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        if ctx.options["rerank"] not in ("none", "llm"):
            raise ValueError(f"rerank={ctx.options['rerank']!r}: choose none or llm")
        if ctx.options["candidates"] < 1:
            raise ValueError(f"candidates={ctx.options['candidates']}: re-rank at least 1 candidate per query")
        items = ctx.test_items
        texts, owners = _caption_index(items)
        calls = [Call("generate", GenerateRequest.single(ctx.ref(item.audio[0]), ctx.prompt),
                      ideal=item.captions[0], choices=tuple(texts)) for item in items]
        outcomes = ctx.run(calls, "captioning")
        generated = [o.value if o.ok else None for o in outcomes]
        ok = [i for i, g in enumerate(generated) if g is not None]
        text_vs_audio = np.full((len(texts), len(items)), np.nan)
        if ok:
            encoded = ctx.encode_texts(texts + [generated[i] for i in ok])
            text_vs_audio[:, ok] = encoded[: len(texts)] @ encoded[len(texts):].T
        reranked = self._rerank(ctx, texts, generated, text_vs_audio, owners) if ctx.options["rerank"] == "llm" else None
        result = _result(items, generated, [o.error for o in outcomes], text_vs_audio, ctx.prompt, owners,
                         count_failed(outcomes), reranked)
        if reranked is not None:
            result.details["rerank"] = {"judge": ctx.options["judge"], "candidates": ctx.options["candidates"],
                                        "metrics": rerank.DEFINITIONS}
        return result

    @staticmethod
    def _rerank(ctx, texts, generated, text_vs_audio, owners) -> dict[str, np.ndarray]:
        """Per-query re-ranked values (see :mod:`.rerank`) of the judge's answers on the top candidates."""
        order = rerank.ranking(text_vs_audio)
        yes = rerank.judge_candidates(ctx, texts, generated, order)
        return rerank.per_query(order, yes, owners, [g is not None for g in generated])


class EmbeddingRetrieval(_Retrieval):
    """Contrastive-style: audio and text embedded into the model's shared space."""

    name = "retrieval_embedding"
    title = "Retrieval: embeddings"
    needs = ("embed", "shared_space")
    description = "cosine between audio embeddings and the model's own text embeddings"

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        items = ctx.test_items
        texts, owners = _caption_index(items)
        audio = ctx.run([Call("embed", ctx.ref(item.audio[0]), ideal=ctx.clip_texts(item)) for item in items],
                        "embedding audio")
        text = ctx.run([Call("embed_text", t) for t in texts], "embedding text")
        text_vs_audio = cosine([o.value if o.ok else None for o in text],
                               [o.value if o.ok else None for o in audio])
        errors = [o.error for o in audio]
        return _result(items, [None] * len(items), errors, text_vs_audio, "", owners, count_failed(audio))

