"""The APT network: frozen Audio-MAE, the Q-Former aligner, the projection and the audio-indicator token.

Attribute names follow ``lam_vicuna_instruct`` (``audio_encoder.model``, ``ln_audio``, ``query_tokens``,
``llm_proj``, ``audio_indicator_token``); the Q-Former is transformers' InstructBLIP Q-Former (BERT
layers with query-only feed-forward branches and cross-attention every other layer), which is LAVIS's
``Qformer.bert`` under other key names (``checkpoint`` translates).  The language model is held by
the alm-bench model, not here: it is frozen and never part of an APT checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import InstructBlipQFormerConfig, InstructBlipQFormerModel

from .audio_encoder import AudioEncoder
from .config import AptConfig


def qformer_config(cfg: AptConfig) -> InstructBlipQFormerConfig:
    q = cfg.qformer
    return InstructBlipQFormerConfig(
        vocab_size=q.vocab_size, hidden_size=q.hidden, num_hidden_layers=q.layers, num_attention_heads=q.heads,
        intermediate_size=q.intermediate, max_position_embeddings=q.max_positions,
        cross_attention_frequency=q.cross_attention_freq, encoder_hidden_size=cfg.encoder.hidden,
        layer_norm_eps=1e-12, pad_token_id=0)


class AptNetwork(nn.Module):
    def __init__(self, cfg: AptConfig, llm_width: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio_encoder = AudioEncoder(cfg.encoder).requires_grad_(False)  # frozen, as in the paper
        self.ln_audio = nn.LayerNorm(cfg.encoder.hidden)
        self.qformer = InstructBlipQFormerModel(qformer_config(cfg))
        self.query_tokens = nn.Parameter(torch.randn(1, cfg.qformer.queries, cfg.qformer.hidden) * 0.02)
        self.llm_proj = nn.Linear(cfg.qformer.hidden, llm_width)
        self.audio_indicator_token = nn.Parameter(torch.randn(1, 1, llm_width) * 0.02)

    def encode_audio(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One waveform -> (``ln_audio`` of its patch embeddings [segments, patches, d], pooled [segments, d])."""
        patches, pooled = self.audio_encoder(wave)
        return self.ln_audio(patches), pooled

    def queries(self, audio: torch.Tensor, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Q-Former outputs of the queries, reading one instruction: [segments, patches, d] audio and
        [1, L] text -> [segments * queries, qformer hidden] (segments concatenated, as the paper)."""
        n = len(audio)
        queries = self.query_tokens.expand(n, -1, -1)
        mask = torch.cat((torch.ones(n, queries.shape[1], dtype=text_mask.dtype, device=audio.device),
                          text_mask.expand(n, -1)), dim=1)
        out = self.qformer(input_ids=text_ids.expand(n, -1), attention_mask=mask, query_embeds=queries,
                           encoder_hidden_states=audio,
                           encoder_attention_mask=torch.ones(audio.shape[:2], dtype=torch.long, device=audio.device))
        return out.last_hidden_state[:, : queries.shape[1]].reshape(-1, queries.shape[-1])

    def audio_tokens(self, audio: torch.Tensor, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """``<AUDIO>`` then the projected queries: [1 + segments * queries, llm width]."""
        projected = self.llm_proj(self.queries(audio, text_ids, text_mask))
        return torch.cat((self.audio_indicator_token[0].to(projected.dtype), projected))

    def text_embedding(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The Q-Former's text side (no queries, no audio): masked mean of its last layer, [B, d]."""
        hidden = self.qformer(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask[..., None].to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
