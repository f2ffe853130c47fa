"""The conformance checks (``alm_bench.checks``), tested like scikit-learn's
``sklearn/utils/tests/test_estimator_checks.py``: a small correct fake model passes every check,
and each deliberately broken variant fails exactly the check(s) meant to catch it, with a problem
that says what is wrong and a fix.  Every built-in model passes them all, and
``alm-bench validate-model`` reports them."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import alm_bench
from alm_bench import AudioFormat, Capabilities, Clip, GenerateRequest, Model
from alm_bench.checks import CHECKS, CheckResult, check_model, synthetic_clips
from alm_bench.plugins import build_registry
from .test_pengi_support import GPT2_TOKENIZER  # also registers the small "test-small-gpt2" config

ALL_CHECKS = [name for name, _, _ in CHECKS]
GEN_BATCH = "generate_batching_and_determinism"
GEN_PROMPTS = "generate_prompt_handling"
GEN_INTERLEAVED = "generate_interleaved"
EMBED = "embed_batching_and_determinism"
SCORE = "score_batching_and_determinism"
EMBED_TEXT = "embed_text"
SHARED = "shared_space"
LISTENS = "listens_to_audio"
DIM = 8


# -- a small correct model --------------------------------------------------------------------
def _energy(clip: Clip) -> float:
    return float(np.mean(np.asarray(clip.waveform, dtype=np.float64) ** 2))


class GoodModel(Model):
    """Deterministic outputs derived from waveform statistics; implements every capability."""

    name = "fake-good"
    capabilities = Capabilities(generate=True, embed=True, score=True, interleaved=True,
                                text_encoder=True, shared_space=True)
    audio_format = AudioFormat(sample_rate=16_000, max_seconds=10.0)

    def config(self):
        return {"dim": DIM, "features": ["mean", "std", "max", "seconds"]}

    def generate(self, requests, config):
        out = []
        for request in requests:
            energies = ", ".join(f"{_energy(c):.4f}" for c in request.clips)
            out.append(f"{request.prompt[:24]} -> energy {energies}")
        return out

    def embed(self, clips):
        rows = []
        for clip in clips:
            w = np.asarray(clip.waveform, dtype=np.float64)
            features = [w.mean(), w.std(), np.abs(w).max(), len(w) / self.audio_format.sample_rate]
            rows.append(np.pad(features, (0, DIM - len(features))))
        return np.stack(rows)

    def embed_text(self, texts):
        rows = [[len(t), t.count(" "), sum(ch in "aeiou" for ch in t), len(set(t))] for t in texts]
        return np.pad(np.asarray(rows, dtype=np.float64), ((0, 0), (0, DIM - 4)))

    def score(self, requests):
        return [np.array([-len(c) * (1.0 + _energy(r.clip)) - 0.01 * len(r.prompt) for c in r.candidates])
                for r in requests]


# -- broken variants: each overrides one method ---------------------------------------------
class TooFewTexts(GoodModel):
    def generate(self, requests, config):
        return super().generate(requests, config)[:-1]


class NonStringText(GoodModel):
    def generate(self, requests, config):
        return [len(text) for text in super().generate(requests, config)]


class BatchDependentText(GoodModel):
    def generate(self, requests, config):
        return [f"{text} (batch of {len(requests)})" for text in super().generate(requests, config)]


class RandomText(GoodModel):
    def generate(self, requests, config):
        return [f"{text} {random.random()}" for text in super().generate(requests, config)]  # unseeded


class CrashesOnEmptyPrompt(GoodModel):
    def generate(self, requests, config):
        if any(not r.prompt for r in requests):
            raise ValueError("the prompt is empty")
        return super().generate(requests, config)


class CrashesOnLongPrompt(GoodModel):
    def generate(self, requests, config):
        if any(len(r.prompt) > 200 for r in requests):
            raise IndexError("index out of range in self (prompt longer than the position table)")
        return super().generate(requests, config)


class CrashesOnTwoClips(GoodModel):
    def generate(self, requests, config):
        if any(len(r.clips) > 1 for r in requests):
            raise RuntimeError("expected exactly one clip")
        return super().generate(requests, config)


class EmbedFlat(GoodModel):
    """[n] instead of [n, D]."""

    def embed(self, clips):
        return super().embed(clips)[:, 0]


class EmbedDropsOne(GoodModel):
    """[n-1, D] instead of [n, D]."""

    def embed(self, clips):
        return super().embed(clips)[:-1]


class EmbedSqueezed(GoodModel):
    """The classic ``squeeze()``: a batch of one comes back as [D]."""

    def embed(self, clips):
        return np.squeeze(super().embed(clips))


class EmbedNaNOnShortClips(GoodModel):
    """Averages over whole 1-second windows: a clip shorter than one second has none, and gives nan."""

    def embed(self, clips):
        out = super().embed(clips)
        rate = self.audio_format.sample_rate
        for i, clip in enumerate(clips):
            windows = clip.waveform[: len(clip.waveform) // rate * rate].reshape(-1, rate)
            out[i, -1] = np.abs(windows).mean() if windows.size else np.nan
        return out


class EmbedDimDependsOnBatch(GoodModel):
    """Pads every batch to a size that depends on the batch."""

    def embed(self, clips):
        out = super().embed(clips)
        return out if len(clips) == 1 else np.pad(out, ((0, 0), (0, len(clips))))


class RandomEmbed(GoodModel):
    def embed(self, clips):
        return super().embed(clips) + np.random.default_rng().standard_normal((len(clips), DIM))


class BatchDependentEmbed(GoodModel):
    """Normalises by batch statistics instead of per clip."""

    def embed(self, clips):
        out = super().embed(clips)
        return out - out.mean(axis=0)


class ScoreWrongLength(GoodModel):
    def score(self, requests):
        return [scores[:-1] for scores in super().score(requests)]


class ScoreTooFewResults(GoodModel):
    def score(self, requests):
        return super().score(requests)[:-1]


class ScoreNaN(GoodModel):
    def score(self, requests):
        out = super().score(requests)
        for scores in out:
            scores[-1] = np.nan
        return out


class ScoreSorted(GoodModel):
    """Returns the scores sorted, forgetting which candidate each belongs to."""

    def score(self, requests):
        return [np.sort(scores) for scores in super().score(requests)]


class ScoreBatchDependent(GoodModel):
    """Normalises over every candidate of the batch."""

    def score(self, requests):
        out = super().score(requests)
        total = sum(len(s) for s in out)
        return [s - np.log(total) for s in out]


class RandomScore(GoodModel):
    def score(self, requests):
        return [s + np.random.default_rng().standard_normal(len(s)) for s in super().score(requests)]


class EmbedTextDropsOne(GoodModel):
    def embed_text(self, texts):
        return super().embed_text(texts)[:-1]


class EmbedTextNaN(GoodModel):
    def embed_text(self, texts):
        out = super().embed_text(texts)
        out[:, 1] /= np.array([len(t) for t in texts], dtype=np.float64)  # 0/0 on the empty text
        return out


class RandomEmbedText(GoodModel):
    def embed_text(self, texts):
        return super().embed_text(texts) + np.random.default_rng().standard_normal((len(texts), DIM))


class SharedSpaceMismatch(GoodModel):
    """Declares shared_space, but its text vectors have twice the audio dimension."""

    def embed_text(self, texts):
        return np.concatenate([super().embed_text(texts)] * 2, axis=1)


# -- helpers ----------------------------------------------------------------------------------
def _lines(results: list[CheckResult]) -> str:
    return "\n".join(r.line() for r in results)


def assert_failures(model: Model, expected: dict[str, str], plugin: str = "fake-plugin") -> list[CheckResult]:
    """Exactly the checks in ``expected`` fail, each problem containing its phrase and with a fix;
    every other check of the model's capabilities runs and passes."""
    with np.errstate(all="ignore"):
        results = check_model(model, plugin=plugin)
    failed = {r.name for r in results if not r.passed}
    assert failed == set(expected), _lines(results)
    for result in results:
        if result.passed:
            assert result.problem == "" and result.fix == "", result
        else:
            assert expected[result.name] in result.problem, _lines(results)
            assert result.fix.strip(), result
            assert result.line().startswith(f"FAIL {result.name}: ")
    return results


