"""Conformance checks for model plugins, like scikit-learn's ``check_estimator``.

``check_model(model)`` exercises every capability the model declares on a few synthetic clips
(batching, shapes, finite values, determinism, prompt handling, whether the outputs depend on the
audio at all) and returns one result per check;
each failure says what is wrong and how to fix it.  ``alm-bench validate-model NAME`` prints them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .audio import conform
from .errors import ModelOutputError
from .protocol import AudioFormat, Capabilities, Clip, GenerateRequest, GenerationConfig, Model, ScoreRequest
from .validation import ValidatedModel

GENERATION = GenerationConfig(num_beams=1, max_new_tokens=8)
PROMPTS = ("this is a sound of", "", "¿qué se oye? 🔊 " + "describe the sound " * 20)


class CheckFailed(Exception):
    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    problem: str = ""
    fix: str = ""

    def line(self) -> str:
        return f"PASS {self.name}" if self.passed else f"FAIL {self.name}: {self.problem} -- fix: {self.fix}"


def synthetic_clips(fmt: AudioFormat, seed: int = 0) -> list[Clip]:
    """A tone, a noise burst and a chirp of different lengths, conformed to the model's format."""
    rate = 16_000
    rng = np.random.default_rng(seed)
    t1, t3 = np.arange(rate) / rate, np.arange(int(2.5 * rate)) / rate
    raw = [0.5 * np.sin(2 * np.pi * 440 * t1), 0.3 * rng.standard_normal(rate // 2),
           0.5 * np.sin(2 * np.pi * (200 + 400 * t3) * t3)]
    return [Clip(conform(x.astype(np.float32), rate, fmt), f"synthetic-{i}") for i, x in enumerate(raw)]


def _same(a, b, what: str, method: str, fix: str = "") -> None:
    if isinstance(a, str) or (isinstance(a, list) and a and isinstance(a[0], str)):
        equal = a == b
    else:
        equal = all(np.allclose(x, y, rtol=1e-4, atol=1e-4) for x, y in zip(a, b))
    if not equal:
        raise CheckFailed(f"{method}() gives different outputs {what}",
                          fix or f"make {method}() depend only on each input: no randomness without a fixed seed, "
                          "no dependence on padding or on the other items of the batch (mask padded positions)")


# -- the checks: each raises CheckFailed ------------------------------------------------------
def check_declaration(model: Model, clips) -> None:
    if not isinstance(model.capabilities, Capabilities):
        raise CheckFailed("`capabilities` is not an alm_bench.Capabilities", "set capabilities = Capabilities(...)")
    if not (model.capabilities.generate or model.capabilities.embed or model.capabilities.score):
        raise CheckFailed("declares none of generate, embed, score", "declare the capabilities you implement")
    fmt = model.audio_format
    if not isinstance(fmt, AudioFormat) or not isinstance(fmt.sample_rate, int) or fmt.sample_rate <= 0:
        raise CheckFailed("`audio_format` is not an AudioFormat with a positive integer sample_rate",
                          "set audio_format = AudioFormat(sample_rate=16000, max_seconds=...)")
    if fmt.max_seconds is not None and fmt.max_seconds <= 0:
        raise CheckFailed("audio_format.max_seconds is not positive", "use None for no limit")
    try:
        json.dumps(model.config())
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"config() is not JSON-serialisable ({exc})",
                          "return plain str/int/float/bool/list/dict values from config()") from None


def check_generate_batch(model, clips) -> None:
    requests = [GenerateRequest.single(c, PROMPTS[0]) for c in clips]
    batched = model.generate(requests, GENERATION)
    # determinism first, so that a random model is not reported as batch-dependent
    _same(batched, model.generate(requests, GENERATION), "on a repeated call", "generate")
    single = [model.generate([r], GENERATION)[0] for r in requests]
    _same(batched, single, "in a batch of 3 than one at a time", "generate")


def check_generate_prompts(model, clips) -> None:
    model.generate([GenerateRequest.single(clips[0], p) for p in PROMPTS], GENERATION)


def check_generate_interleaved(model, clips) -> None:
    request = GenerateRequest((clips[0], "this is a sound of a tone.", clips[1], "this is a sound of"))
    model.generate([request, GenerateRequest((clips[2], clips[0], "which clip is longer?"))], GENERATION)


def check_embed(model, clips) -> None:
    batched = model.embed(clips)
    _same(list(batched), list(model.embed(clips)), "on a repeated call", "embed")
    single = np.concatenate([model.embed([c]) for c in clips])
    _same(list(batched), list(single), "in a batch of 3 than one at a time", "embed")


