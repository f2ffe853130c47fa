"""Runs planned calls through a model: cache first, then batches with audio decoded in parallel.

:class:`Executor` is the one interface the runner and the evaluators use to get model outputs;
:class:`LocalExecutor` runs calls in this process and :class:`alm_bench.distributed.DistributedExecutor`
shards them over torch.distributed ranks.  The cache wraps the model (as lm-evaluation-harness's CachingLM does): a call whose key is cached
never reaches the model nor decodes its audio.  Misses are batched; while the model works on one
batch, worker threads decode and resample the next ones.  A clip that cannot be decoded, or an item
on which the model raises, fails alone with its reason; a protocol violation stops the run.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from .answer_key import Answer, AnswerKey
from .audio import decode
from .cache import OutputCache
from .calls import Call, cache_key, clip_refs, content_key, materialize
from .errors import ItemError, ModelOutputError
from .protocol import AudioFormat, Clip, GenerationConfig
from .validation import ValidatedModel


@dataclass(frozen=True)
class Outcome:
    value: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class Stats:
    """Where the time went; the harness-overhead benchmark reads these."""

    model_seconds: float = 0.0
    decode_seconds: float = 0.0
    model_calls: int = 0
    cache_hits: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_decode(self, seconds: float) -> None:  # called from worker threads
        with self._lock:
            self.decode_seconds += seconds


Advance = Callable[[int], None]


class Executor(Protocol):
    """Model outputs for planned calls, and a store for values derived from them.

    ``run`` returns one :class:`Outcome` per call, in order, and tells ``advance`` how many calls
    finished; ``recall``/``remember`` keep derived values (scores of probes, caption metrics, text
    encodings) under keys the caller makes, so a repeated run recomputes nothing."""

    stats: Stats

    def run(self, calls: list[Call], advance: Advance = ...) -> list[Outcome]: ...

    def recall(self, keys: list[str]) -> dict[str, Any]: ...

    def remember(self, values: dict[str, Any]) -> None: ...


@dataclass
class _Batch:
    kind: str
    keys: list[str]
    calls: list[Call]
    decoded: Future | None = None


@dataclass
class LocalExecutor:
    model: ValidatedModel
    model_key: str
    audio_format: AudioFormat
    cache: OutputCache
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    batch_size: int = 8
    workers: int = 2
    stats: Stats = field(default_factory=Stats)
    #: False: no audio file is read; clips reach the model with no samples (see Model.needs_audio)
    needs_audio: bool = True

    def run(self, calls: list[Call], advance: Callable[[int], None] = lambda n: None) -> list[Outcome]:
        """Every call's outcome, in order; ``advance`` is told how many calls finished (hits included),
        for the caller's progress bar."""
        keys = [cache_key(self.model_key, call, self.generation) for call in calls]
        results: dict[str, Outcome] = {k: Outcome(v) for k, v in self.cache.get_many(keys).items()}
        self.stats.cache_hits += sum(1 for k in keys if k in results)
        pending = {k: c for k, c in zip(keys, calls) if k not in results}
        advance(len(calls) - len(pending))
        for batch in self._decoded_batches(pending):
            results.update(self._run_batch(batch))
            advance(len(batch.calls))
        return [results[k] for k in keys]

    def recall(self, keys: list[str]) -> dict[str, Any]:
        return self.cache.get_many(keys)

    def remember(self, values: dict[str, Any]) -> None:
        self.cache.put_many(values)

    # -- batching and parallel decoding -------------------------------------------------------
    def _plan(self, pending: dict[str, Call]) -> list[_Batch]:
        by_kind: dict[str, list[tuple[str, Call]]] = {}
        for key, call in pending.items():
            by_kind.setdefault(call.kind, []).append((key, call))
        batches = []
        for kind, entries in by_kind.items():
            for start in range(0, len(entries), self.batch_size):
                chunk = entries[start : start + self.batch_size]
                batches.append(_Batch(kind, [k for k, _ in chunk], [c for _, c in chunk]))
        return batches

    def _decoded_batches(self, pending: dict[str, Call]) -> Iterator[_Batch]:
        batches = self._plan(pending)
        lookahead = max(2, self.workers)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="alm-bench-decode") as pool:
            for i, batch in enumerate(batches):
                for ahead in batches[i : i + lookahead + 1]:
                    if ahead.decoded is None:
                        ahead.decoded = pool.submit(self._decode_batch, ahead)
                yield batch
                batch.decoded = None  # free the audio

    def _decode_batch(self, batch: _Batch) -> dict[str, Clip | str]:
        start = time.perf_counter()
        clips: dict[str, Clip | str] = {}
        for call in batch.calls:
            for ref in clip_refs(call.kind, call.request):
                if ref.sha in clips:
                    continue
                if not self.needs_audio:
                    clips[ref.sha] = Clip(np.zeros(0, np.float32), ref.sha)
                    continue
                try:
                    clips[ref.sha] = Clip(decode(ref.path, self.audio_format), ref.sha)
                except ItemError as exc:
                    clips[ref.sha] = str(exc)
        self.stats.add_decode(time.perf_counter() - start)
        return clips

    # -- model calls ------------------------------------------------------------------------
    def _run_batch(self, batch: _Batch) -> dict[str, Outcome]:
        clips = batch.decoded.result()
        results: dict[str, Outcome] = {}
        ready: list[tuple[str, Any]] = []
        answers: dict[str, Answer] = {}
        for key, call in zip(batch.keys, batch.calls):
            errors = [clips[r.sha] for r in clip_refs(call.kind, call.request) if isinstance(clips[r.sha], str)]
            if errors:
                results[key] = Outcome(error=errors[0])
                continue
            ready.append((key, materialize(call.kind, call.request, clips)))
            if call.ideal is not None:
                answers[content_key(call.kind, call.request)] = Answer(call.ideal, tuple(call.choices))
        results.update(self._call_model(batch.kind, ready, AnswerKey(answers)))
        self.stats.failed += sum(1 for o in results.values() if not o.ok)
        return results

    def _call_model(self, kind: str, ready: list[tuple[str, Any]], answers: AnswerKey) -> dict[str, Outcome]:
        if not ready:
            return {}
        try:
            values = self._timed_invoke(kind, [r for _, r in ready], answers)
        except ModelOutputError:
            raise
        except Exception as exc:  # isolate the failing item(s): retry one by one
            if len(ready) > 1:
                results: dict[str, Outcome] = {}
                for entry in ready:
                    results.update(self._call_model(kind, [entry], answers))
                return results
            return {ready[0][0]: Outcome(error=f"model {kind}() raised {type(exc).__name__}: {exc}")}
        produced = {key: value for (key, _), value in zip(ready, values)}
        self.cache.put_many(produced)
        return {key: Outcome(value) for key, value in produced.items()}

    def _timed_invoke(self, kind: str, requests: list, answers: AnswerKey) -> list:
        start = time.perf_counter()
        try:
            return self._invoke(kind, requests, answers)
        finally:
            self.stats.model_seconds += time.perf_counter() - start
            self.stats.model_calls += 1

    def _invoke(self, kind: str, requests: list, answers: AnswerKey) -> list:
        # the ground truth goes to reference models only; a real model never receives it
        extra = {"answers": answers} if self.model.capabilities.reference else {}
        if kind == "generate":
            return self.model.generate(requests, self.generation, **extra)
        if kind == "score":
            return self.model.score(requests, **extra)
        if kind == "embed":
            return list(self.model.embed(requests, **extra))
        return list(self.model.embed_text(requests, **extra))
