"""Open-ended generation: captioning, question answering and two-clip reasoning."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import metrics
from ..calls import Call
from ..java import ensure_java
from ..protocol import GenerateRequest, details_of
from ..uncertainty import ratio
from . import relevance
from .base import EvalContext, Method, MethodResult, Metric, count_failed, record_units

#: metrics whose corpus value is the mean of the per-item values (CIDEr-D with document frequencies
#: of the whole test set)
_ITEM_MEANS = ("ROUGE-L", "CIDEr-D", "SPICE", "SPIDEr")


class Captioning(Method):
    name = "captioning"
    title = "Captioning"
    task_types = ("captioning",)
    metrics = (*(Metric(f"BLEU-{n}") for n in range(1, 5)), Metric("METEOR"), Metric("ROUGE-L"),
               Metric("CIDEr-D", best=None), Metric("SPICE"), Metric("SPIDEr", best=None, headline=True),
               *relevance.METRICS)
    needs = ("generate",)
    needs_prompt = True
    description = "BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE, SPIDEr as pycocoevalcap computes them"

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        items = ctx.test_items
        pool = tuple(sorted({caption for item in items for caption in item.captions}))
        calls = [Call("generate", GenerateRequest.single(ctx.ref(item.audio[0]), ctx.prompt),
                      ideal=item.captions[0], choices=pool) for item in items]
        outcomes = ctx.run(calls, "captioning")
        # a failed item is scored as an empty caption: it counts, and scores nothing
        predictions = {item.id: (str(o.value) if o.ok else "") for item, o in zip(items, outcomes)}
        references = {item.id: list(item.captions) for item in items}
        # whether Java is there is part of the key: scores computed without it are recomputed once it is
        scores = ctx.memo("captioning", [predictions, references, metrics.java_unavailable_reason()],
                          lambda: metrics.caption_metrics(predictions, references),
                          encode=dataclasses.asdict, decode=lambda d: metrics.CaptionScores(**d))
        records = [
            {"id": item.id, "prompt": ctx.prompt, "output": str(o.value) if o.ok else None,
             "target": list(item.captions), "correct": None, "error": o.error,
             "CIDEr-D": scores.per_item.get(item.id, {}).get("CIDEr-D"),
             "scores": scores.per_item.get(item.id, {}), "bleu_stats": scores.bleu_stats.get(item.id)}
            for item, o in zip(items, outcomes)
        ]
        values, details = dict(scores.values), {"meteor_corpus": scores.values.get("METEOR"), "java": ensure_java()}
        if self._add_relevance(ctx, records, outcomes):
            values.update(relevance.corpus_relevance([r.get("retrieval") for r in records]))
            details["retrieval"] = "retrieved context reported by the model (see alm_bench.evaluators.relevance)"
        return MethodResult(values, records, len(items), count_failed(outcomes),
                            unavailable=dict(scores.unavailable), details=details)

    @staticmethod
    def _add_relevance(ctx: EvalContext, records: list[dict], outcomes) -> bool:
        """Copy each output's details (what a retrieval-augmented model retrieved) into its record,
        with the relevance of what was retrieved; False when no output reports a retrieval."""
        found = False
        for item, record, outcome in zip(ctx.test_items, records, outcomes):
            details = details_of(outcome.value) if outcome.ok else None
            if details is None:
                continue
            record["details"] = details
            entries = relevance.retrieved(details)
            if entries is not None:
                record["retrieval"] = relevance.item_relevance(item, entries, ctx.encode_texts)
                found = True
        return found

    def statistic(self, records, details):
        """BLEU from summed n-gram statistics; the per-item means as they are; METEOR, which the jar
        aggregates its own way, as the mean of its per-item scores moved onto the corpus value."""
        index = record_units(self, records)
        per_item = {name: np.array([r["scores"].get(name, np.nan) for r in records], dtype=np.float64)
                    for name in (*_ITEM_MEANS, "METEOR") if all(name in r.get("scores", {}) for r in records)}
        has_bleu = all(r.get("bleu_stats") for r in records)
        stats = np.array([r["bleu_stats"] for r in records], dtype=np.float64) if has_bleu else None
        meteor = details.get("meteor_corpus")
        retrieval = relevance.relevance_statistic([r.get("retrieval") for r in records], index)

        def statistic(weights):
            w = weights[:, index]
            out = {name: ratio(w, values) for name, values in per_item.items() if name != "METEOR"}
            out.update(retrieval(weights))
            if "METEOR" in per_item and meteor is not None:
                out["METEOR"] = ratio(w, per_item["METEOR"]) + (meteor - per_item["METEOR"].mean())
            if stats is not None:
                out.update(metrics.corpus_bleu(w @ stats))
            return out
        return statistic


def _answer_guess(ctx: EvalContext) -> float:
    """A uniform guess among the task's distinct answers."""
    return 1 / len({item.answer for item in ctx.test_items})


