"""``logmel``: an embed-only baseline with no weights, like HEAR's naive baseline.

A clip becomes the statistics of its log-mel spectrogram over time: the mean and standard deviation
of each mel band, optionally per equal time segment (``segments``) so coarse temporal order
survives.  It needs nothing downloaded, so linear probes give real numbers on real audio offline,
and it is the floor a learned audio encoder has to clear.
"""

from __future__ import annotations

from functools import cached_property

from typing import TYPE_CHECKING

import numpy as np

from alm_bench import AudioFormat, Capabilities, Model, hookimpl

if TYPE_CHECKING:  # torch loads when a clip is embedded, not when the plugin is listed
    import torch


class LogMelBaseline(Model):
    """Log-mel band statistics (mean and std over time, per segment)."""

    name = "logmel"
    capabilities = Capabilities(embed=True)
    description = "weightless baseline: log-mel band mean/std (HEAR-style naive embedding)"

    def __init__(self, sample_rate: int = 16_000, n_mels: int = 64, n_fft: int = 400, hop: int = 160,
                 segments: int = 1) -> None:
        if segments < 1 or n_mels < 1:
            raise ValueError("logmel: segments and n_mels must be at least 1")
        self.sample_rate, self.n_mels, self.n_fft, self.hop, self.segments = sample_rate, n_mels, n_fft, hop, segments
        # at least one full window, so every clip has a frame
        self.audio_format = AudioFormat(sample_rate=sample_rate, min_seconds=n_fft / sample_rate)

    def config(self):
        return {"sample_rate": self.sample_rate, "n_mels": self.n_mels, "n_fft": self.n_fft, "hop": self.hop,
                "segments": self.segments}

    @cached_property
    def _mel(self) -> torch.Tensor:
        import torch
        from transformers.audio_utils import mel_filter_bank

        bank = mel_filter_bank(num_frequency_bins=self.n_fft // 2 + 1, num_mel_filters=self.n_mels,
                               min_frequency=0.0, max_frequency=self.sample_rate / 2, sampling_rate=self.sample_rate,
                               norm="slaney", mel_scale="slaney")
        return torch.from_numpy(bank).float()  # [freq, mel]

    def log_mel(self, waveform: np.ndarray) -> torch.Tensor:
        """[frames, n_mels] log-mel spectrogram (natural log of power, floored at 1e-10)."""
        import torch

        audio = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
        spec = torch.stft(audio, self.n_fft, self.hop, window=torch.hann_window(self.n_fft), center=True,
                          return_complex=True).abs().pow(2)
        return torch.log(spec.T @ self._mel + 1e-10)

    def _stats(self, frames: torch.Tensor) -> torch.Tensor:
        import torch

        parts = torch.tensor_split(frames, self.segments) if len(frames) >= self.segments else [frames] * self.segments
        return torch.cat([torch.cat([p.mean(0), p.std(0, correction=0)]) for p in parts])

    def embed(self, clips):
        import torch

        with torch.inference_mode():
            return np.stack([self._stats(self.log_mel(c.waveform)).numpy() for c in clips]).astype(np.float32)


@hookimpl
def alm_bench_models():
    return [LogMelBaseline]
