"""Text encoders selectable per run: sentence-transformers (offline MiniLM) and any HF model mean-pooled."""

import numpy as np
import pytest

from alm_bench.runner import RunConfig, Runner
from alm_bench.text_encoders import MeanPooledEncoder, SentenceTransformerEncoder

from .conftest import SHARED


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A small random-weight GPT-2 with the real GPT-2 tokenizer, saved as a local model directory."""
    from transformers import AutoTokenizer, GPT2Config, GPT2Model
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-gpt2")
    GPT2Model(GPT2Config(n_layer=2, n_head=2, n_embd=32)).save_pretrained(path)
    AutoTokenizer.from_pretrained(SHARED / "assets" / "gpt2-tokenizer").save_pretrained(path)
    return path


def test_mean_pooling_ignores_padding(tiny_gpt2):
    encoder = MeanPooledEncoder(str(tiny_gpt2))
    alone = encoder.encode(["a dog"])
    padded = encoder.encode(["a dog", "a much longer sentence about rain falling on a tin roof"])
    assert alone.shape == (1, 32) and np.allclose(alone[0], padded[0], atol=1e-5)


def test_minilm_loads_offline_and_ranks_related_text_higher():
    vectors = SentenceTransformerEncoder().encode(["a dog barking", "a puppy barks loudly", "rain on a roof"])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert vectors.shape[1] == 384 and vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_runner_selects_encoder_by_name(tiny_gpt2, registry, cache_dir, tmp_path):
    runner = Runner(RunConfig(model="chance", text_encoder=f"hf:{tiny_gpt2}", output_dir=tmp_path,
                              cache_dir=cache_dir), registry)
    encoded = runner.encode_texts(["beep", "bell", "beep"])
    assert encoded.shape == (3, 32) and np.allclose(np.linalg.norm(encoded, axis=1), 1.0)
    assert np.allclose(encoded[0], encoded[2])
    default = Runner(RunConfig(model="chance", output_dir=tmp_path, cache_dir=cache_dir), registry)
    assert default.text_encoder_name() == "model"  # chance has its own encoder