# -- the correct model ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_good_model_passes_every_check(seed):
    results = check_model(GoodModel(), plugin="fake-plugin", seed=seed)
    assert [r.name for r in results] == ALL_CHECKS
    assert all(r.passed for r in results), _lines(results)
    assert [r.line() for r in results] == [f"PASS {name}" for name in ALL_CHECKS]


def test_check_model_is_exported_at_top_level():
    assert [r.name for r in alm_bench.check_model(GoodModel())] == ALL_CHECKS


def test_synthetic_clips_follow_the_audio_format():
    fmt = AudioFormat(sample_rate=8_000, max_seconds=1.0, min_seconds=0.75)
    clips = synthetic_clips(fmt)
    assert len(clips) == 3 and len({c.sha for c in clips}) == 3
    for clip in clips:
        assert clip.waveform.dtype == np.float32 and clip.waveform.ndim == 1
        assert 6_000 <= len(clip.waveform) <= 8_000
        assert np.isfinite(clip.waveform).all() and np.abs(clip.waveform).max() > 0
    assert not np.array_equal(synthetic_clips(fmt, seed=1)[1].waveform, clips[1].waveform)


class StrictInputs(GoodModel):
    """Refuses audio that is not float32 mono in its declared format, and malformed requests."""

    audio_format = AudioFormat(sample_rate=8_000, max_seconds=1.0, min_seconds=0.75)

    def _check(self, clips):
        for clip in clips:
            assert isinstance(clip, Clip), clip
            w = clip.waveform
            assert w.dtype == np.float32 and w.ndim == 1 and 6_000 <= len(w) <= 8_000, (w.dtype, w.shape)

    def generate(self, requests, config):
        for request in requests:
            assert isinstance(request, GenerateRequest)
            assert all(isinstance(c, (Clip, str)) for c in request.content)
            self._check(request.clips)
        return super().generate(requests, config)

    def embed(self, clips):
        self._check(clips)
        return super().embed(clips)

    def score(self, requests):
        self._check([r.clip for r in requests])
        assert all(isinstance(r.candidates, tuple) and r.candidates for r in requests)
        return super().score(requests)


