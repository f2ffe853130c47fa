"""RPG re-ranking of generative text-to-audio retrieval (the RPG paper; its code: ``KuangzhiGe/RPenGi``).

For each text query, the ``candidates`` clips whose generated captions are most similar to it go to a
chat LLM judge with the paper's question; a clip is kept, in its similarity order, when the answer
says YES.  Two recalls come of the kept list:

- ``t2a_rerank_R@k``: as the paper's code computes it, the kept list padded with misses (a query
  whose judge kept nothing retrieves nothing);
- ``t2a_rerank_filled_R@k``: the kept list followed by the rest of the similarity ranking, so a
  rejection demotes a clip instead of dropping it.

``rerank_yes_fraction`` is the share of judged pairs answered YES (the paper prints the kept clips
per query: this times ``candidates``).  Answers are cached like model outputs, through the executor.
"""

from __future__ import annotations

import numpy as np

from ..calls import Call, cache_key
from ..judge import MAX_NEW_TOKENS, TEMPERATURE, answers_key, load_judge, question, says_yes
from ..protocol import GenerateRequest, GenerationConfig
from ..uncertainty import ratio
from .base import EvalContext, Metric

KS = (1, 5, 10)
_PAPER = "kept list padded with misses to the candidate count, as the RPG paper's code computes it"
_FILLED = "kept list, then the rest of the similarity ranking (rejected clips demoted, not dropped)"
#: metric name -> what it is (written into the results' details)
DEFINITIONS = {**{f"t2a_rerank_R@{k}": f"R@{k} after LLM re-ranking: {_PAPER}" for k in KS},
               **{f"t2a_rerank_filled_R@{k}": f"R@{k} after LLM re-ranking: {_FILLED}" for k in KS},
               "rerank_yes_fraction": "share of judged (query, candidate) pairs the judge answered YES"}
METRICS = (tuple(Metric(f"t2a_rerank_R@{k}") for k in KS) + tuple(Metric(f"t2a_rerank_filled_R@{k}") for k in KS)
           + (Metric("rerank_yes_fraction", best=None),))
BATCH = 256  # questions judged (and cached) together: a killed run loses at most one batch


def ranking(text_vs_audio: np.ndarray) -> np.ndarray:
    """Each query's clips by falling similarity (ties in clip order; failed clips last)."""
    return np.argsort(-np.nan_to_num(text_vs_audio, nan=-np.inf), axis=1, kind="stable")


def per_query(order: np.ndarray, yes: np.ndarray, owners: list[set[int]], captioned: list[bool]) -> dict[str, np.ndarray]:
    """Per query: both re-ranked R@k (0/1), its YES count and its judged pairs, from the similarity
    ranking ``order`` [queries, clips] and the judge's answers ``yes`` [queries, candidates] on its
    first columns (``captioned``: which clips have a caption to judge)."""
    candidates = yes.shape[1]
    out = {name: np.zeros(len(order)) for name in DEFINITIONS if name != "rerank_yes_fraction"}
    for q, (row, answers, relevant) in enumerate(zip(order, yes, owners)):
        kept = [int(c) for c, ok in zip(row[:candidates], answers) if ok]
        filled = kept + [int(c) for c in row if int(c) not in kept]
        for k in KS:
            out[f"t2a_rerank_R@{k}"][q] = float(any(c in relevant for c in kept[:k]))
            out[f"t2a_rerank_filled_R@{k}"][q] = float(any(c in relevant for c in filled[:k]))
    out["yes"] = yes.sum(axis=1).astype(float)
    out["judged"] = np.array([sum(captioned[int(c)] for c in row[:candidates]) for row in order], dtype=float)
    return out


def metrics(sums: dict[str, np.ndarray], weights: np.ndarray, queries: np.ndarray) -> dict[str, np.ndarray]:
    """The re-ranking metrics under unit ``weights`` [b, units], from per-unit sums (per query, or
    per clip over the queries it owns) and the queries of each unit."""
    out = {name: ratio(weights, sums[name], queries) for name in DEFINITIONS if name in sums}
    out["rerank_yes_fraction"] = ratio(weights, sums["yes"], sums["judged"])
    return out


def judge_candidates(ctx: EvalContext, queries: list[str], generated: list[str | None],
                     order: np.ndarray) -> np.ndarray:
    """The judge's YES/NO [queries, candidates] on each query's top candidates; a clip whose caption
    failed is never judged and counts as NO."""
    candidates = min(int(ctx.options["candidates"]), order.shape[1])
    pairs = [(q, c) for q in range(len(queries)) for c in order[q, :candidates] if generated[c] is not None]
    texts = [question(generated[c], queries[q]) for q, c in pairs]
    answers = _answers(ctx, str(ctx.options["judge"]), texts)
    yes = np.zeros((len(queries), candidates), dtype=bool)
    position = {(q, int(c)): j for q in range(len(queries)) for j, c in enumerate(order[q, :candidates])}
    for (q, c), text in zip(pairs, texts):
        yes[q, position[(q, int(c))]] = says_yes(answers[text])
    return yes


def _answers(ctx: EvalContext, judge: str, texts: list[str]) -> dict[str, str]:
    """Each distinct question's answer: from the output cache, else from the judge (loaded only then;
    its answers cached), keyed as a text-only generate call of the judge."""
    owner, generation = answers_key(judge), GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, temperature=TEMPERATURE)
    keys = {t: cache_key(owner, Call("generate", GenerateRequest((t,))), generation) for t in dict.fromkeys(texts)}
    cached = ctx.executor.recall(list(keys.values()))
    answers = {t: cached[k] for t, k in keys.items() if k in cached}
    missing = [t for t in keys if t not in answers]
    advance = ctx.progress("re-ranking", len(missing))
    for start in range(0, len(missing), BATCH):
        chunk = missing[start : start + BATCH]
        fresh = dict(zip(chunk, load_judge(judge).answer(chunk)))
        ctx.executor.remember({keys[t]: a for t, a in fresh.items()})
        answers.update(fresh)
        advance(len(chunk))
    return answers
