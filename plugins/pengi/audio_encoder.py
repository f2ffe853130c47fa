"""Pengi's audio encoder: log-mel front end, HTS-AT (a Swin transformer) and the projection.

Module, parameter and buffer names follow the reference (torchlibrosa's ``Spectrogram`` and
``LogmelFilterBank``, HTS-AT's ``HTSAT_Swin_Transformer`` inside ``HTSATWrapper.htsat``), so the
released state dict loads key for key.  Only the inference path is written: no SpecAugment, no mixup,
no clips longer than the image (a 7 s clip is 965 frames, the image holds 1024).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import AudioConfig
from .mapper import Projection


# -- front end ----------------------------------------------------------------------------------
def _fill(param: torch.Tensor, values: np.ndarray) -> None:
    """Copy fixed values in (a no-op on the meta device, where only shapes exist)."""
    if param.device.type != "meta":
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)))


def dft_kernels(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """torchlibrosa's STFT conv weights: the first n_fft/2+1 rows of the DFT matrix times a periodic
    Hann window, computed the way torchlibrosa does (``omega ** (n*k)``) so random-init models match
    its values bit for bit; a checkpoint overwrites them anyway."""
    from scipy.signal import get_window

    window = get_window("hann", n_fft, fftbins=True)
    n, k = np.meshgrid(np.arange(n_fft), np.arange(n_fft // 2 + 1), indexing="ij")
    dft = np.power(np.exp(-2j * np.pi / n_fft), n * k) * window[:, None]  # [n_fft, bins]
    return np.real(dft).T[:, None, :], np.imag(dft).T[:, None, :]


def mel_weights(cfg: AudioConfig) -> np.ndarray:
    """librosa's default mel filterbank (Slaney scale and norm), [bins, mels] as ``melW``."""
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(num_frequency_bins=cfg.n_fft // 2 + 1, num_mel_filters=cfg.n_mels,
                           min_frequency=cfg.fmin, max_frequency=cfg.fmax, sampling_rate=cfg.mel_sample_rate,
                           norm="slaney", mel_scale="slaney")


class STFT(nn.Module):
    """Centred, reflect-padded STFT as two frozen conv1d (torchlibrosa)."""

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop_length, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop_length, bias=False)
        real, imag = dft_kernels(n_fft)
        _fill(self.conv_real.weight, real)
        _fill(self.conv_imag.weight, imag)
        for p in self.parameters():
            p.requires_grad = False

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        return self.conv_real(x), self.conv_imag(x)  # [B, bins, T] each


class Spectrogram(nn.Module):
    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.stft = STFT(n_fft, hop_length)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(wave)
        return (real**2 + imag**2).transpose(1, 2)[:, None]  # power, [B, 1, T, bins]


