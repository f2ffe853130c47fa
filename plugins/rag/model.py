"""The ``rag`` model: any suite model, captioning with audio-caption pairs retrieved from a KB.

``generate`` retrieves ``k`` pairs for each single-clip request (``retrieval``), puts them in the
base model's context (``context``) and returns the base model's text, with what was retrieved in the
output's details (:class:`alm_bench.protocol.Generated`: cached with the text, copied into the item
records).  Requests with several clips (few-shot, two-clip questions) and every other capability go to
the base model unchanged; a reference base (``oracle``, ``chance``) gets the ground truth of each
request, moved onto the augmented request.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from alm_bench.answer_key import AnswerKey
from alm_bench.audio import decode
from alm_bench.calls import content_key
from alm_bench.errors import UsageError
from alm_bench.protocol import (AudioFormat, Capabilities, Clip, GenerateRequest, Generated, GenerationConfig,
                                Model, RunEnvironment)

from .context import INSTRUCTION, INTRO, TEMPLATE, Layout
from .encoders import Encoders
from .index import PairIndex, load_or_build
from .kb import KnowledgeBase, load_kb
from .retrieval import CROSS_MODAL, MODES, TEXT_QUERY, Hit, query_rows, search

NO_ANSWERS = AnswerKey()


def _parse_base_args(text: str) -> dict:
    """``base_args=a=1;b=2``: the base model's arguments, ``;`` between them (``,`` separates ours)."""
    from alm_bench.cli import parse_model_args

    return parse_model_args(str(text or "").replace(";", ","), "rag base_args")


def _check(value: Any, ok: bool, what: str) -> Any:
    if not ok:
        raise UsageError(f"rag: {what}, not {value!r}")
    return value


