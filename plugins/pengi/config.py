"""Every size of a Pengi network in one dataclass, and a registry of named configurations.

``base`` and ``base_no_text_enc`` are the two released models (numbers from the reference
implementation; see ``shared/reference/pengi/ARCHITECTURE.md``).  ``tiny`` is the small configuration
alm-bench trains on its synthetic suite and ships (``pengi-tiny``, see ``tiny.py``).  Another
configuration (a test one) is added with :func:`register_config`; the network code reads every size
from here, so nothing else changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: where the released checkpoints are published (Zenodo record 8387083)
RELEASE_URL = "https://zenodo.org/records/8387083/files/{name}.pth"


@dataclass(frozen=True)
class AudioConfig:
    """HTS-AT and its front end.

    The released front end is built with HTS-AT's 32 kHz settings (``mel_sample_rate``) although
    44.1 kHz audio is fed (``sample_rate``): the mel filterbank is laid out as if the audio were 32 kHz."""

    sample_rate: int = 44_100
    clip_samples: int = 308_700  # 7 s at 44.1 kHz
    mel_sample_rate: int = 32_000
    n_fft: int = 1024
    hop_length: int = 320
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 14_000.0
    spec_size: int = 256  # the square image the spectrogram is folded into
    patch_size: int = 4
    patch_stride: int = 4
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 8
    mlp_ratio: float = 4.0
    num_classes: int = 527

    @property
    def freq_ratio(self) -> int:
        return self.spec_size // self.n_mels

    @property
    def num_features(self) -> int:
        """Width of the last Swin stage: the encoder latent (768 in the released models)."""
        return self.embed_dim * 2 ** (len(self.depths) - 1)


@dataclass(frozen=True)
class ClipTextConfig:
    """The CLIP text tower (``openai/clip-vit-base-patch16``) of the ``base`` prompt encoder."""

    vocab_size: int = 49_408
    hidden_size: int = 512
    intermediate_size: int = 2048
    num_layers: int = 12
    num_heads: int = 8
    max_positions: int = 77
    projection_dim: int = 512
    hidden_act: str = "quick_gelu"


@dataclass(frozen=True)
class GPT2Sizes:
    """The frozen language model (GPT-2 base, 124M, in the released models)."""

    vocab_size: int = 50_257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    eos_token_id: int = 50_256  # <|endoftext|> in the decoder tokenizer


@dataclass(frozen=True)
class MapperConfig:
    """Both mapping networks: ``prefix_length`` input tokens + as many learned constants through a
    pre-LayerNorm transformer; the last ``prefix_length`` positions are the prefix."""

    prefix_length: int = 40
    num_layers: int = 4
    num_heads: int = 8
    mlp_ratio: float = 2.0


@dataclass(frozen=True)
class PengiConfig:
    audio: AudioConfig = field(default_factory=AudioConfig)
    #: "clip": CLIP text tower + projection, then a Linear in the text mapper;
    #: "gpt2-embeddings": the prompt's GPT-2 token embeddings go straight into the text mapper
    prompt_encoder: str = "clip"
    clip: ClipTextConfig | None = field(default_factory=ClipTextConfig)
    #: prompt tokens (padded or cut to this length), the same for both prompt encoders
    prompt_tokens: int = 40
    gpt2: GPT2Sizes = field(default_factory=GPT2Sizes)
    mapper: MapperConfig = field(default_factory=MapperConfig)
    #: width of the audio and text projections (the embedding the mappers take)
    d_proj: int = 1024

    def __post_init__(self) -> None:
        if self.prompt_encoder not in ("clip", "gpt2-embeddings"):
            raise ValueError(f"prompt_encoder must be 'clip' or 'gpt2-embeddings', not {self.prompt_encoder!r}")
        if (self.prompt_encoder == "clip") != (self.clip is not None):
            raise ValueError("a 'clip' prompt encoder needs a ClipTextConfig, and only it")
        if self.prompt_encoder == "gpt2-embeddings" and self.prompt_tokens != self.mapper.prefix_length:
            raise ValueError("with GPT-2 token embeddings, prompt_tokens must equal the mapper's prefix_length")

    @property
    def prefix_tokens(self) -> int:
        """Positions the language model sees before the first generated token (80 when released)."""
        return 2 * self.mapper.prefix_length

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CONFIGS: dict[str, PengiConfig] = {
    "base": PengiConfig(),
    "base_no_text_enc": PengiConfig(prompt_encoder="gpt2-embeddings", clip=None),
}

#: the released checkpoint of each released configuration
RELEASED_CHECKPOINTS: dict[str, str] = {name: RELEASE_URL.format(name=name) for name in CONFIGS}

#: 2 s of 16 kHz audio (the synthetic suite's clips) as a 126 x 32 log-mel image; a three-stage
#: HTS-AT, a 3-layer GPT-2 with the suite's own 512-token vocabulary, 2 x 16 prefix vectors
CONFIGS["tiny"] = PengiConfig(
    audio=AudioConfig(sample_rate=16_000, clip_samples=32_000, mel_sample_rate=16_000, n_fft=400, hop_length=256,
                      n_mels=32, fmin=50.0, fmax=8_000.0, spec_size=64, embed_dim=32, depths=(2, 2, 2),
                      num_heads=(2, 4, 8), window_size=4, num_classes=21),
    prompt_encoder="gpt2-embeddings", clip=None, prompt_tokens=16,
    gpt2=GPT2Sizes(vocab_size=512, n_positions=96, n_embd=128, n_layer=3, n_head=4, eos_token_id=511),
    mapper=MapperConfig(prefix_length=16, num_layers=2, num_heads=4, mlp_ratio=2.0),
    d_proj=64,
)


def register_config(name: str, config: PengiConfig) -> None:
    """Add a named configuration (``--model-args config=NAME`` selects it)."""
    if name in CONFIGS and CONFIGS[name] != config:
        raise ValueError(f"a different Pengi configuration is already registered as {name!r}")
    CONFIGS[name] = config


def get_config(name: str) -> PengiConfig:
    if name not in CONFIGS:
        raise KeyError(name)
    return CONFIGS[name]