class LogmelFilterBank(nn.Module):
    """Mel projection and power-to-dB (ref 1.0, amin 1e-10, no top_db)."""

    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        self.melW = nn.Parameter(torch.empty(cfg.n_fft // 2 + 1, cfg.n_mels), requires_grad=False)
        _fill(self.melW, mel_weights(cfg))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(spec @ self.melW, min=1e-10))


# -- Swin transformer ---------------------------------------------------------------------------
def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * windows, window, window, C]"""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    b = windows.shape[0] // (h * w // window // window)
    x = windows.view(b, h // window, w // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def relative_position_index(window: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]


def shifted_window_mask(resolution: int, window: int, shift: int) -> torch.Tensor:
    """The standard Swin mask: -100 between tokens of different regions after the cyclic shift."""
    img = torch.zeros(1, resolution, resolution, 1)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, (hs, ws) in enumerate((hs, ws) for hs in bands for ws in bands):
        img[:, hs, ws, :] = i
    regions = window_partition(img, window).view(-1, window * window)
    diff = regions.unsqueeze(1) - regions.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:  # mask: [windows, n, n], batch-major windows
            attn = attn.view(-1, mask.shape[0], self.num_heads, n, n) + mask[None, :, None]
            attn = attn.view(-1, self.num_heads, n, n)
        out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, resolution: int, num_heads: int, window: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        if resolution <= window:  # the window covers the whole map: no shift (last stage)
            window, shift = resolution, 0
        self.resolution, self.window, self.shift = resolution, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.register_buffer("attn_mask", shifted_window_mask(resolution, window, shift) if shift else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        r, w, s = self.resolution, self.window, self.shift
        h = self.norm1(x).view(b, r, r, c)
        if s:
            h = torch.roll(h, shifts=(-s, -s), dims=(1, 2))
        h = self.attn(window_partition(h, w).view(-1, w * w, c), self.attn_mask)
        h = window_reverse(h.view(-1, w, w, c), w, r, r)
        if s:
            h = torch.roll(h, shifts=(s, s), dims=(1, 2))
        x = x + h.reshape(b, n, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbours concatenated (rows first), LayerNorm, Linear 4C -> 2C."""

    def __init__(self, resolution: int, dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, self.resolution, self.resolution, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class BasicLayer(nn.Module):
    def __init__(self, dim: int, resolution: int, depth: int, num_heads: int, cfg: AudioConfig, last: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, resolution, num_heads, cfg.window_size, 0 if i % 2 == 0 else cfg.window_size // 2,
                      cfg.mlp_ratio)
            for i in range(depth))
        self.downsample = None if last else PatchMerging(resolution, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed(nn.Module):
    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_stride,
                              padding=(cfg.patch_size - cfg.patch_stride) // 2)
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class HTSAT(nn.Module):
    """HTS-AT in eval mode; ``forward`` returns the 768-d latent and the 527 clipwise probabilities."""

    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if frames(cfg) > cfg.spec_size * cfg.freq_ratio or cfg.n_mels * cfg.freq_ratio != cfg.spec_size:
            raise ValueError("the clip's spectrogram must fit the HTS-AT image (frames <= spec_size * freq_ratio)")
        self.spectrogram_extractor = Spectrogram(cfg.n_fft, cfg.hop_length)
        self.logmel_extractor = LogmelFilterBank(cfg)
        self.bn0 = nn.BatchNorm2d(cfg.n_mels)
        self.patch_embed = PatchEmbed(cfg)
        grid = (cfg.spec_size - cfg.patch_size) // cfg.patch_stride + 1
        self.layers = nn.ModuleList(
            BasicLayer(cfg.embed_dim * 2**i, grid // 2**i, depth, heads, cfg, last=i == len(cfg.depths) - 1)
            for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)))
        self.norm = nn.LayerNorm(cfg.num_features)
        self.final_grid = grid // 2 ** (len(cfg.depths) - 1)
        group = self.final_grid // cfg.freq_ratio
        self.tscam_conv = nn.Conv2d(cfg.num_features, cfg.num_classes, kernel_size=(group, 3), padding=(0, 1))
        self.head = nn.Linear(cfg.num_classes, cfg.num_classes)  # in the checkpoint, unused by TS-CAM

    def front_end(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, samples] -> log-mel [B, 1, T, mels]: fixed weights, so training computes it once per clip."""
        return self.logmel_extractor(self.spectrogram_extractor(wave))

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, samples] -> batch-normalised log-mel [B, 1, T, mels]"""
        return self.normalise(self.front_end(wave))

    def normalise(self, mel: torch.Tensor) -> torch.Tensor:
        return self.bn0(mel.transpose(1, 3)).transpose(1, 3)

    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 1, T, mels] -> [B, 1, spec, spec]: time stretched to spec*ratio frames, cut into ratio
        chunks stacked along frequency (``reshape_wav2img``)."""
        ratio, target = self.cfg.freq_ratio, self.cfg.spec_size * self.cfg.freq_ratio
        if x.shape[2] < target:
            x = F.interpolate(x, (target, x.shape[3]), mode="bicubic", align_corners=True)
        b, c, t, m = x.shape
        x = x.permute(0, 1, 3, 2).reshape(b, c, m, ratio, t // ratio)
        return x.permute(0, 1, 3, 2, 4).reshape(b, c, ratio * m, t // ratio)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.from_front_end(self.front_end(wave))

    def from_front_end(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`front_end`'s output -> (latent, clipwise probabilities)"""
        x = self.patch_embed(self.to_image(self.normalise(mel)))
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        b, _, c = x.shape
        g, ratio = self.final_grid, self.cfg.freq_ratio
        x = x.transpose(1, 2).reshape(b, c, g, g)
        # TS-CAM grouping: the frequency rows of the `ratio` time chunks side by side
        rows = g // ratio
        x = x.reshape(b, c, g // rows, rows, g).permute(0, 1, 3, 2, 4).reshape(b, c, rows, -1)
        latent = x.flatten(2).mean(-1)
        clipwise = torch.sigmoid(self.tscam_conv(x).flatten(2).mean(-1))
        return latent, clipwise


class HTSATWrapper(nn.Module):
    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        self.htsat = HTSAT(cfg)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.htsat(wave)


class AudioEncoder(nn.Module):
    """Waveform -> (encoder latent [B, num_features], projected embedding [B, d_proj])."""

    def __init__(self, cfg: AudioConfig, d_proj: int) -> None:
        super().__init__()
        self.base = HTSATWrapper(cfg)
        self.projection = Projection(cfg.num_features, d_proj)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.from_front_end(self.base.htsat.front_end(wave))

    def from_front_end(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent, _ = self.base.htsat.from_front_end(mel)
        return latent, self.projection(latent)


def init_htsat_weights(module: nn.Module) -> None:
    """HTS-AT's own initialisation (truncated normal 0.02 for Linear and bias tables)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, WindowAttention):
            nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)


def frames(cfg: AudioConfig) -> int:
    """Spectrogram frames of one clip (965 for 7 s at hop 320)."""
    return cfg.clip_samples // cfg.hop_length + 1

