"""The ``hf`` model on tiny random checkpoints of three transformers architectures (Qwen2-Audio,
Audio Flamingo 3, GLM-ASR), each saved to a directory and loaded through ``--model-args checkpoint=DIR``:
every capability passes ``check_model``; ``score`` is the plain full-forward log-likelihood of the
same chat text; ``generate`` is transformers' own ``generate`` on the same inputs; ``embed`` pools
exactly the audio frames the language model receives."""

import numpy as np
import pytest
import torch

from alm_bench import GenerateRequest, GenerationConfig, ScoreRequest, check_model
from alm_bench.checks import synthetic_clips
from alm_bench.cli import parse_model_args
from alm_bench.errors import UsageError
from alm_bench.runner import RunConfig, run

from .hf_tiny import ARCHITECTURES, build

PROMPT = "what do you hear?"
CANDIDATES = ("dog", "a car engine starting", "sine tone")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory, registry):
    """Each architecture built once, saved, and loaded by the registry as a run loads it."""
    out = {}
    for arch in ARCHITECTURES:
        directory = build(arch, tmp_path_factory.mktemp(arch))
        out[arch] = registry.load_model("hf", parse_model_args(f"checkpoint={directory}"))
        out[arch].directory = directory
    return out


@pytest.fixture(scope="module")
def clips(models):
    return synthetic_clips(next(iter(models.values())).audio_format)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_capability_passes_check_model(models, arch):
    model = models[arch]
    assert model.model_type == arch
    assert model.audio_format.sample_rate == 16_000 and model.audio_format.max_seconds >= 30
    # AF3's and GLM-ASR's processors take one clip per text: not offered several clips in one request
    assert model.capabilities.interleaved == (arch == "qwen2_audio")
    results = check_model(model)
    assert [r.name for r in results if not r.passed] == [], [r.line() for r in results]
    assert {r.name for r in results} >= {"generate_batching_and_determinism", "score_batching_and_determinism",
                                         "embed_batching_and_determinism"}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_score_is_the_full_forward_log_likelihood_of_the_chat_text(models, clips, arch):
    model = models[arch]
    scores = model.score([ScoreRequest(clips[2], PROMPT, CANDIDATES)])[0]
    inputs = model.processor.apply_chat_template(model.messages((clips[2], PROMPT)), add_generation_prompt=True,
                                                 tokenize=True, return_dict=True, return_tensors="pt")
    prompt = inputs["input_ids"]
    expected = []
    for candidate in CANDIDATES:
        answer = model.tokenizer.encode(candidate, add_special_tokens=False) + [model.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        ids = torch.cat([prompt, torch.tensor([answer])], dim=1)
        full = {**inputs, "input_ids": ids, "attention_mask": torch.ones_like(ids)}
        with torch.no_grad():
            logp = torch.log_softmax(model.net(**full).logits[0].double(), dim=-1)
        positions = range(prompt.shape[1] - 1, ids.shape[1] - 1)
        expected.append(sum(float(logp[p, ids[0, p + 1]]) for p in positions))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-4)
    assert len(set(np.round(scores, 3))) == len(CANDIDATES)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_generate_is_transformers_generate_on_the_same_inputs(models, clips, arch):
    model = models[arch]
    request = GenerateRequest.single(clips[1], PROMPT)
    inputs = model.processor.apply_chat_template(model.messages(request.content), add_generation_prompt=True,
                                                 tokenize=True, return_dict=True, return_tensors="pt")

    def reference(**kwargs):
        with torch.no_grad():
            tokens = model.net.generate(**inputs, **kwargs)[0, inputs["input_ids"].shape[1]:]
        return model.tokenizer.decode(tokens, skip_special_tokens=True).strip(), len(tokens)

    # the run's settings ...
    text, _ = reference(max_new_tokens=6, num_beams=2, do_sample=False)
    assert model.generate([request], GenerationConfig(num_beams=2, max_new_tokens=6))[0] == text
    # ... and, where the run leaves them unset, the checkpoint's generation_config (greedy, 12 new tokens)
    text, length = reference()
    assert model.generate([request], GenerationConfig())[0] == text and length == 12
    # the results record those settings: the run's where given, the checkpoint's elsewhere
    given = model.generation_settings(GenerationConfig(num_beams=2, max_new_tokens=6))
    own = model.generation_settings(GenerationConfig())
    assert (given["num_beams"], given["max_new_tokens"], given["search"]) == (2, 6, "beam search")
    assert (own["num_beams"], own["max_new_tokens"], own["search"]) == (1, 12, "greedy")


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_embed_pools_the_audio_frames_the_language_model_receives(models, clips, arch):
    """The vectors the model writes into its placeholder positions, captured on their way into the
    language model in a full forward pass, averaged: the frames of padding never enter."""
    model = models[arch]
    captured = {}
    hook = model.net.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: captured.update(kwargs), with_kwargs=True)
    try:
        inputs = model.processor.apply_chat_template(model.messages((clips[0],)), tokenize=True, return_dict=True,
                                                     return_tensors="pt")
        with torch.no_grad():
            model.net(**inputs)
    finally:
        hook.remove()
    placeholders = inputs["input_ids"][0] == model.net.config.audio_token_id
    assert 0 < int(placeholders.sum()) < 100  # a 1 s clip: far fewer frames than the 30 s window
    expected = captured["inputs_embeds"][0, placeholders].mean(dim=0).numpy()
    np.testing.assert_allclose(model.embed(clips[:1])[0], expected, rtol=1e-5, atol=1e-5)


