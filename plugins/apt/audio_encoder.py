"""Audio-MAE's front end and encoder: a Kaldi-compatible fbank in torch and a ViT-B/16.

``kaldi_fbank`` computes what the public code computes with ``torchaudio.compliance.kaldi.fbank(wave -
wave.mean(), htk_compat=True, use_energy=False, window_type="hanning", num_mel_bins=128, dither=0.0,
frame_shift=10)`` (torchaudio itself is not a dependency: it does not load with every torch).  The ViT
keeps timm's key names (``patch_embed.proj``, ``blocks.N.attn.qkv``...), so an Audio-MAE checkpoint
loads as saved; its fixed 2-D sin-cos position embedding is a parameter that is never trained.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig

_PREEMPHASIS = 0.97
_LOW_FREQ = 20.0


def _mel(freq: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(freq / 700.0)


def kaldi_mel_banks(n_mels: int, padded_window: int, sample_rate: int) -> torch.Tensor:
    """[n_mels, padded_window // 2 + 1] triangular filters on Kaldi's mel scale (last column zero)."""
    bins = padded_window // 2
    low, high = _mel(torch.tensor(_LOW_FREQ)), _mel(torch.tensor(sample_rate / 2))
    delta = (high - low) / (n_mels + 1)
    left = low + torch.arange(n_mels, dtype=torch.float64)[:, None] * delta
    centre, right = left + delta, left + 2 * delta
    mel = _mel(sample_rate / padded_window * torch.arange(bins, dtype=torch.float64))[None]
    up, down = (mel - left) / (centre - left), (right - mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1)).float()


def kaldi_fbank(wave: torch.Tensor, sample_rate: int, n_mels: int, frame_length_ms: float = 25.0,
                frame_shift_ms: float = 10.0) -> torch.Tensor:
    """[frames, n_mels] log mel energies of a 1-D waveform, as Kaldi (and torchaudio) compute them."""
    wave = wave.double() - wave.double().mean()
    window = int(sample_rate * frame_length_ms / 1000)
    shift = int(sample_rate * frame_shift_ms / 1000)
    if len(wave) < window:
        return torch.zeros(0, n_mels)
    frames = wave.unfold(0, window, shift)  # snip_edges: only whole frames
    frames = frames - frames.mean(dim=1, keepdim=True)  # remove_dc_offset
    previous = torch.cat((frames[:, :1], frames[:, :-1]), dim=1)
    frames = (frames - _PREEMPHASIS * previous) * torch.hann_window(window, periodic=False, dtype=torch.float64)
    padded = 1 << (window - 1).bit_length()
    power = torch.fft.rfft(frames, n=padded).abs().pow(2)
    energies = power @ kaldi_mel_banks(n_mels, padded, sample_rate).double().T
    return torch.log(energies.clamp(min=torch.finfo(torch.float32).eps)).float()


def segments(fbank: torch.Tensor, target_frames: int) -> torch.Tensor:
    """[frames, mels] -> [segments, target_frames, mels]: cut into segments, the last zero-padded
    (as ``AudioMAE.get_audio_embedding``); at least one segment."""
    count = max(1, math.ceil(len(fbank) / target_frames))
    padded = F.pad(fbank, (0, 0, 0, count * target_frames - len(fbank)))
    return padded.view(count, target_frames, fbank.shape[1])


def sincos_2d(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos position embedding, with a zero row for the class token: [1, 1 + h*w, dim]."""
    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    h, w = grid
    gw, gh = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    emb = np.concatenate([one_d(dim // 2, gw), one_d(dim // 2, gh)], axis=1)
    return torch.from_numpy(np.concatenate([np.zeros((1, dim)), emb])).float()[None]


class PatchEmbed(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, cfg.hidden, kernel_size=cfg.patch, stride=cfg.patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden, eps=1e-6)
        self.attn = Attention(cfg.hidden, cfg.heads)
        self.norm2 = nn.LayerNorm(cfg.hidden, eps=1e-6)
        self.mlp = Mlp(cfg.hidden, int(cfg.hidden * cfg.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class AudioMAEViT(nn.Module):
    """Audio-MAE's ``VisionTransformer`` (global pool) at inference: fbank segments -> patch embeddings."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.hidden))
        self.pos_embed = nn.Parameter(sincos_2d(cfg.hidden, cfg.grid), requires_grad=False)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.fc_norm = nn.LayerNorm(cfg.hidden, eps=1e-6)
        self.head = nn.Linear(cfg.hidden, cfg.num_classes)
        nn.init.normal_(self.cls_token, std=0.02)

    def forward(self, fbank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[S, frames, mels] -> (patch embeddings [S, patches, hidden], pooled ``fc_norm(mean)`` [S, hidden])."""
        x = self.patch_embed(fbank[:, None]) + self.pos_embed[:, 1:]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(len(x), -1, -1)
        x = torch.cat((cls, x), dim=1)
        for block in self.blocks:
            x = block(x)
        patches = x[:, 1:]
        return patches, self.fc_norm(patches.mean(dim=1))


class AudioEncoder(nn.Module):
    """Waveform -> fbank segments -> ViT.  ``model`` holds the ViT, as in the LAVIS wrapper."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = AudioMAEViT(cfg)

    def fbank_segments(self, wave: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        fbank = kaldi_fbank(wave.float().cpu(), cfg.sample_rate, cfg.n_mels, cfg.frame_length_ms, cfg.frame_shift_ms)
        if cfg.fbank_mean is not None:
            fbank = (fbank - cfg.fbank_mean) / cfg.fbank_std
        return segments(fbank, cfg.target_frames)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One 1-D waveform -> (patch embeddings [segments, patches, hidden], pooled [segments, hidden])."""
        dtype = self.model.cls_token.dtype
        return self.model(self.fbank_segments(wave).to(self.model.cls_token.device, dtype))
