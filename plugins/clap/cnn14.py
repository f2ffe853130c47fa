"""PANNs' Cnn14 as msclap 2022 uses it (``msclap/models/audio.py``), inference path only.

Names follow the reference (``spectrogram_extractor``, ``logmel_extractor``, ``bn0``,
``conv_block1..6``, ``fc1``, ``fc_audioset``) so the released state dict loads key for key.  The
front end is torchlibrosa's, shared with the ``pengi`` plugin's HTS-AT.  Dropout is inactive at
inference, so it is left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from alm_bench_plugins.pengi.audio_encoder import LogmelFilterBank, Spectrogram
from alm_bench_plugins.pengi.config import AudioConfig


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.avg_pool2d(x, kernel_size=pool)


class Cnn14(nn.Module):
    """[B, samples] -> (embedding [B, out_emb], clipwise [B, classes])."""

    def __init__(self, cfg: AudioConfig, widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048),
                 out_emb: int = 2048) -> None:
        super().__init__()
        self.spectrogram_extractor = Spectrogram(cfg.n_fft, cfg.hop_length)
        self.logmel_extractor = LogmelFilterBank(cfg)
        self.bn0 = nn.BatchNorm2d(cfg.n_mels)
        channels = (1, *widths)
        for i in range(len(widths)):
            setattr(self, f"conv_block{i + 1}", ConvBlock(channels[i], channels[i + 1]))
        self.blocks = len(widths)
        self.fc1 = nn.Linear(widths[-1], out_emb)
        self.fc_audioset = nn.Linear(out_emb, cfg.num_classes)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.logmel_extractor(self.spectrogram_extractor(wave))  # [B, 1, T, mels]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(1, self.blocks + 1):
            x = getattr(self, f"conv_block{i}")(x, pool=(2, 2) if i < self.blocks else (1, 1))
        x = x.mean(dim=3)
        x = x.amax(dim=2) + x.mean(dim=2)
        embedding = F.relu(self.fc1(x))
        return embedding, torch.sigmoid(self.fc_audioset(embedding))
