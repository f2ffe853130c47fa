"""Checks every model output against the protocol; a violation names the plugin and the method."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ModelOutputError
from .protocol import Clip, GenerateRequest, GenerationConfig, Model, ScoreRequest


class ValidatedModel:
    """Wraps a model; each call's outputs are checked (count, type, shape, finite values)."""

    def __init__(self, model: Model, plugin: str = "") -> None:
        self.model = model
        self.plugin = plugin or "?"
        self.capabilities = model.capabilities
        self._dims: dict[str, int] = {}

    def _fail(self, method: str, what: str) -> ModelOutputError:
        name = getattr(self.model, "name", type(self.model).__name__)
        return ModelOutputError(f'plugin "{self.plugin}" model {name!r} method {method}(): {what}')

    def _matrix(self, method: str, out, n: int) -> np.ndarray:
        try:
            arr = np.asarray(out, dtype=np.float32)
        except (TypeError, ValueError):
            raise self._fail(method, f"returned {type(out).__name__}, expected a float array [n, D]") from None
        if arr.ndim != 2 or arr.shape[0] != n:
            raise self._fail(method, f"returned shape {arr.shape} for {n} inputs; expected [{n}, D]")
        if arr.shape[1] == 0:
            raise self._fail(method, "returned vectors of size 0")
        if self._dims.setdefault(method, arr.shape[1]) != arr.shape[1]:
            raise self._fail(method, f"vector size changed from {self._dims[method]} to {arr.shape[1]}")
        if not np.isfinite(arr).all():
            raise self._fail(method, "returned non-finite values (nan or inf)")
        return arr

    # ``extra`` carries ``answers=`` to reference models (see Capabilities.reference)
    def generate(self, requests: Sequence[GenerateRequest], config: GenerationConfig, **extra) -> list[str]:
        out = self.model.generate(list(requests), config, **extra)
        if not isinstance(out, (list, tuple)) or len(out) != len(requests):
            got = len(out) if isinstance(out, (list, tuple)) else type(out).__name__
            raise self._fail("generate", f"returned {got} outputs for {len(requests)} requests; expected one text each")
        if not all(isinstance(text, str) for text in out):
            raise self._fail("generate", "returned a non-string output; return one str per request")
        return list(out)

    def embed(self, clips: Sequence[Clip], **extra) -> np.ndarray:
        return self._matrix("embed", self.model.embed(list(clips), **extra), len(clips))

    def embed_text(self, texts: Sequence[str], **extra) -> np.ndarray:
        return self._matrix("embed_text", self.model.embed_text(list(texts), **extra), len(texts))

    def score(self, requests: Sequence[ScoreRequest], **extra) -> list[np.ndarray]:
        out = self.model.score(list(requests), **extra)
        if not isinstance(out, (list, tuple)) or len(out) != len(requests):
            raise self._fail("score", f"returned {len(out) if isinstance(out, (list, tuple)) else type(out).__name__}"
                             f" results for {len(requests)} requests; expected one array of scores each")
        checked = []
        for request, scores in zip(requests, out):
            arr = np.asarray(scores, dtype=np.float64)
            if arr.shape != (len(request.candidates),):
                raise self._fail("score", f"returned shape {arr.shape} for {len(request.candidates)} candidates")
            if not np.isfinite(arr).all():
                raise self._fail("score", "returned non-finite log-likelihoods (nan or inf)")
            checked.append(arr)
        return checked