def test_checks_send_audio_in_the_models_declared_format():
    results = check_model(StrictInputs())
    assert all(r.passed for r in results), _lines(results)
    assert [r.name for r in results] == ALL_CHECKS


# -- one broken model per failure mode ----------------------------------------------------------
BROKEN = [
    # generate
    (TooFewTexts, {GEN_BATCH: "returned 2 outputs for 3 requests", GEN_PROMPTS: "returned 2 outputs for 3 requests",
                   GEN_INTERLEAVED: "returned 1 outputs for 2 requests"}),
    (NonStringText, {GEN_BATCH: "non-string", GEN_PROMPTS: "non-string", GEN_INTERLEAVED: "non-string"}),
    (BatchDependentText, {GEN_BATCH: "in a batch of 3 than one at a time"}),
    (RandomText, {GEN_BATCH: "repeated call"}),
    (CrashesOnEmptyPrompt, {GEN_PROMPTS: "raised ValueError: the prompt is empty"}),
    (CrashesOnLongPrompt, {GEN_PROMPTS: "raised IndexError"}),
    (CrashesOnTwoClips, {GEN_INTERLEAVED: "raised RuntimeError: expected exactly one clip"}),
    # embed (shared_space calls embed on one clip, so a shape bug shows there too)
    (EmbedFlat, {EMBED: "shape (3,) for 3 inputs", SHARED: "shape (1,) for 1 inputs"}),
    (EmbedDropsOne, {EMBED: "shape (2, 8) for 3 inputs", SHARED: "shape (0, 8) for 1 inputs"}),
    (EmbedSqueezed, {EMBED: "shape (8,) for 1 inputs", SHARED: "shape (8,) for 1 inputs"}),
    (EmbedNaNOnShortClips, {EMBED: "non-finite"}),
    (EmbedDimDependsOnBatch, {EMBED: "vector size changed from 11 to 8"}),
    (RandomEmbed, {EMBED: "repeated call"}),
    (BatchDependentEmbed, {EMBED: "in a batch of 3 than one at a time"}),
    # score
    (ScoreWrongLength, {SCORE: "shape (0,) for 1 candidates"}),
    (ScoreTooFewResults, {SCORE: "returned 2 results for 3 requests"}),
    (ScoreNaN, {SCORE: "non-finite"}),
    (ScoreSorted, {SCORE: "reordered"}),
    (ScoreBatchDependent, {SCORE: "in a batch of 3 than one at a time"}),
    (RandomScore, {SCORE: "repeated call"}),
    # embed_text and shared_space
    (EmbedTextDropsOne, {EMBED_TEXT: "shape (2, 8) for 3 inputs", SHARED: "shape (0, 8) for 1 inputs"}),
    (EmbedTextNaN, {EMBED_TEXT: "non-finite"}),
    (RandomEmbedText, {EMBED_TEXT: "repeated call"}),
    (SharedSpaceMismatch, {SHARED: "embed() gives 8-d vectors but embed_text() 16-d"}),
]


