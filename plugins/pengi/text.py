"""Tokenisation as the released model does it, and the text encoders ``embed_text`` can use."""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from alm_bench.errors import UsageError

#: appended to a GPT-2 prompt by the reference; its first token (" ", id 220) is the stop token
END_OF_TEXT = " <|endoftext|>"
DEFAULT_SENTENCE_MODEL = "all-mpnet-base-v2"  # the RPG paper's MPNet alternative


@functools.lru_cache(maxsize=8)
def _from_pretrained(name: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


def load_tokenizer(name: str, role: str, arg: str):
    """A Hugging Face tokenizer from the Hub or a local directory (loaded once per process; only read,
    never changed), or one clear error line."""
    try:
        return _from_pretrained(name)
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot load the {role} tokenizer {name!r} ({reason}); "
                         f"pass --model-args {arg}=DIR with a local copy") from None


class PromptTokenizer:
    """Prompt text -> (input_ids, attention_mask), each [B, length].

    ``clip``: the CLIP tokenizer, padded (with its pad token) or cut to ``length``, end-of-text kept.
    ``gpt2-embeddings``: GPT-2 tokens of ``prompt + " <|endoftext|>"``, cut to ``length`` and padded with
    ``!`` (id 0), as the reference does (its mapper takes no mask, so the padding is seen)."""

    def __init__(self, kind: str, tokenizer, length: int) -> None:
        self.kind, self.tokenizer, self.length = kind, tokenizer, length
        self.eos_token_id = tokenizer.eos_token_id
        if kind == "gpt2-embeddings":
            self.pad_id = tokenizer.convert_tokens_to_ids("!")

    def __call__(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "clip":
            enc = self.tokenizer(list(prompts), max_length=self.length, padding="max_length", truncation=True,
                                 return_tensors="pt")
            return enc["input_ids"], enc["attention_mask"]
        rows = [self.tokenizer(p + END_OF_TEXT)["input_ids"][: self.length] for p in prompts]
        ids = torch.full((len(rows), self.length), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return ids, mask


def target_tokens(decoder_tokenizer, text: str, stop_token: int, room: int) -> list[int]:
    """What beam search must emit to output ``text``: its tokens (at most ``room`` - 1), then the stop
    token.  Scoring a candidate and training on a target both use it."""
    return decoder_tokenizer(text.strip())["input_ids"][: room - 1] + [stop_token]


def stop_token_id(decoder_tokenizer) -> int:
    """The reference's stop token: the first id of ``" <|endoftext|>"`` (220, a space)."""
    return decoder_tokenizer.encode(END_OF_TEXT)[0]


# -- text encoders for text matching and retrieval ---------------------------------------------
TextEncoderFn = Callable[[Sequence[str]], np.ndarray]


def clip_text_encoder(network, prompt_tokenizer: PromptTokenizer, device: Callable[[], str]) -> TextEncoderFn:
    """Pengi's own (``get_prompt_embeddings``): CLIP tower + projection, L2-normalised, 1024-d."""

    @torch.no_grad()
    def encode(texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 64):
            ids, mask = prompt_tokenizer(texts[start : start + 64])
            emb = network.caption_encoder(ids.to(device()), mask.to(device()), prompt_tokenizer.eos_token_id)
            out.append(F.normalize(emb, dim=-1).float().cpu().numpy())
        return np.concatenate(out)

    return encode


def gpt2_text_encoder(network, tokenizer, device: Callable[[], str]) -> TextEncoderFn:
    """The RPG paper's GPT-2 alternative: Pengi's (frozen, so stock) GPT-2, last hidden states
    averaged over the text's tokens (an empty text is read as ``<|endoftext|>``)."""

    @torch.no_grad()
    def encode(texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 64):
            rows = [tokenizer(t)["input_ids"] or [tokenizer.eos_token_id] for t in texts[start : start + 64]]
            longest = max(len(r) for r in rows)
            ids = torch.zeros(len(rows), longest, dtype=torch.long)
            mask = torch.zeros(len(rows), longest)
            for i, r in enumerate(rows):  # right padding: causal attention keeps it out of real tokens
                ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
            hidden = network.gpt.transformer(input_ids=ids.to(device())).last_hidden_state
            mask = mask.to(hidden.device)[..., None]
            out.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
        return np.concatenate(out)

    return encode


def sentence_transformer_encoder(name: str | None) -> TextEncoderFn:
    """A sentence-transformers model (the RPG paper's all-mpnet-base-v2 by default)."""
    from alm_bench.text_encoders import SentenceTransformerEncoder

    try:
        encoder = SentenceTransformerEncoder(name or DEFAULT_SENTENCE_MODEL)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load the sentence-transformers model {name or DEFAULT_SENTENCE_MODEL!r} "
                         f"({str(exc).splitlines()[0]}); pass text_encoder=sentence-transformers:DIR") from None
    return lambda texts: np.asarray(encoder.encode(list(texts)), dtype=np.float32)
