"""Every size of an APT network in one dataclass, and a registry of named configurations.

``base`` is the paper's model (Liang et al., 2023, and its public LAVIS code, ``lam_vicuna_instruct``):
Audio-MAE ViT-B/16 over a 128-bin Kaldi fbank (10 ms hop, 1024 frames a segment, 16x16 patches ->
512 patches of 768-d), a 4-layer BERT-style Q-Former with 32 queries that also reads the instruction,
and a linear projection into the language model (Vicuna-7B v1.1 in the paper; any causal LM here).
``tiny`` is the small configuration alm-bench trains on its synthetic suite (``apt-tiny``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EncoderConfig:
    """Audio-MAE: the Kaldi fbank front end and the ViT (timm key names, as Audio-MAE saves them)."""

    sample_rate: int = 16_000
    n_mels: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    #: fbank frames per segment: a longer clip is cut into segments, each zero-padded to this
    target_frames: int = 1024
    patch: int = 16
    hidden: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    num_classes: int = 527
    #: fbank normalisation; None = none, as the public wrapper feeds it (``preprocess_audio(skip_norm=True)``)
    fbank_mean: float | None = None
    fbank_std: float | None = None

    @property
    def grid(self) -> tuple[int, int]:
        """Patches along time and along frequency (64 x 8 in the paper)."""
        return self.target_frames // self.patch, self.n_mels // self.patch

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def segment_samples(self) -> int:
        """Samples whose fbank fills one segment exactly (Kaldi framing, ``snip_edges``)."""
        shift = int(self.sample_rate * self.frame_shift_ms / 1000)
        window = int(self.sample_rate * self.frame_length_ms / 1000)
        return (self.target_frames - 1) * shift + window


@dataclass(frozen=True)
class QFormerConfig:
    """The aligner: BERT layers, cross-attention to the audio every ``cross_attention_freq`` layers."""

    hidden: int = 768
    layers: int = 4
    heads: int = 12
    intermediate: int = 3072
    queries: int = 32
    cross_attention_freq: int = 2
    #: bert-base-uncased + LAVIS's added [DEC] token
    vocab_size: int = 30_523
    max_positions: int = 512


@dataclass(frozen=True)
class AptConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    qformer: QFormerConfig = field(default_factory=QFormerConfig)
    #: instruction tokens the Q-Former and the language model read (``max_txt_len``)
    max_text_tokens: int = 128

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CONFIGS: dict[str, AptConfig] = {"base": AptConfig()}

#: 2 s of 16 kHz audio (the synthetic suite's clips) fills one 208-frame segment: a 64-bin fbank
#: (normalised by the synthetic clips' mean and deviation), 16x16 patches -> 13 x 4 = 52 patches; a
#: 4-layer 128-d ViT whose head tells kinds and their attributes (``training.ENCODER_OUTPUTS``), a
#: 2-layer Q-Former with 8 queries
CONFIGS["tiny"] = AptConfig(
    encoder=EncoderConfig(n_mels=64, target_frames=208, hidden=128, depth=4, heads=4, num_classes=120,
                          fbank_mean=-10.0, fbank_std=4.0),
    qformer=QFormerConfig(hidden=128, layers=2, heads=4, intermediate=256, queries=8, vocab_size=512,
                          max_positions=128),
    max_text_tokens=64,
)


def register_config(name: str, config: AptConfig) -> None:
    """Add a named configuration (``--model-args config=NAME`` selects it)."""
    if name in CONFIGS and CONFIGS[name] != config:
        raise ValueError(f"a different APT configuration is already registered as {name!r}")
    CONFIGS[name] = config