def check_score(model, clips) -> None:
    candidates = ("dog", "rain", "a car engine starting", "sine tone", "noise")
    requests = [ScoreRequest(c, PROMPTS[0], candidates[: n]) for c, n in zip(clips, (1, 3, 5))]
    batched = model.score(requests)
    _same(batched, model.score(requests), "on a repeated call", "score")
    single = [model.score([r])[0] for r in requests]
    _same(batched, single, "in a batch of 3 than one at a time", "score")
    reversed_scores = model.score([ScoreRequest(clips[2], PROMPTS[0], candidates[::-1])])[0]
    _same([batched[2]], [reversed_scores[::-1]], "when the candidates are reordered", "score",
          "give each candidate the same log-likelihood whatever its position in the list "
          "(no sorting, no seed or cache key built from the whole candidate list)")


def check_embed_text(model, clips) -> None:
    texts = ["a dog barks", "rain on a roof", ""]
    first = model.embed_text(texts)
    _same(list(first), list(model.embed_text(texts)), "on a repeated call", "embed_text")


def check_shared_space(model, clips) -> None:
    audio, text = model.embed(clips[:1]), model.embed_text(["a sine tone"])
    if audio.shape[1] != text.shape[1]:
        raise CheckFailed(f"embed() gives {audio.shape[1]}-d vectors but embed_text() {text.shape[1]}-d",
                          "shared_space means both map into one space of one size; otherwise do not declare it")


def _differs(outputs: list) -> bool:
    """Whether outputs for different clips differ at all."""
    first = outputs[0]
    if isinstance(first, str):
        return any(o != first for o in outputs[1:])
    return any(not np.array_equal(np.asarray(o), np.asarray(first)) for o in outputs[1:])


def check_listens_to_audio(model, clips) -> None:
    """A model none of whose outputs change with the clip is answering from the text alone.

    Capabilities that fail are left to their own checks; with none working there is nothing to judge."""
    caps, candidates = model.model.capabilities, ("a sine tone", "noise", "a chirp")
    calls = {
        "generate": lambda: model.generate([GenerateRequest.single(c, PROMPTS[0]) for c in clips], GENERATION),
        "score": lambda: model.score([ScoreRequest(c, PROMPTS[0], candidates) for c in clips]),
        "embed": lambda: list(model.embed(clips)),
    }
    listening = []
    for capability, call in calls.items():
        if getattr(caps, capability):
            try:
                listening.append(_differs(call()))
            except Exception:  # reported by the capability's own check
                continue
    if listening and not any(listening):
        raise CheckFailed("its outputs do not depend on the audio: a tone, a noise burst and a chirp get identical "
                          "generate/score/embed outputs",
                          "pass each request's clip waveform to the network (check the audio reaches the "
                          "forward pass and is not dropped by the preprocessing or the prompt template)")


#: (name, capability required or None, check)
CHECKS: list[tuple[str, str | None, Callable]] = [
    ("declaration", None, check_declaration),
    ("generate_batching_and_determinism", "generate", check_generate_batch),
    ("generate_prompt_handling", "generate", check_generate_prompts),
    ("generate_interleaved", "interleaved", check_generate_interleaved),
    ("embed_batching_and_determinism", "embed", check_embed),
    ("score_batching_and_determinism", "score", check_score),
    ("embed_text", "text_encoder", check_embed_text),
    ("shared_space", "shared_space", check_shared_space),
    ("listens_to_audio", None, check_listens_to_audio),
]


def _run_one(check: Callable, model: ValidatedModel, raw: Model, clips) -> tuple[str, str]:
    try:
        check(raw if check is check_declaration else model, clips)
    except CheckFailed as exc:
        return exc.problem, exc.fix
    except ModelOutputError as exc:
        return str(exc), "return what the protocol's docstring for that method specifies (alm_bench.protocol)"
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}", "make the method accept every input the protocol allows"
    return "", ""


def check_model(model: Model, plugin: str = "", seed: int = 0) -> list[CheckResult]:
    """Run every check that applies to the model's declared capabilities."""
    results = []
    problem, fix = _run_one(check_declaration, None, model, [])
    results.append(CheckResult("declaration", not problem, problem, fix))
    if problem:
        return results
    clips = synthetic_clips(model.audio_format, seed)
    for name, capability, check in CHECKS[1:]:
        if capability is not None and not getattr(model.capabilities, capability):
            continue
        problem, fix = _run_one(check, ValidatedModel(model, plugin), model, clips)
        results.append(CheckResult(name, not problem, problem, fix))
    return results
