"""The retrieval encoders: suite models by name, one for audio (``embed``) and one for captions
(``embed_text``); the same model with a shared audio-text space also serves cross-modal retrieval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from alm_bench.audio import conform, decode
from alm_bench.errors import UsageError
from alm_bench.protocol import Clip, Model
from alm_bench.text_encoders import normalize_rows

BATCH = 16
#: encoder models by name, loaded once per process: a sweep builds a rag model per combination, and
#: loading clap-tiny's sentence encoder takes seconds (the models are used for inference only)
_LOADED: dict[str, Model] = {}


def _model(registry: Any, name: str) -> Model:
    if name not in _LOADED:
        _LOADED[name] = registry.load_model(name)
    return _LOADED[name]


@dataclass
class Encoders:
    audio_name: str
    text_name: str
    audio: Model
    text: Model

    @classmethod
    def load(cls, registry: Any, audio_name: str, text_name: str) -> "Encoders":
        audio = _model(registry, audio_name)
        if not audio.capabilities.embed:
            raise UsageError(f"rag: audio_encoder={audio_name} has no embed(); name a model that embeds audio "
                             f"(e.g. clap-tiny)")
        text = _model(registry, text_name)
        if not text.capabilities.text_encoder:
            raise UsageError(f"rag: text_encoder={text_name} has no embed_text(); name a model with a text "
                             f"encoder (e.g. clap-tiny)")
        return cls(audio_name, text_name, audio, text)

    @property
    def shared(self) -> bool:
        """One model whose audio and text vectors share a space: cross-modal scores mean something."""
        return self.audio is self.text and self.audio.capabilities.shared_space

    def describe(self) -> dict:
        """What changes the vectors: names, settings and the audio format of each encoder."""
        return {"audio": {"model": self.audio_name, "config": self.audio.config(),
                          "audio": self.audio.audio_format.describe()},
                "text": {"model": self.text_name, "config": self.text.config()}}

    def to(self, device: str) -> None:
        self.audio.to(device)
        if self.text is not self.audio:
            self.text.to(device)

    def embed_waveforms(self, waveforms: Sequence[np.ndarray], rate: int) -> np.ndarray:
        """L2-normalised audio vectors of mono waveforms at ``rate`` (resampled to the encoder's format)."""
        fmt = self.audio.audio_format
        return self._embed_clips([Clip(conform(w, rate, fmt), "") for w in waveforms])

    def embed_files(self, paths: Sequence[str]) -> np.ndarray:
        fmt = self.audio.audio_format
        out = [self._embed_clips([Clip(decode(p, fmt), "") for p in paths[i : i + BATCH]])
               for i in range(0, len(paths), BATCH)]
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    def _embed_clips(self, clips: list[Clip]) -> np.ndarray:
        out = [np.asarray(self.audio.embed(clips[i : i + BATCH]), np.float32) for i in range(0, len(clips), BATCH)]
        return normalize_rows(np.concatenate(out)).astype(np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = [np.asarray(self.text.embed_text(list(texts[i : i + 64])), np.float32) for i in range(0, len(texts), 64)]
        return normalize_rows(np.concatenate(out)).astype(np.float32)
