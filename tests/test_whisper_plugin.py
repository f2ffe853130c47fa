"""alm-bench-whisper, the first third-party model plugin: a real Whisper on real recordings.

The model is ../shared/assets/whisper-tiny.en (the weights of `openai/whisper-tiny.en`), the task
fsdd-digits on ../shared/data/fsdd, run through the runner as a user runs it.  Most of the file's
time is one pass of Whisper's encoder over a 30-clip sample (every digit 3 times, every speaker 5
times, no (speaker, digit) twice), each clip a 30 s window (0.3 to 0.6 s a clip on two cores; the
model keeps encoder states, so the three methods share that pass), the greedy transcripts of text
matching, and the probe's 6 folds.  The leaderboard
row (`--limit 200`) is rebuilt by leaderboard/reproduce.sh, not here.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from alm_bench import Clip, ScoreRequest, check_model
from alm_bench.errors import UsageError
from alm_bench.runner import RunConfig, run

from .conftest import SHARED

CHECKPOINT = SHARED / "assets" / "whisper-tiny.en"
FSDD = SHARED / "data" / "fsdd"
PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "alm-bench-whisper"
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

INSTALLED = importlib.util.find_spec("alm_bench_whisper") is not None
#: the real model on real audio: the installed package, the weights and the recordings
needs_model = pytest.mark.skipif(
    not INSTALLED or not (CHECKPOINT / "model.safetensors").exists() or not (FSDD / "recordings").is_dir(),
    reason="needs alm-bench-whisper installed (pip install -e plugins/alm-bench-whisper), "
           "../shared/assets/whisper-tiny.en and ../shared/data/fsdd (see ../shared/README.md)")


@pytest.fixture(scope="module")
def whisper_plugin():
    import alm_bench_whisper

    return alm_bench_whisper


@pytest.fixture(scope="module")
def model(whisper_plugin):
    return whisper_plugin.Whisper(checkpoint=str(CHECKPOINT))


@pytest.fixture(scope="module")
def fsdd(tmp_path_factory, cache_dir):
    """One run of every fsdd-digits method on the 30-clip sample: results and item records."""
    output = tmp_path_factory.mktemp("whisper-fsdd")
    summary = run(RunConfig(model="whisper", tasks="fsdd-digits", model_args={"checkpoint": str(CHECKPOINT)},
                            data_dir=FSDD, limit=30, output_dir=output, cache_dir=cache_dir))
    results = {r.method: r for r in summary.results}
    records = {method: [json.loads(line) for line in path.read_text().splitlines()]
               for method in results for path in (output / "whisper" / "fsdd-digits").glob(f"{method}*.jsonl")}
    return results, records


# -- (1) real numbers on real audio ---------------------------------------------------------------
@needs_model
def test_log_likelihood_on_a_balanced_30_clip_sample(fsdd):
    results, records = fsdd
    ll = results["log_likelihood"]
    assert ll.n_items == 30 and ll.n_failed == 0 and ll.prompt == "this is a sound of"
    # the sample --limit 30 gives: every digit 3 times, every speaker 5 times, no (speaker, digit) twice
    ids = [r["id"] for r in records["log_likelihood"]]
    assert len(set(ids)) == 30 and len({tuple(i.split("_")[:2]) for i in ids}) == 30
    assert collections.Counter(r["target"] for r in records["log_likelihood"]) == {d: 3 for d in DIGITS}
    assert set(collections.Counter(i.split("_")[1] for i in ids).values()) == {5}
    assert ll.metrics["accuracy"] >= 0.85  # measured 0.967 (0.935 on 200 clips); chance is 0.1


@needs_model
def test_linear_probe_and_text_matching_give_real_numbers(fsdd):
    results, records = fsdd
    probe, matching = results["linear_probe"], results["text_matching"]
    assert probe.n_items == 30 and probe.n_failed == 0 and len(probe.details["folds"]) == 6
    assert probe.metrics["accuracy"] >= 0.8  # measured 0.933 (0.9625 on 200), each fold a speaker it never heard
    assert matching.n_items == 30 and matching.n_failed == 0
    assert matching.metrics["accuracy"] >= 0.4  # measured 0.60: "seven." and "7" matched to "seven"
    outputs = {r["output"].lower().strip(" .!?") for r in records["text_matching"]}
    assert len(outputs & set(DIGITS)) >= 6  # real transcripts, not a constant: 7 of the 10 words measured


# -- (2) installing and uninstalling the distribution ----------------------------------------------
def _model_rows(python: Path, env: dict) -> tuple[set[tuple[str, ...]], str]:
    done = subprocess.run([str(python), "-m", "alm_bench.cli", "list", "models"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    rows: list[list[str]] = []
    for line in done.stdout.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:  # a wrapped cell continues on the next line
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
    return {tuple(r) for r in rows}, done.stderr


def _venv_without_the_plugin(root: Path) -> Path:
    """A throwaway venv that sees everything installed here except alm-bench-whisper."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(python), "-c", where], text=True).strip())
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "alm_bench_whisper" not in entry.name.lower().replace("-", "_") and not (site / entry.name).exists():
            (site / entry.name).symlink_to(entry)
    return python


