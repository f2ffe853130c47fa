"""The clap plugin: LAION-CLAP and Microsoft CLAP through their real loading code at tiny random sizes,
and clap-tiny, the shipped contrastive model, with zero-shot classification by shared embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from alm_bench import check_model
from alm_bench.audio import decode
from alm_bench.errors import UsageError
from alm_bench.protocol import Clip
from alm_bench.results import read_records, result_path
from alm_bench.runner import RunConfig, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHARED = Path(__file__).resolve().parents[2] / "shared"
GPT2_TOKENIZER = SHARED / "assets" / "gpt2-tokenizer"


def clips(n: int, rate: int, seconds: float) -> list[Clip]:
    rng = np.random.default_rng(0)
    return [Clip((0.1 * rng.standard_normal(int(rate * seconds * (1 + i / n)))).astype(np.float32), f"c{i}")
            for i in range(n)]


# -- LAION-CLAP (transformers ClapModel) ---------------------------------------------------------------
@pytest.fixture(scope="module")
def laion_dir(tmp_path_factory) -> Path:
    """A tiny random ClapModel saved as a Hub checkpoint is: config, weights, tokenizer, feature extractor."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    from tests.hf_tiny import tokenizer

    tok = tokenizer(["<pad>", "<s>", "</s>"])
    tok.bos_token, tok.eos_token, tok.pad_token = "<s>", "</s>", "<pad>"
    audio = dict(spec_size=64, num_mel_bins=16, patch_embeds_hidden_size=8, hidden_size=16, depths=[1, 1],
                 num_attention_heads=[1, 2], window_size=4, projection_hidden_size=16, enable_fusion=False)
    text = dict(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32, projection_hidden_size=16, max_position_embeddings=40,
                pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=8)).eval()
    path = tmp_path_factory.mktemp("laion-tiny")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    ClapFeatureExtractor(feature_size=16, sampling_rate=16_000, hop_length=160, max_length_s=2,
                         truncation="rand_trunc").save_pretrained(path)
    return path


def test_laion_clap_embeds_as_clapmodel_does_and_records_its_audio_settings(laion_dir):
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

    from alm_bench_plugins.clap import LaionClap

    model = LaionClap(checkpoint=str(laion_dir))
    assert model.audio_format.sample_rate == 16_000 and model.audio_format.max_seconds == 2.0
    config = model.config()
    assert config["audio"]["sample_rate"] == 16_000 and config["fusion"] is False
    assert config["audio"]["truncation"] == "rand_trunc"
    batch = clips(3, 16_000, 1.0)
    audio, text = model.embed(batch), model.embed_text(["a dog barks", "rain"])
    assert audio.shape == (3, 8) and text.shape == (2, 8)
    # the same numbers as transformers' own pipeline, each clip alone
    reference = ClapModel.from_pretrained(laion_dir).eval()
    extractor = ClapFeatureExtractor.from_pretrained(laion_dir)
    with torch.no_grad():
        one = extractor([batch[1].waveform], sampling_rate=16_000, return_tensors="pt")
        expected = reference.get_audio_features(**one).pooler_output[0].numpy()
        tokens = AutoTokenizer.from_pretrained(laion_dir)(["rain"], return_tensors="pt")
        expected_text = reference.get_text_features(**tokens).pooler_output[0].numpy()
    np.testing.assert_allclose(audio[1], expected, atol=1e-5)
    np.testing.assert_allclose(text[1], expected_text, atol=1e-5)
    assert all(r.passed for r in check_model(model, plugin="clap")), "conformance checks fail"


def test_an_unreachable_hub_checkpoint_is_one_line(monkeypatch):
    from alm_bench_plugins.clap import LaionClap

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError) as error:
        LaionClap(checkpoint="laion/no-such-clap-for-alm-bench")
    assert "cannot get the CLAP checkpoint laion/no-such-clap-for-alm-bench" in str(error.value)
    assert "\n" not in str(error.value)