@pytest.mark.parametrize("cls, expected", BROKEN, ids=[cls.__name__ for cls, _ in BROKEN])
def test_broken_model_fails_exactly_the_expected_checks(cls, expected):
    results = assert_failures(cls(), expected)
    assert [r.name for r in results] == ALL_CHECKS  # the other checks still ran, and passed


def test_output_errors_name_the_plugin_and_the_method():
    results = {r.name: r for r in check_model(EmbedDropsOne(), plugin="acme-models")}
    problem = results[EMBED].problem
    assert 'plugin "acme-models"' in problem and "'fake-good'" in problem and "embed()" in problem
    assert "alm_bench.protocol" in results[EMBED].fix


def test_fixes_say_how_to_fix():
    by_name = {r.name: r for r in check_model(RandomText())}
    assert "seed" in by_name[GEN_BATCH].fix
    by_name = {r.name: r for r in check_model(ScoreSorted())}
    assert "position" in by_name[SCORE].fix
    by_name = {r.name: r for r in check_model(SharedSpaceMismatch())}
    assert "do not declare it" in by_name[SHARED].fix


# -- declaration problems stop the checks -----------------------------------------------------
def _declaring(**attrs) -> Model:
    return type("Declaring", (GoodModel,), attrs)()


DECLARATION = [
    ("capabilities-dict", {"capabilities": {"generate": True, "embed": True}}, "not an alm_bench.Capabilities"),
    ("capabilities-none", {"capabilities": Capabilities(text_encoder=True)}, "declares none of generate, embed, score"),
    ("sample-rate-zero", {"audio_format": AudioFormat(sample_rate=0)}, "positive integer sample_rate"),
    ("sample-rate-float", {"audio_format": AudioFormat(sample_rate=16_000.0)}, "positive integer sample_rate"),
    ("audio-format-int", {"audio_format": 16_000}, "is not an AudioFormat"),
    ("max-seconds-zero", {"audio_format": AudioFormat(sample_rate=16_000, max_seconds=0)}, "max_seconds is not positive"),
    ("config-path", {"config": lambda self: {"checkpoint": Path("/models/x.pt")}}, "config() is not JSON-serialisable"),
    ("config-dtype", {"config": lambda self: {"dtype": np.float32}}, "config() is not JSON-serialisable"),
]


@pytest.mark.parametrize("attrs, phrase", [d[1:] for d in DECLARATION], ids=[d[0] for d in DECLARATION])
def test_declaration_problems_fail_only_the_declaration(attrs, phrase):
    results = check_model(_declaring(**attrs))
    assert [r.name for r in results] == ["declaration"]
    assert not results[0].passed
    assert phrase in results[0].problem
    assert results[0].fix.strip()


def test_config_that_raises_fails_the_declaration():
    def config(self):
        raise KeyError("checkpoint")

    (result,) = check_model(_declaring(config=config))
    assert result.name == "declaration" and not result.passed
    assert "raised KeyError" in result.problem and result.fix