def test_installing_and_uninstalling_adds_and_removes_only_whisper(tmp_path):
    python = _venv_without_the_plugin(tmp_path / "venv")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    source = shutil.copytree(PACKAGE, tmp_path / "alm-bench-whisper")  # pip builds in the tree: keep the repo clean
    pip = [str(python), "-m", "pip", "-q"]

    before, errors_before = _model_rows(python, env)
    subprocess.run(pip + ["install", "--no-deps", "--no-build-isolation", str(source)], check=True, env=env,
                   timeout=300)
    installed, errors_installed = _model_rows(python, env)
    subprocess.run(pip + ["uninstall", "-y", "alm-bench-whisper"], check=True, env=env, timeout=120)
    after, errors_after = _model_rows(python, env)

    added = installed - before
    assert [row[:3] for row in added] == [("whisper", "generate, embed, score", "whisper")]
    assert before <= installed and after == before  # nothing else changed, nothing left behind
    assert errors_before == errors_installed == errors_after


# -- (3) the conformance checks ---------------------------------------------------------------------
@needs_model
def test_the_real_model_passes_the_conformance_checks(model):
    results = check_model(model, plugin="whisper")
    assert [r.name for r in results] == ["declaration", "generate_batching_and_determinism", "generate_prompt_handling",
                                         "embed_batching_and_determinism", "score_batching_and_determinism", "listens_to_audio"]
    assert all(r.passed for r in results), [r.line() for r in results if not r.passed]


@pytest.mark.skipif(not INSTALLED, reason="alm-bench-whisper is not installed")
def test_a_missing_checkpoint_is_one_usage_error_saying_what_to_pass(whisper_plugin, tmp_path):
    with pytest.raises(UsageError, match="is not a Whisper checkpoint.*pass --model-args checkpoint=DIR") as caught:
        whisper_plugin.Whisper(checkpoint=str(tmp_path))  # a directory without a model
    assert "\n" not in str(caught.value)


# -- (4) what embed and score compute ---------------------------------------------------------------
def _clip(name: str, model) -> Clip:
    from alm_bench.audio import decode

    return Clip(decode(FSDD / "recordings" / name, model.audio_format), name)


def _direct_encoder_states(model, waveform: np.ndarray):
    import torch

    features = model.processor.feature_extractor([waveform], sampling_rate=16_000, return_tensors="pt").input_features
    with torch.inference_mode():
        return model.net.model.encoder(features).last_hidden_state[0]


@needs_model
def test_embeddings_pool_only_the_frames_that_hold_audio(whisper_plugin, model):
    fresh = whisper_plugin.Whisper(checkpoint=str(CHECKPOINT), encoder_cache_mb=0)
    clip = _clip("7_jackson_0.wav", model)
    silence = np.zeros(16_000, dtype=np.float32)
    padded = Clip(np.concatenate([clip.waveform, silence]), "with 1 s of trailing silence")
    vectors = fresh.embed([clip, padded])

    states = _direct_encoder_states(model, clip.waveform)
    frames = whisper_plugin.model.audio_frames(len(clip.waveform))
    assert frames == -(-len(clip.waveform) // 320) and frames < 50  # a word under 1 s: 1,450+ of 1,500 frames pad
    np.testing.assert_allclose(vectors[0], states[:frames].mean(0).numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(vectors[0], states.mean(0).numpy(), atol=1e-2)  # the 30 s padding would swamp it

    # silence that is part of the clip is audio: pooled over its 50 more frames, not over the 30 s padding
    padded_states = _direct_encoder_states(model, padded.waveform)
    np.testing.assert_allclose(vectors[1], padded_states[: frames + 50].mean(0).numpy(), rtol=1e-4, atol=1e-5)


@needs_model
def test_score_is_the_log_likelihood_of_the_candidate_after_the_prompt(model):
    import torch

    clip = _clip("3_theo_5.wav", model)
    candidates = ("three", "the number three, spoken", "Three.")
    scores = model.score([ScoreRequest(clip, "this is a sound of", candidates)])[0]

    tokenizer = model.tokenizer
    prefix = (tokenizer.convert_tokens_to_ids(["<|startofprev|>"])
              + tokenizer.encode(" this is a sound of", add_special_tokens=False)
              + tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", "<|notimestamps|>"]))
    features = model.processor.feature_extractor([clip.waveform], sampling_rate=16_000,
                                                 return_tensors="pt").input_features
    for candidate, score in zip(candidates, scores):
        tokens = tokenizer.encode(" " + candidate, add_special_tokens=False)
        with torch.inference_mode():
            logits = model.net(input_features=features, decoder_input_ids=torch.tensor([prefix + tokens])).logits[0]
        logp = torch.log_softmax(logits[len(prefix) - 1 : -1], dim=-1)
        expected = float(logp.gather(1, torch.tensor(tokens)[:, None]).sum())
        assert score == pytest.approx(expected, abs=1e-3), candidate
    assert int(np.argmax(scores)) == 0