# -- Microsoft CLAP (msclap's released layout) -----------------------------------------------------------
def test_msclap_loads_its_released_layout_and_pools_gpt2_at_the_last_token(tmp_path):
    from transformers import AutoTokenizer

    from alm_bench_plugins.clap import msclap
    from alm_bench_plugins.pengi.config import CONFIGS as PENGI, GPT2Sizes

    tiny = msclap.MsClapConfig(audio=PENGI["tiny"].audio, d_proj=8, text_len=12, tokenizer=str(GPT2_TOKENIZER),
                               gpt2=GPT2Sizes(vocab_size=50_257, n_positions=32, n_embd=16, n_layer=1, n_head=2))
    msclap.register_config("test-tiny", tiny)
    torch.manual_seed(0)
    state = msclap.MsClapNetwork(tiny).state_dict()
    # as msclap saves it: under "model", DDP's prefix, GPT-2's legacy causal-mask buffers
    released = {f"module.{k}": v for k, v in state.items()}
    released["module.caption_encoder.base.h.0.attn.bias"] = torch.ones(1, 1, 32, 32)
    for key in ("audio_encoder.base.htsat.patch_embed.proj.weight", "audio_encoder.projection.linear1.weight",
                "caption_encoder.base.wte.weight", "caption_encoder.projection.layer_norm.bias", "logit_scale"):
        assert key in state  # msclap's own names
    torch.save({"model": released}, tmp_path / "CLAP_weights_tiny.pth")
    model = msclap.MsClap(config="test-tiny", checkpoint=str(tmp_path / "CLAP_weights_tiny.pth"))
    assert model.audio_format.sample_rate == 16_000 and model.config()["version"] == "test-tiny"
    audio = model.embed(clips(2, 16_000, 1.5))
    assert audio.shape == (2, 8) and np.isfinite(audio).all()
    # the text vector: GPT-2's hidden state at the last non-"!" token of "text <|endoftext|>", projected
    tok = AutoTokenizer.from_pretrained(GPT2_TOKENIZER)
    ids = tok("a bell rings <|endoftext|>")["input_ids"]
    with torch.no_grad():
        hidden = model.network.caption_encoder.base(torch.tensor([ids])).last_hidden_state[0, -1]
        expected = model.network.caption_encoder.projection(hidden[None])[0].numpy()
    np.testing.assert_allclose(model.embed_text(["a bell rings"])[0], expected, atol=1e-5)
    assert all(r.passed for r in check_model(model, plugin="clap")), "conformance checks fail"
    # a checkpoint of another size: one line
    del released["module.logit_scale"]
    torch.save({"model": released}, tmp_path / "broken.pth")
    with pytest.raises(UsageError, match=r"1 missing \(e\.g\. logit_scale\)"):
        msclap.MsClap(config="test-tiny", checkpoint=str(tmp_path / "broken.pth"))


def test_msclap_2022_is_cnn14_and_bert_with_cls_pooling(tmp_path):
    from transformers import BertTokenizerFast

    from alm_bench_plugins.clap import msclap
    from alm_bench_plugins.pengi.config import AudioConfig

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "bell", "dog", "rings", "barks"]
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(str(tmp_path / "tok" / "vocab.txt")).save_pretrained(tmp_path / "tok")
    audio = AudioConfig(sample_rate=16_000, clip_samples=16_000, mel_sample_rate=16_000, n_fft=256, hop_length=128,
                        n_mels=16, fmax=8_000.0, num_classes=5)
    tiny = msclap.MsClapConfig(audio=audio, audio_encoder="Cnn14", text_model="bert", cnn14_widths=(4, 8), out_emb=8,
                               bert=dict(vocab_size=len(words), hidden_size=8, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=16, max_position_embeddings=16),
                               d_proj=6, text_len=8, tokenizer=str(tmp_path / "tok"))
    msclap.register_config("test-2022", tiny)
    torch.manual_seed(0)
    state = msclap.MsClapNetwork(tiny).state_dict()
    for key in ("audio_encoder.base.conv_block2.conv1.weight", "audio_encoder.base.fc1.weight",
                "audio_encoder.base.logmel_extractor.melW", "caption_encoder.base.pooler.dense.weight"):
        assert key in state  # msclap's own names
    state["caption_encoder.base.embeddings.position_ids"] = torch.arange(16)[None]  # as transformers 4 saved it
    torch.save({"model": state}, tmp_path / "CLAP_weights_tiny_2022.pth")
    model = msclap.MsClap(config="test-2022", checkpoint=str(tmp_path / "CLAP_weights_tiny_2022.pth"))
    assert model.config()["audio"]["encoder"] == "Cnn14" and model.audio_format.max_seconds == 1.0
    assert model.embed(clips(2, 16_000, 0.5)).shape == (2, 6)
    tokens = model.tokenizer(["a dog barks"], return_tensors="pt")
    with torch.no_grad():
        cls = model.network.caption_encoder.base(**tokens).last_hidden_state[:, 0]
        expected = model.network.caption_encoder.projection(cls)[0].numpy()
    np.testing.assert_allclose(model.embed_text(["a dog barks"])[0], expected, atol=1e-5)