class QuestionAnswering(Method):
    """Exact match after normalisation (case, punctuation, articles, number words vs digits)."""

    name = "qa"
    title = "Question answering"
    task_types = ("qa",)
    metrics = (Metric("accuracy", chance=_answer_guess, headline=True),)
    needs = ("generate",)
    needs_prompt = True
    description = "answer the question in the prompt; exact match after normalisation"

    def request(self, ctx: EvalContext, item) -> GenerateRequest:
        return GenerateRequest.single(ctx.ref(item.audio[0]), ctx.prompt.format(question=item.question))

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        items = ctx.test_items
        answers = tuple(sorted({item.answer for item in items}))
        calls = [Call("generate", self.request(ctx, item), ideal=item.answer, choices=answers) for item in items]
        outcomes = ctx.run(calls, "answering")
        records = []
        for item, outcome, call in zip(items, outcomes, calls):
            output = str(outcome.value) if outcome.ok else None
            details = details_of(outcome.value) if outcome.ok else None
            records.append({"id": item.id, "prompt": call.request.prompt, "output": output, "target": item.answer,
                            "correct": metrics.answers_match(output, item.answer), "error": outcome.error,
                            **({"details": details} if details else {})})
        accuracy = sum(r["correct"] for r in records) / len(records)
        return MethodResult({"accuracy": accuracy}, records, len(items), count_failed(outcomes))

    def statistic(self, records, details):
        index = record_units(self, records)
        correct = np.array([bool(r["correct"]) for r in records], dtype=np.float64)
        return lambda w: {"accuracy": ratio(w[:, index], correct)}


class TwoClipReasoning(QuestionAnswering):
    """NLAR-style: both clips, then the question, in one interleaved request."""

    name = "two_clip"
    title = "Two-clip reasoning"
    task_types = ("two_clip",)
    needs = ("generate", "interleaved")
    description = "two clips and a question in one interleaved request; exact-match accuracy"

    def request(self, ctx: EvalContext, item) -> GenerateRequest:
        clips = tuple(ctx.ref(path) for path in item.audio)
        return GenerateRequest(clips + (ctx.prompt.format(question=item.question),))

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        result = super().evaluate(ctx)
        pairs = order_pairs(ctx.test_items, result.records)
        if pairs:
            result.details["order_pairs"] = len(pairs)
            result.details["order_flip_rate"] = sum(flipped for flipped in pairs) / len(pairs)
        return result


def order_pairs(items, records) -> list[bool]:
    """For items that are one pair of clips shown in both orders (``synth-order``): per pair whose two
    outputs both name one of the two answers, whether swapping the clips flipped the model's answer."""
    answers = sorted({item.answer for item in items})
    named: dict[int, list] = {}
    for item, record in zip(items, records):
        if "pair" not in item.meta:
            return []
        said = [a for a in answers if metrics.answers_match(record["output"], a)]
        named.setdefault(item.meta["pair"], []).append(said[0] if len(said) == 1 else None)
    return [a != b for a, b in (v for v in named.values() if len(v) == 2 and None not in v)]
