"""Open-ended generation: captioning, question answering and two-clip reasoning."""

from __future__ import annotations

import dataclasses

from .. import metrics
from ..calls import Call
from ..protocol import GenerateRequest
from .base import EvalContext, Method, MethodResult, count_failed


class Captioning(Method):
    name = "captioning"
    task_types = ("captioning",)
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
        predictions = {item.id: (o.value if o.ok else "") for item, o in zip(items, outcomes)}
        references = {item.id: list(item.captions) for item in items}
        scores = ctx.memo("captioning", [predictions, references],
                          lambda: metrics.caption_metrics(predictions, references),
                          encode=dataclasses.asdict, decode=lambda d: metrics.CaptionScores(**d))
        records = [
            {"id": item.id, "prompt": ctx.prompt, "output": o.value if o.ok else None,
             "target": list(item.captions), "correct": None, "error": o.error,
             "CIDEr-D": scores.per_item.get(item.id, {}).get("CIDEr-D")}
            for item, o in zip(items, outcomes)
        ]
        return MethodResult(dict(scores.values), records, len(items), count_failed(outcomes),
                            unavailable=dict(scores.unavailable))


class QuestionAnswering(Method):
    """Exact match after normalisation (case, punctuation, articles, number words vs digits)."""

    name = "qa"
    task_types = ("qa",)
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
            output = outcome.value if outcome.ok else None
            records.append({"id": item.id, "prompt": call.request.prompt, "output": output, "target": item.answer,
                            "correct": metrics.answers_match(output, item.answer), "error": outcome.error})
        accuracy = sum(r["correct"] for r in records) / len(records)
        return MethodResult({"accuracy": accuracy}, records, len(items), count_failed(outcomes))


class TwoClipReasoning(QuestionAnswering):
    """NLAR-style: both clips, then the question, in one interleaved request."""

    name = "two_clip"
    task_types = ("two_clip",)
    needs = ("generate", "interleaved")
    description = "two clips and a question in one interleaved request; exact-match accuracy"

    def request(self, ctx: EvalContext, item) -> GenerateRequest:
        clips = tuple(ctx.ref(path) for path in item.audio)
        return GenerateRequest(clips + (ctx.prompt.format(question=item.question),))