# -- clap-tiny and zero-shot classification by embeddings ------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(registry, cache_dir, tmp_path_factory):
    """clap-tiny on a balanced sample of the synthetic classification and retrieval tasks."""
    out = tmp_path_factory.mktemp("clap-tiny")
    summary = run(RunConfig(model="clap-tiny", tasks="synth-events,synth-tagging,synth-retrieval", limit=60,
                            methods=("zero_shot_embedding", "retrieval_embedding"), output_dir=out,
                            cache_dir=cache_dir), registry)
    return {r.task: r for r in summary.results}, out


def test_clap_tiny_is_far_above_chance_zero_shot_and_in_retrieval(tiny_run):
    results, _ = tiny_run
    events, tagging, retrieval = (results[t] for t in ("synth-events", "synth-tagging", "synth-retrieval"))
    assert events.metrics["accuracy"] > events.chance["accuracy"] + 0.5, events.metrics
    assert tagging.metrics["mAP"] > tagging.chance["mAP"] + 0.4, tagging.metrics
    assert retrieval.metrics["t2a_R@10"] > retrieval.chance["t2a_R@10"] + 0.4, retrieval.metrics


def test_zero_shot_equals_the_cosine_argmax_of_the_models_own_embeddings(tiny_run, registry):
    from alm_bench_plugins.clap import ClapTinyModel

    results, out = tiny_run
    model = ClapTinyModel()
    for task in ("synth-events", "synth-tagging"):
        result = results[task]
        records = read_records(result_path(out, result))
        items = {item.id: item for item in _items(registry, task)}
        labels = result.details.get("labels") or list(registry.tasks[task].labels) or \
            sorted({label for item in items.values() for label in item.labels})
        audio = model.embed([Clip(decode(items[r["id"]].audio[0], model.audio_format), r["id"]) for r in records])
        text = model.embed_text([f"this is a sound of {label}" for label in labels])
        scores = (audio / np.linalg.norm(audio, axis=1, keepdims=True)) @ \
            (text / np.linalg.norm(text, axis=1, keepdims=True)).T
        if task == "synth-events":
            predicted = [labels[i] for i in scores.argmax(1)]
            assert [r["prediction"] for r in records] == predicted
            truth = [r["target"] for r in records]
            assert result.metrics["accuracy"] == pytest.approx(np.mean(np.array(predicted) == np.array(truth)))
        else:
            from sklearn.metrics import average_precision_score

            np.testing.assert_allclose(np.array([r["scores"] for r in records]), scores, atol=1e-5)
            targets = np.array([[label in r["target"] for label in labels] for r in records])
            keep = targets.any(0)
            expected = average_precision_score(targets[:, keep], scores[:, keep], average="macro")
            assert result.metrics["mAP"] == pytest.approx(expected, abs=1e-9)


def _items(registry, task):
    import os

    from alm_bench.data import synth_loader

    return synth_loader(registry.tasks[task], None, Path(os.environ["ALM_BENCH_CACHE"]))


def test_clap_tiny_records_its_training():
    import hashlib

    from alm_bench_plugins.clap.tiny import WEIGHTS, ClapTinyModel

    record = json.loads((WEIGHTS / "training.json").read_text())
    assert record["command"].startswith("python -m alm_bench_plugins.clap.training")
    assert hashlib.sha256((WEIGHTS / "model.pt").read_bytes()).hexdigest() == record["sha256"]
    assert (WEIGHTS / "model.pt").stat().st_size < 5_000_000
    assert ClapTinyModel().config()["training"]["sha256"] == record["sha256"]
