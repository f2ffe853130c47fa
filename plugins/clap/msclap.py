"""``msclap``: Microsoft CLAP (Elizalde et al., 2023), the CLAP of the Pengi paper's tables, loaded from
its released checkpoints (``microsoft/msclap`` on the Hub, ``CLAP_weights_2023.pth``) key for key.

The 2023 model is HTS-AT + GPT-2: the audio side is exactly Pengi's audio encoder (Pengi reuses it), so
the ``pengi`` plugin's implementation serves here with the same configuration; the text side is
transformers' ``GPT2Model`` whose hidden state at the last non-``!`` token (msclap pads with ``!``,
id 0, and appends `` <|endoftext|>`` to every text) goes through a projection into the 1024-d space.
Checkpoints hold ``{"model": state_dict}`` in msclap's layout (``audio_encoder.base.htsat.*``,
``audio_encoder.projection.*``, ``caption_encoder.base.*``, ``caption_encoder.projection.*``,
``logit_scale``); GPT-2's legacy causal-mask buffers are dropped by name and every other key must fit.

Audio as msclap prepares it (44.1 kHz, 7 s: a shorter clip is repeated and cut, a longer one cropped),
except that the crop keeps the clip's first 7 s rather than a random window, so runs repeat.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from alm_bench import AudioFormat, Capabilities, Model
from alm_bench.errors import UsageError
from alm_bench_plugins.pengi.audio_encoder import AudioEncoder
from alm_bench_plugins.pengi.checkpoint import read_state_dict, sha256_file
from alm_bench_plugins.pengi.config import AudioConfig, GPT2Sizes
from alm_bench_plugins.pengi.mapper import Projection
from alm_bench_plugins.pengi.model import fit_to_clip

from .weights import hub_file

REPO = "microsoft/msclap"
RELEASED = {"2023": "CLAP_weights_2023.pth"}
PAD_TOKEN = "!"  # msclap's pad token for GPT-2: id 0, and the pooled position is the last non-zero id
LEGACY_KEY = re.compile(r"^caption_encoder\.base\.h\.\d+\.attn\.(bias|masked_bias)$|position_ids$")


@dataclass(frozen=True)
class MsClapConfig:
    audio: AudioConfig = field(default_factory=AudioConfig)
    gpt2: GPT2Sizes = field(default_factory=GPT2Sizes)
    d_proj: int = 1024
    text_len: int = 77
    tokenizer: str = "gpt2"


CONFIGS: dict[str, MsClapConfig] = {"2023": MsClapConfig()}


def register_config(name: str, config: MsClapConfig) -> None:
    """Add a named configuration (tests register tiny ones); ``--model-args config=NAME`` picks it."""
    CONFIGS[name] = config


class TextEncoder(nn.Module):
    def __init__(self, cfg: MsClapConfig) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2Model

        g = cfg.gpt2
        self.base = GPT2Model(GPT2Config(vocab_size=g.vocab_size, n_positions=g.n_positions, n_embd=g.n_embd,
                                         n_layer=g.n_layer, n_head=g.n_head))
        self.projection = Projection(g.n_embd, cfg.d_proj)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = torch.ne(input_ids, 0).sum(-1) - 1
        return self.projection(hidden[torch.arange(len(input_ids), device=hidden.device), last])


class MsClapNetwork(nn.Module):
    def __init__(self, cfg: MsClapConfig) -> None:
        super().__init__()
        self.audio_encoder = AudioEncoder(cfg.audio, cfg.d_proj)
        self.caption_encoder = TextEncoder(cfg)
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))


def load_released(network: MsClapNetwork, state: dict) -> None:
    """A msclap-layout state dict into the network; a missing or unexpected key is one clear line."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not LEGACY_KEY.search(k)}
    try:
        result = network.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise UsageError(f"the checkpoint does not fit this msclap configuration: {detail}") from None
    problems = [f"{len(keys)} {kind} (e.g. {keys[0]})" for kind, keys in
                (("missing", result.missing_keys), ("unexpected", result.unexpected_keys)) if keys]
    if problems:
        raise UsageError("the checkpoint does not fit this msclap configuration: " + ", ".join(problems) +
                         "; pass the matching version= or config=")


class MsClap(Model):
    """Microsoft CLAP 2023 (HTS-AT + GPT-2) from its released checkpoint."""

    name = "msclap"
    capabilities = Capabilities(embed=True, text_encoder=True, shared_space=True)
    description = "Microsoft CLAP 2023 (HTS-AT + GPT-2), released msclap checkpoint (version=2023)"

    def __init__(self, version: str = "2023", checkpoint: str | None = None, config: str | None = None,
                 tokenizer: str | None = None) -> None:
        from transformers import AutoTokenizer

        name = config or version
        if name not in CONFIGS:
            raise UsageError(f"unknown msclap version {name!r}; known: {', '.join(CONFIGS)}")
        self.version, self.cfg = name, CONFIGS[name]
        if checkpoint is None and name not in RELEASED:
            raise UsageError(f"msclap configuration {name!r} has no released checkpoint; pass checkpoint=PATH")
        path = Path(checkpoint).expanduser() if checkpoint else Path(hub_file(REPO, RELEASED[name], "msclap weights"))
        if not path.is_file():
            raise UsageError(f"msclap checkpoint {checkpoint} not found; download {REPO}/{RELEASED['2023']} "
                             "from the Hugging Face Hub or omit checkpoint= to fetch it")
        self.checkpoint, self.sha256 = checkpoint or f"hf://{REPO}/{RELEASED[name]}", sha256_file(path)
        self.network = MsClapNetwork(self.cfg).eval()
        load_released(self.network, read_state_dict(path, trusted=checkpoint is None))
        self.tokenizer_name = tokenizer or self.cfg.tokenizer
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_name)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot load the msclap tokenizer {self.tokenizer_name!r} ({str(exc).splitlines()[0]}); "
                             "pass --model-args tokenizer=DIR with a local copy of GPT-2's tokenizer") from None
        self.tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        audio = self.cfg.audio
        self.audio_format = AudioFormat(sample_rate=audio.sample_rate, max_seconds=audio.clip_samples / audio.sample_rate)
        self.device = "cpu"

    def config(self):
        audio = self.cfg.audio
        return {"version": self.version, "checkpoint": self.checkpoint, "sha256": self.sha256,
                "tokenizer": self.tokenizer_name, "d_proj": self.cfg.d_proj, "text_len": self.cfg.text_len,
                "audio": {"sample_rate": audio.sample_rate, "seconds": audio.clip_samples / audio.sample_rate,
                          "short_clips": "repeated and cut", "long_clips": "first window", "fusion": False},
                "sizes": dataclasses.asdict(self.cfg)}

    def to(self, device: str) -> "MsClap":
        self.network.to(device)
        self.device = device
        return self

    def embed(self, clips):
        samples = self.cfg.audio.clip_samples
        wave = torch.from_numpy(np.stack([fit_to_clip(c.waveform, samples) for c in clips])).to(self.device)
        with torch.inference_mode():
            return self.network.audio_encoder(wave)[1].float().cpu().numpy()

    def embed_text(self, texts):
        tokens = self.tokenizer([f"{t} <|endoftext|>" for t in texts], max_length=self.cfg.text_len,
                                padding="max_length", truncation=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            return self.network.caption_encoder(tokens["input_ids"], tokens["attention_mask"]).float().cpu().numpy()
