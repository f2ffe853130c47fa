"""The Pengi network (``torch.nn.Module``), built from a :class:`PengiConfig` with nothing downloaded.

Layout and names are the released state dict's: ``audio_encoder`` (HTS-AT + projection),
``caption_encoder`` (CLIP text tower + projections; ``base`` only) and ``caption_decoder`` (GPT-2 and the
two mapping networks).  The GPT-2 and CLIP modules are transformers' own, built from configs in code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, GPT2Config, GPT2LMHeadModel

from .audio_encoder import AudioEncoder, init_htsat_weights
from .config import ClipTextConfig, PengiConfig
from .mapper import Projection, TransformerMapper


def gpt2_config(cfg: PengiConfig) -> GPT2Config:
    g = cfg.gpt2
    return GPT2Config(vocab_size=g.vocab_size, n_positions=g.n_positions, n_embd=g.n_embd, n_layer=g.n_layer,
                      n_head=g.n_head, bos_token_id=g.eos_token_id, eos_token_id=g.eos_token_id)


def clip_text_config(c: ClipTextConfig) -> CLIPTextConfig:
    return CLIPTextConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                          num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads,
                          max_position_embeddings=c.max_positions, projection_dim=c.projection_dim,
                          hidden_act=c.hidden_act, bos_token_id=c.vocab_size - 2, eos_token_id=c.vocab_size - 1)


class TextEncoder(nn.Module):
    """CLIP text tower -> pooled (first end-of-text position) -> ``text_projection`` -> Projection."""

    def __init__(self, c: ClipTextConfig, d_proj: int) -> None:
        super().__init__()
        self.base = CLIPTextModel(clip_text_config(c))
        self.clip_text_projection = nn.Linear(c.hidden_size, c.projection_dim, bias=False)
        self.projection = Projection(c.projection_dim, d_proj)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, eos_token_id: int) -> torch.Tensor:
        hidden = self.base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # the first end-of-text token: CLIP's own pooling when the pad token is end-of-text too
        eos = (input_ids == eos_token_id).int().argmax(-1)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), eos]
        return self.projection(self.clip_text_projection(pooled))


class CaptionDecoder(nn.Module):
    def __init__(self, cfg: PengiConfig) -> None:
        super().__init__()
        self.gpt = GPT2LMHeadModel(gpt2_config(cfg))
        dim = cfg.gpt2.n_embd
        self.audio_project = TransformerMapper(cfg.d_proj, dim, cfg.mapper)
        self.text_project = TransformerMapper(cfg.d_proj if cfg.prompt_encoder == "clip" else None, dim, cfg.mapper)


class PengiNetwork(nn.Module):
    def __init__(self, cfg: PengiConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio_encoder = AudioEncoder(cfg.audio, cfg.d_proj)
        self.caption_encoder = TextEncoder(cfg.clip, cfg.d_proj) if cfg.prompt_encoder == "clip" else None
        self.caption_decoder = CaptionDecoder(cfg)
        init_htsat_weights(self.audio_encoder.base)

    @property
    def gpt(self) -> GPT2LMHeadModel:
        return self.caption_decoder.gpt

    def encode_audio(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, clip_samples] -> (HTS-AT latent [B, num_features], projection [B, d_proj])"""
        return self.audio_encoder(wave)

    def encode_prompt(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, eos_token_id: int) -> torch.Tensor:
        """Prompt tokens -> the text mapper's input: [B, d_proj] (CLIP) or [B, k, n_embd] (GPT-2 embeddings)."""
        if self.caption_encoder is not None:
            return self.caption_encoder(input_ids, attention_mask, eos_token_id)
        return self.gpt.transformer.wte(input_ids)

    def prefix(self, audio_embed: torch.Tensor, prompt_embed: torch.Tensor, normalize_prompt: bool = False) -> torch.Tensor:
        """The language model's prefix [B, 2k, n_embd]: audio prefix then text prefix.

        The audio embedding is L2-normalised; the CLIP prompt embedding only with ``normalize_prompt``
        (training did, the released inference wrapper does not)."""
        audio = self.caption_decoder.audio_project(F.normalize(audio_embed, dim=-1))
        if normalize_prompt and self.caption_encoder is not None:
            prompt_embed = F.normalize(prompt_embed, dim=-1)
        return torch.cat((audio, self.caption_decoder.text_project(prompt_embed)), dim=1)

    def caption_loss(self, audio: torch.Tensor, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                     target_ids: torch.Tensor, target_mask: torch.Tensor, eos_token_id: int,
                     normalize_prompt: bool = True) -> torch.Tensor:
        """Mean cross-entropy of the target tokens after the prefix (Pengi's training objective).

        ``audio`` is the audio projection (:meth:`encode_audio`'s second output); ``target_mask`` marks
        the real target tokens (text + stop token); padding is not scored."""
        prefix = self.prefix(audio, self.encode_prompt(prompt_ids, prompt_mask, eos_token_id), normalize_prompt)
        embeds = torch.cat((prefix, self.gpt.transformer.wte(target_ids)), dim=1)
        logits = self.gpt(inputs_embeds=embeds).logits[:, prefix.shape[1] - 1 : -1]
        losses = F.cross_entropy(logits.transpose(1, 2), target_ids, reduction="none")
        mask = target_mask.to(losses.dtype)
        return (losses * mask).sum() / mask.sum().clamp(min=1)