# -- checks run only for declared capabilities ------------------------------------------------
def _only(capabilities: Capabilities, base: type = GoodModel, **methods) -> Model:
    return type("Only", (base,), {"capabilities": capabilities, **methods})()


def _broken(method: str):
    def fail(self, *args):
        raise AssertionError(f"{method}() called although not declared")
    return fail


def test_embed_only_model_gets_only_declaration_and_embed_checks():
    model = _only(Capabilities(embed=True), generate=_broken("generate"), score=_broken("score"),
                  embed_text=_broken("embed_text"))
    results = check_model(model)
    assert [r.name for r in results] == ["declaration", EMBED, LISTENS]
    assert all(r.passed for r in results), _lines(results)


def test_score_only_model_gets_only_declaration_and_score_checks():
    model = _only(Capabilities(score=True), generate=_broken("generate"), embed=_broken("embed"),
                  embed_text=_broken("embed_text"))
    results = check_model(model)
    assert [r.name for r in results] == ["declaration", SCORE, LISTENS]
    assert all(r.passed for r in results), _lines(results)


def test_single_clip_model_is_not_sent_interleaved_requests():
    """Without `interleaved`, a model that crashes on two clips is fine."""
    model = _only(Capabilities(generate=True), CrashesOnTwoClips, embed=_broken("embed"), score=_broken("score"))
    results = check_model(model)
    assert [r.name for r in results] == ["declaration", GEN_BATCH, GEN_PROMPTS, LISTENS]
    assert all(r.passed for r in results), _lines(results)


def test_text_encoder_without_shared_space_may_use_another_dimension():
    model = _only(Capabilities(embed=True, text_encoder=True), SharedSpaceMismatch, generate=_broken("generate"),
                  score=_broken("score"))
    results = check_model(model)
    assert [r.name for r in results] == ["declaration", EMBED, EMBED_TEXT, LISTENS]
    assert all(r.passed for r in results), _lines(results)


# -- a model that answers from the text alone -----------------------------------------------
class DeafModel(GoodModel):
    """Every output ignores the clip: the peer-harness bug of an integration that dropped the audio."""

    def generate(self, requests, config):
        return [f"{r.prompt[:24]} -> a dog barking" for r in requests]

    def score(self, requests):
        return [np.array([-len(c) - 0.01 * len(r.prompt) for c in r.candidates]) for r in requests]

    def embed(self, clips):
        return np.ones((len(clips), DIM))


class DeafButEmbeds(DeafModel):
    """Generation and scoring ignore the audio, but the embeddings do not: it listens somewhere."""

    embed = GoodModel.embed


def test_a_model_that_ignores_its_audio_is_flagged():
    results = assert_failures(DeafModel(), {LISTENS: "do not depend on the audio"})
    assert "waveform" in {r.name: r for r in results}[LISTENS].fix
    assert all(r.passed for r in check_model(DeafButEmbeds()))


# -- every built-in model passes them all -----------------------------------------------------
_REGISTRY = build_registry(autoload=True)
#: models defined in this distribution (alm_bench itself and its plugins/ package), found through
#: the registry so that models added later are checked too
BUILTIN = sorted(name for name, info in _REGISTRY.models.items()
                 if info.cls.__module__.split(".")[0] in ("alm_bench", "alm_bench_plugins"))


def test_builtin_models_are_found():
    assert {"oracle", "chance"} <= set(BUILTIN)


# Pengi's default is its released 1.3 GB checkpoint; offline it is checked with a small random one.
OFFLINE_ARGS = {"pengi": {"checkpoint": "random", "config": "test-small-gpt2", "decoder_tokenizer": str(GPT2_TOKENIZER)}}


#: models that need a checkpoint or a server built by their own tests, which run check_model on them
CHECKED_ELSEWHERE = {"hf": "test_hf_plugin.py", "openai": "test_openai_plugin.py", "clap": "test_clap.py",
                     "msclap": "test_clap.py", "predictions": "test_predictions.py (needs a file of outputs)",
                     # apt needs a language model: test_apt.py runs every capability around SmolLM2 (check_model
                     # passes on that build too, in 12 s: too slow for the suite); apt-tiny is checked here
                     "apt": "test_apt.py",
                     # rag's capabilities are its base model's; test_rag.py checks it around a small KB
                     "rag": "test_rag.py"}


