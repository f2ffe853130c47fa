"""The networks of Microsoft CLAP in msclap's released layout (``msclap`` loads them; torch is imported
only when a model is built)."""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import nn

from alm_bench.errors import UsageError
from alm_bench_plugins.pengi.audio_encoder import AudioEncoder
from alm_bench_plugins.pengi.mapper import Projection

from .cnn14 import Cnn14
from .msclap import MsClapConfig

LEGACY_KEY = re.compile(r"^caption_encoder\.base\.h\.\d+\.attn\.(bias|masked_bias)$|position_ids$")


class Cnn14Encoder(nn.Module):
    """msclap's AudioEncoder around Cnn14: (latent, projected)."""

    def __init__(self, cfg: MsClapConfig) -> None:
        super().__init__()
        self.base = Cnn14(cfg.audio, cfg.cnn14_widths, cfg.out_emb)
        self.projection = Projection(cfg.out_emb, cfg.d_proj)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent, _ = self.base(wave)
        return latent, self.projection(latent)


class TextEncoder(nn.Module):
    def __init__(self, cfg: MsClapConfig) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

        self.kind = cfg.text_model
        if self.kind == "gpt2":
            g = cfg.gpt2
            self.base = GPT2Model(GPT2Config(vocab_size=g.vocab_size, n_positions=g.n_positions, n_embd=g.n_embd,
                                             n_layer=g.n_layer, n_head=g.n_head))
            width = g.n_embd
        else:
            self.base = BertModel(BertConfig(**cfg.bert))
            width = self.base.config.hidden_size
        self.projection = Projection(width, cfg.d_proj)

    def forward(self, tokens: dict) -> torch.Tensor:
        hidden = self.base(**tokens).last_hidden_state
        if self.kind == "gpt2":  # the last token before msclap's "!" padding (id 0)
            pooled = hidden[torch.arange(len(hidden), device=hidden.device), torch.ne(tokens["input_ids"], 0).sum(-1) - 1]
        else:  # BERT's [CLS]
            pooled = hidden[:, 0]
        return self.projection(pooled)


class MsClapNetwork(nn.Module):
    def __init__(self, cfg: MsClapConfig) -> None:
        super().__init__()
        self.audio_encoder = AudioEncoder(cfg.audio, cfg.d_proj) if cfg.audio_encoder == "HTSAT" else Cnn14Encoder(cfg)
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