class RagModel(Model):
    """A base model with retrieved audio-caption pairs in its context (pair-to-pair retrieval)."""

    name = "rag"
    # the class declares generate; an instance offers its base model's capabilities as well
    capabilities = Capabilities(generate=True)
    description = ("retrieval-augmented captioning around any model: base=MODEL,kb=SOURCE,retrieval=MODE,k=4,w=0.5 "
                   "(see plugins/rag/README.md)")
    audio_format = AudioFormat(sample_rate=16_000)

    def __init__(self, base: str = "pengi-tiny", base_args: str = "", kb: str = "synth-caption:train",
                 retrieval: str = "generative-pair-to-pair", k: int = 4, w: float = 0.5,
                 audio_encoder: str = "clap-tiny", text_encoder: str = "clap-tiny", kb_limit: int | None = None,
                 intro: str = INTRO, instruction: str = INSTRUCTION, template: str = TEMPLATE) -> None:
        from alm_bench.plugins import default_registry

        self.mode = _check(retrieval, retrieval in MODES, f"retrieval must be one of {', '.join(MODES)}")
        self.k = _check(k, isinstance(k, int) and not isinstance(k, bool) and k >= 1, "k must be a positive integer")
        self.w = float(_check(w, isinstance(w, (int, float)) and not isinstance(w, bool) and 0 <= w <= 1,
                              "w must be a number from 0 to 1"))
        self.kb_limit = _check(kb_limit, kb_limit is None or (isinstance(kb_limit, int) and kb_limit >= 1),
                               "kb_limit must be a positive integer")
        self.kb_source = _check(kb, isinstance(kb, str) and bool(kb.strip()), "kb must name a source (TASK:SPLIT, "
                                                                                 "a folder or a CSV file)")
        registry = default_registry()
        self.base_name, self.base_args = str(base), _parse_base_args(base_args)
        if self.base_name == self.name:
            raise UsageError("rag: base=rag would wrap itself; name another model as base")
        self.base = registry.load_model(self.base_name, self.base_args)
        if not self.base.capabilities.generate or not self.base.needs_audio:
            raise UsageError(f"rag: base={self.base_name} must generate text from audio; name such a model")
        self.encoders = Encoders.load(registry, str(audio_encoder), str(text_encoder))
        if self.mode in CROSS_MODAL and not self.encoders.shared:
            raise UsageError(f"rag: retrieval={self.mode} compares audio with captions, so audio_encoder and "
                             f"text_encoder must be one model with a shared audio-text space (e.g. clap-tiny)")
        self.capabilities = dataclasses.replace(self.base.capabilities, generate=True)
        self.audio_format = self.base.audio_format
        self.layout = Layout(self.base.capabilities.interleaved, intro, instruction, template)
        self.device = "cpu"
        self.kb: KnowledgeBase | None = None
        self.index: PairIndex | None = None

    # -- setup -------------------------------------------------------------------------------
    def to(self, device: str) -> "RagModel":
        self.base = self.base.to(device)
        self.encoders.to(device)
        self.device = device
        return self

    def attach(self, environment: RunEnvironment) -> None:
        """Load the KB and its index (built once, then loaded from ``CACHE_DIR/rag``; built in memory
        and kept nowhere under ``--no-cache``)."""
        self.base.attach(environment)
        self.kb = load_kb(self.kb_source, environment, self.kb_limit)
        self.index = load_or_build(self.kb, self.encoders, environment.cache_dir if environment.use_cache else None)

    def _ready(self) -> None:
        if self.index is None:  # used outside a run (validate-model, serve): the default cache
            from alm_bench.plugins import default_registry
            from alm_bench.runner import default_cache_dir

            self.attach(RunEnvironment(default_cache_dir(), None, default_registry(), self.device))

    def config(self) -> dict[str, Any]:
        self._ready()
        base_config = self.base.config()
        own = base_config.get("text_encoder")  # embed_text is the base model's: name its encoder
        return {"base": self.base_name, "base_args": self.base_args, "base_config": base_config,
                "text_encoder": f"{self.base_name}: {own}" if isinstance(own, str) and own else f"{self.base_name}'s own",
                "kb": self.kb_source, "kb_hash": self.kb.content_hash, "kb_pairs": len(self.kb.entries),
                "kb_limit": self.kb_limit, "retrieval": self.mode, "k": self.k,
                "w": self.w if self.mode in TEXT_QUERY else None,  # unused otherwise: outputs stay shared
                "encoders": self.encoders.describe(), "context": self.layout.describe()}

    def generation_settings(self, config: GenerationConfig) -> dict[str, Any]:
        return self.base.generation_settings(config)

    # -- generate ----------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest], config: GenerationConfig, answers: AnswerKey = NO_ANSWERS):
        self._ready()
        extra = {"answers": answers} if self.capabilities.reference else {}
        single = [i for i, r in enumerate(requests) if len(r.clips) == 1]
        augmented, details = self.augment([requests[i] for i in single], config, extra)
        final = list(requests)
        for i, request in zip(single, augmented):
            final[i] = request
        if self.capabilities.reference:
            extra = {"answers": _moved(answers, requests, final)}
        outputs = self.base.generate(final, config, **extra)
        for i, found in zip(single, details):
            outputs[i] = Generated(outputs[i], {"retrieval": found})
        return outputs

    def augment(self, requests: list[GenerateRequest], config: GenerationConfig,
                extra: dict | None = None) -> tuple[list[GenerateRequest], list[dict]]:
        """Each single-clip request with its retrieved pairs in context, and what was retrieved."""
        self._ready()
        if not requests:
            return [], []
        texts = self._text_queries(requests, config, extra or {})
        hits = self.retrieve([r.clip for r in requests], texts)
        augmented = [self.layout.request(r.clip, r.prompt, self._pairs(found)) for r, found in zip(requests, hits)]
        return augmented, [self._describe(found, text) for found, text in zip(hits, texts or [None] * len(hits))]

    def retrieve(self, clips: list[Clip], texts: list[str] | None) -> list[list[Hit]]:
        audio = self.encoders.embed_waveforms([c.waveform for c in clips], self.audio_format.sample_rate)
        text = self.encoders.embed_texts(texts) if texts is not None else None
        text_dim = self.index.index.d - self.index.audio_dim
        queries = query_rows(self.mode, audio, text, self.w, text_dim)
        return search(self.index, self.kb, queries, audio, text, [c.sha for c in clips], self.k)

    def _text_queries(self, requests, config, extra) -> list[str] | None:
        if self.mode == "generative-pair-to-pair":  # the base model's own caption: T_q = f(A_q)
            return [str(t) for t in self.base.generate(requests, config, **extra)]
        if self.mode == "pair-to-pair":  # the request's own text (e.g. a question) is the text query
            return [r.prompt for r in requests]
        return None

    def _pairs(self, hits: list[Hit]) -> list[tuple[Clip | None, str]]:
        """(clip, caption) of each hit; clips are decoded only for the interleaved layout."""
        entries = [self.kb.entries[h.entry] for h in hits]
        if not self.layout.interleaved:
            return [(None, e.caption) for e in entries]
        return [(Clip(decode(e.audio, self.audio_format), e.sha), e.caption) for e in entries]

    def _describe(self, hits: list[Hit], text: str | None) -> dict:
        entries = []
        for h in hits:
            e = self.kb.entries[h.entry]
            entries.append({"id": e.id, "caption": e.caption, "labels": list(e.labels), "score": round(h.score, 6),
                            "audio_similarity": round(h.audio_similarity, 6),
                            "text_similarity": None if h.text_similarity is None else round(h.text_similarity, 6)})
        return {"mode": self.mode, "text_query": text, "retrieved": entries}

    # -- every other capability: the base model's -------------------------------------------
    def _extra(self, answers: AnswerKey) -> dict:
        return {"answers": answers} if self.capabilities.reference else {}

    def score(self, requests, answers: AnswerKey = NO_ANSWERS):
        return self.base.score(requests, **self._extra(answers))

    def embed(self, clips, answers: AnswerKey = NO_ANSWERS):
        return self.base.embed(clips, **self._extra(answers))

    def embed_text(self, texts, answers: AnswerKey = NO_ANSWERS):
        return self.base.embed_text(texts, **self._extra(answers))


def _moved(answers: AnswerKey, before: Sequence[GenerateRequest], after: Sequence[GenerateRequest]) -> AnswerKey:
    """The answer of each original request, keyed by the request the base model really receives."""
    moved = {}
    for old, new in zip(before, after):
        answer = answers.get("generate", old)
        if answer is not None:
            moved[content_key("generate", new)] = answer
    return AnswerKey(moved)