@pytest.mark.parametrize("name", [n for n in BUILTIN if n not in CHECKED_ELSEWHERE])
def test_builtin_model_passes_every_check(name):
    info = _REGISTRY.models[name]
    results = check_model(_REGISTRY.load_model(name, OFFLINE_ARGS.get(name)), plugin=info.plugin)
    expected = ["declaration"] + [n for n, capability, _ in CHECKS[1:]
                                  if capability is None or getattr(info.capabilities, capability)]
    assert [r.name for r in results] == expected
    assert all(r.passed for r in results), _lines(results)


# -- the CLI: alm-bench validate-model --------------------------------------------------------
BROKEN_PLUGIN = '''
from alm_bench import AudioFormat, Capabilities, Model, hookimpl


class Broken(Model):
    name = "broken-fake"
    capabilities = Capabilities(generate=True)
    audio_format = AudioFormat(sample_rate=16_000)

    def generate(self, requests, config):
        return ["a sound"] * max(len(requests) - 1, 1)


class Deaf(Model):
    """Answers from the text alone."""

    name = "deaf-fake"
    capabilities = Capabilities(generate=True, score=True)
    audio_format = AudioFormat(sample_rate=16_000)

    def generate(self, requests, config):
        return ["a dog barking" for _ in requests]

    def score(self, requests):
        return [[-float(len(c)) for c in r.candidates] for r in requests]


@hookimpl
def alm_bench_models():
    return [Broken, Deaf]
'''


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Runs the validate-model commands in parallel (each pays the start-up once); returns name -> result.

    The broken model is a third-party plugin: a module plus a dist-info declaring its entry point,
    found through PYTHONPATH exactly as an installed package would be."""
    site = tmp_path_factory.mktemp("site")
    (site / "alm_bench_test_broken.py").write_text(textwrap.dedent(BROKEN_PLUGIN))
    dist = site / "alm_bench_test_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: alm-bench-test-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[alm_bench]\nbroken-fake-plugin = alm_bench_test_broken\n")
    env = {k: v for k, v in os.environ.items() if k != "ALM_BENCH_DISABLE_PLUGIN_AUTOLOAD"}
    env.update(COLUMNS="300", NO_COLOR="1", PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]))
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "alm_bench.cli", "validate-model", name], env=env,
                               cwd=site, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("oracle", "nosuchmodel", "broken-fake", "deaf-fake")
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


def test_cli_validate_model_passes_a_builtin_model(cli):
    result = cli["oracle"]
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ALL_CHECKS:
        assert f"PASS {name}" in lines
    assert f"{len(ALL_CHECKS)} passed, 0 failed" in result.stdout
    assert "FAIL" not in result.stdout


def test_cli_validate_model_unknown_name_is_one_line(cli):
    result = cli["nosuchmodel"]
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "nosuchmodel" in lines[0] and "oracle" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_validate_model_reports_failures_of_a_plugin_model(cli):
    result = cli["broken-fake"]
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "PASS declaration" in out
    fail = next(line for line in out.splitlines() if line.startswith(f"FAIL {GEN_BATCH}:"))
    assert 'plugin "broken-fake-plugin"' in fail and "returned 2 outputs for 3 requests" in fail
    assert f"FAIL {GEN_PROMPTS}:" in out
    assert "fix:" in out
    assert "2 passed, 2 failed" in out  # listens_to_audio has nothing to judge when generate fails
    assert GEN_INTERLEAVED not in out  # not declared, not run


def test_check_results_are_json_friendly():
    # validate-model output is built from these fields; keep them plain strings and bools
    for result in check_model(TooFewTexts()):
        json.dumps(result.__dict__)


def test_cli_validate_model_flags_a_model_that_ignores_its_audio(cli):
    result = cli["deaf-fake"]
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL listens_to_audio: its outputs do not depend on the audio" in result.stdout
    assert "PASS score_batching_and_determinism" in result.stdout
