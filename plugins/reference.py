"""Reference models that bracket every score: ``oracle`` (ground truth) and ``chance`` (uniform guesses).

Neither listens to audio.  Both declare the ``reference`` capability, so each call also receives
the ground truth of its requests (:mod:`alm_bench.answer_key`): the output a perfect model gives and
the closed set of answers where there is one.  The oracle returns the former and the chance model a
seeded uniform pick from the latter.  Requests without an answer (e.g. from ``alm-bench
validate-model``) still get deterministic, well-formed outputs.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from alm_bench import AudioFormat, Capabilities, Model, hookimpl
from alm_bench.answer_key import AnswerKey
from alm_bench.calls import content_key

ALL = Capabilities(generate=True, embed=True, score=True, interleaved=True, text_encoder=True, shared_space=True,
                   reference=True)
NO_ANSWERS = AnswerKey()


def _rng(*parts) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


class OracleModel(Model):
    """Returns the ground truth: perfect scores on every evaluator."""

    name = "oracle"
    capabilities = ALL
    audio_format = AudioFormat(sample_rate=16_000)

    def __init__(self, dim: int = 1024) -> None:
        self.dim = dim

    def config(self):
        return {"dim": self.dim}

    def _vector(self, facets) -> np.ndarray:
        # near-orthogonal random directions, one per facet, summed
        return _unit(sum(_rng("facet", f).standard_normal(self.dim) for f in facets))

    @staticmethod
    def _ideal(answers: AnswerKey, kind, request, default):
        answer = answers.get(kind, request)
        return default if answer is None else answer.ideal

    def generate(self, requests, config, answers: AnswerKey = NO_ANSWERS):
        return [str(self._ideal(answers, "generate", r, "")) for r in requests]

    def score(self, requests, answers: AnswerKey = NO_ANSWERS):
        out = []
        for request in requests:
            ideal = self._ideal(answers, "score", request, ())
            ideal = {ideal} if isinstance(ideal, str) else set(ideal)
            out.append(np.array([0.0 if c in ideal else -10.0 for c in request.candidates]))
        return out

    def embed(self, clips, answers: AnswerKey = NO_ANSWERS):
        # a clip embeds as everything true of it (its labels and captions) plus its identity
        return np.stack([
            self._vector([f for t in self._ideal(answers, "embed", c, ()) for f in text_facets(t)] + [f"audio:{c.sha}"])
            for c in clips
        ])

    def embed_text(self, texts, answers: AnswerKey = NO_ANSWERS):
        return np.stack([self._vector(self._text_facets(t, self._ideal(answers, "embed_text", t, ()))) for t in texts])

    @staticmethod
    def _text_facets(text: str, ideal) -> list[str]:
        # a label in a template ("this is a sound of dog") means its label (its ideal, a string); a
        # reference caption also points at the clips it describes (its ideal: their hashes)
        if isinstance(ideal, str):
            return text_facets(ideal)
        return text_facets(text) + [f"audio:{sha}" for sha in ideal]


def text_facets(text: str) -> list[str]:
    """The whole text and its comma-separated parts, so "bell, siren" shares a direction with "bell"
    and with "siren" while two captions sharing one clause stay apart."""
    parts = [part.strip().lower() for part in text.split(",") if part.strip()]
    whole = [f"text:{text.strip().lower()}"]
    return whole + [f"text:{p}" for p in parts] if len(parts) > 1 else whole


class ChanceModel(Model):
    """Seeded uniform guesses among the answers, random log-likelihoods and vectors."""

    name = "chance"
    capabilities = ALL
    audio_format = AudioFormat(sample_rate=16_000)

    def __init__(self, seed: int = 0, dim: int = 64, latency: float = 0.0) -> None:
        self.seed, self.dim = seed, dim
        #: seconds of simulated compute per request (for resume and overhead tests)
        self.latency = latency

    def config(self):
        return {"seed": self.seed, "dim": self.dim}

    def _wait(self, n: int) -> None:
        if self.latency:
            time.sleep(self.latency * n)

    def generate(self, requests, config, answers: AnswerKey = NO_ANSWERS):
        self._wait(len(requests))
        out = []
        for request in requests:
            key = content_key("generate", request)
            answer = answers.get("generate", request)
            choices = answer.choices if answer is not None else ()
            out.append(str(choices[_rng(self.seed, key).integers(len(choices))]) if choices else "")
        return out

    def score(self, requests, answers: AnswerKey = NO_ANSWERS):
        self._wait(len(requests))
        # one draw per (clip, prompt, candidate): independent of the candidates' order
        return [np.array([_rng(self.seed, "score", r.clip.sha, r.prompt, c).standard_normal() for c in r.candidates])
                for r in requests]

    def embed(self, clips, answers: AnswerKey = NO_ANSWERS):
        self._wait(len(clips))
        return np.stack([_rng(self.seed, "audio", c.sha).standard_normal(self.dim) for c in clips])

    def embed_text(self, texts, answers: AnswerKey = NO_ANSWERS):
        return np.stack([_rng(self.seed, "text", t).standard_normal(self.dim) for t in texts])


@hookimpl
def alm_bench_models():
    return [OracleModel, ChanceModel]