def test_interleaved_clips_and_texts_reach_the_template_in_order(models, clips):
    model = models["qwen2_audio"]
    content = (clips[0], "first clip.", clips[1], "which clip is longer?")
    text = model.processor.apply_chat_template(model.messages(content), add_generation_prompt=True, tokenize=False)
    assert text.index("Audio 1:") < text.index("first clip.") < text.index("Audio 2:") < text.index("which clip")
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.")  # the template's own system turn
    model.system_prompt = "answer in one word"
    try:
        text = model.processor.apply_chat_template(model.messages(content), add_generation_prompt=True, tokenize=False)
    finally:
        model.system_prompt = None
    assert text.startswith("<|im_start|>system\nanswer in one word<|im_end|>\n<|im_start|>user\nAudio 1:")
    two = model.generate([GenerateRequest(content)], GenerationConfig(max_new_tokens=4))[0]
    assert two == model.generate([GenerateRequest(content)], GenerationConfig(max_new_tokens=4))[0]


def test_runs_offer_two_clip_questions_only_to_architectures_that_take_two_clips(models, registry, cache_dir,
                                                                               tmp_path):
    """The runner reads each instance's capabilities: the same ``hf`` model class answers two-clip
    questions with Qwen2-Audio and skips them, with the reason, with Audio Flamingo 3."""
    def two_clip(arch):
        config = RunConfig(model="hf", model_args={"checkpoint": str(models[arch].directory)}, tasks="synth-compare",
                           limit=2, generation=GenerationConfig(max_new_tokens=4), cache_dir=cache_dir, output_dir=tmp_path / arch)
        return run(config, registry)

    ran = two_clip("qwen2_audio")
    assert [(r.method, r.n_items, r.n_failed) for r in ran.results] == [("two_clip", 2, 0)]
    skipped = two_clip("audioflamingo3")
    assert not skipped.results and "lacks capability interleaved" in skipped.skipped[0].reason


def test_a_missing_checkpoint_is_one_usage_error(registry, tmp_path):
    with pytest.raises(UsageError, match="checkpoint=HUB_ID_OR_DIR"):
        registry.load_model("hf", {})
    with pytest.raises(UsageError, match=r"is not an audio chat model.*checkpoint=DIR"):
        registry.load_model("hf", {"checkpoint": str(tmp_path)})
