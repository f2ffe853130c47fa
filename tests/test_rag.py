"""The rag wrapper: KB sources, the cached index, retrieval modes, context layouts, records, sweep, refine."""

import numpy as np
import pytest

from alm_bench.cli import main
from alm_bench.errors import UsageError
from alm_bench.protocol import Clip, GenerateRequest, GenerationConfig, RunEnvironment
from alm_bench.results import read_records, result_path
from alm_bench.runner import RunConfig, Runner, run
from alm_bench_plugins.rag.context import INSTRUCTION, INTRO, Layout
from alm_bench_plugins.rag.encoders import Encoders
from alm_bench_plugins.rag.index import load_or_build
from alm_bench_plugins.rag.kb import load_kb
from alm_bench_plugins.rag.model import RagModel
from alm_bench_plugins.rag.refine import refine

KB = "synth-caption:test"
#: clap-tiny's audio tower; seeded random text vectors (chance) spare the tests loading a sentence encoder
ENCODERS = {"audio_encoder": "clap-tiny", "text_encoder": "chance"}


@pytest.fixture(scope="module")
def env(registry, cache_dir):
    return RunEnvironment(cache_dir, None, registry)


@pytest.fixture(scope="module")
def small_kb(env):
    return load_kb(KB, env, limit=20)


@pytest.fixture(scope="module")
def clap(registry):
    return Encoders.load(registry, ENCODERS["audio_encoder"], ENCODERS["text_encoder"])


def rag(env, **args):
    model = RagModel(**{"base": "oracle", "kb": KB, "kb_limit": 20, **ENCODERS, **args})
    model.attach(env)
    return model


def test_a_task_split_is_a_kb_of_captioned_labelled_pairs(small_kb):
    assert len({e.sha for e in small_kb.entries}) == 20
    assert len(small_kb.entries) == 100  # five references per clip: five pairs
    assert all(e.caption and e.labels for e in small_kb.entries)


def test_a_folder_of_audio_and_captions_is_a_kb(env, small_kb, tmp_path):
    import shutil

    lines = ["path,caption"]
    for n, entry in enumerate(small_kb.entries[:10:5]):  # two clips, one caption each
        shutil.copy(entry.audio, tmp_path / f"clip{n}.wav")
        lines.append(f'clip{n}.wav,"{entry.caption}"')
    (tmp_path / "captions.csv").write_text("\n".join(lines) + "\n")
    folder = load_kb(str(tmp_path), env)
    assert [(e.sha, e.caption) for e in folder.entries] == [(e.sha, e.caption) for e in small_kb.entries[:10:5]]


def test_the_index_is_built_once_and_rebuilt_for_another_kb_or_encoder(small_kb, clap, registry, env, tmp_path):
    first = load_or_build(small_kb, clap, tmp_path)
    stamp = first.path.stat().st_mtime_ns
    again = load_or_build(small_kb, clap, tmp_path)
    assert first.built and not again.built and again.path == first.path
    assert again.path.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.rows, first.rows)
    other_kb = load_or_build(load_kb(KB, env, limit=19), clap, tmp_path)
    other_encoder = load_or_build(small_kb, Encoders.load(registry, "clap-tiny", "oracle"), tmp_path)
    assert other_kb.built and other_encoder.built
    assert len({first.path, other_kb.path, other_encoder.path}) == 3


def test_no_cache_builds_the_index_in_memory_and_writes_none(registry, tmp_path):
    config = RunConfig(model="rag", tasks="synth-caption", methods=("captioning",), limit=2, output_dir=tmp_path / "out",
                       cache_dir=tmp_path / "cache", use_cache=False,
                       model_args={"base": "oracle", "kb": KB, "kb_limit": 5, **ENCODERS})
    runner = Runner(config, registry)
    assert runner.model.index.built and runner.model.index.path is None
    assert not (tmp_path / "cache" / "rag").exists() and not (tmp_path / "cache" / "outputs").exists()


@pytest.mark.parametrize("source, problem", [("no/such/folder", "no such task split, folder or file"),
                                             ("empty.csv", "holds no captions"),
                                             ("synth-caption:nosplit", "name one of the task's splits")])
def test_a_missing_or_captionless_kb_is_one_line_exit_2(source, problem, tmp_path, cache_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.csv").write_text("path,caption\nclip.wav,\n")
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--model", "rag", "--task", "synth-caption", "--limit", "1", "--cache-dir", str(cache_dir),
              "--output-dir", str(tmp_path / "out"), "--model-args", f"base=oracle,kb={source},text_encoder=chance"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and problem in err, err


@pytest.mark.parametrize("args, problem", [({"retrieval": "audio-to-nowhere"}, "retrieval must be one of"),
                                           ({"w": 1.5}, "w must be a number from 0 to 1"),
                                           ({"k": 0}, "k must be a positive integer"),
                                           ({"retrieval": "audio-to-text", **ENCODERS}, "shared")])
def test_bad_settings_are_usage_errors(args, problem):
    with pytest.raises(UsageError, match=problem):
        RagModel(base="oracle", **args)


def query(env, entry):
    """A KB clip as a query, decoded as the runner would for the oracle base."""
    from alm_bench.audio import decode
    from alm_bench_plugins.reference import OracleModel

    return Clip(decode(entry.audio, OracleModel.audio_format), entry.sha)


def test_a_clip_never_retrieves_itself(env, small_kb):
    model = rag(env, retrieval="audio-to-audio", k=10)
    own = small_kb.entries[0]
    hits = model.retrieve([query(env, own)], None)[0]
    assert len(hits) == 10 and own.sha not in {small_kb.entries[h.entry].sha for h in hits}


def test_pair_to_pair_scores_are_the_weighted_sum_of_both_similarities(env, small_kb, clap):
    model = rag(env, retrieval="pair-to-pair", k=5, w=0.3)
    clip, text = query(env, small_kb.entries[0]), "a loud beep at the end"
    hits = model.retrieve([clip], [text])[0]
    audio = clap.embed_files([e.audio for e in small_kb.entries])
    captions = clap.embed_texts([e.caption for e in small_kb.entries])
    a_q = clap.embed_waveforms([clip.waveform], model.audio_format.sample_rate)[0]
    t_q = clap.embed_texts([text])[0]
    direct = 0.3 * audio @ a_q + 0.7 * captions @ t_q
    direct[[i for i, e in enumerate(small_kb.entries) if e.sha == clip.sha]] = -np.inf  # self-exclusion
    assert [h.entry for h in hits] == list(np.argsort(-direct, kind="stable")[:5])
    np.testing.assert_allclose([h.score for h in hits], direct[[h.entry for h in hits]], atol=1e-5)


def test_an_interleaved_base_gets_the_authors_layout_and_a_single_clip_base_the_captions(env, small_kb):
    model = rag(env, retrieval="audio-to-audio", k=2)
    request = GenerateRequest.single(query(env, small_kb.entries[0]), "generate audio caption")
    (augmented,), (found,) = model.augment([request], GenerationConfig())
    content = augmented.content
    assert content[0] == INTRO and content[-2] == INSTRUCTION and content[-1] is request.clip
    assert [type(c).__name__ for c in content[1:5]] == ["Clip", "str", "Clip", "str"]
    assert [content[2], content[4]] == [r["caption"] for r in found["retrieved"]]
    single = Layout(False).request(request.clip, "generate audio caption", [(None, "a beep"), (None, "a hum.")])
    assert single.content == (request.clip, "a beep. a hum. generate audio caption")


def test_item_records_hold_the_retrievals_also_on_a_warm_run(registry, cache_dir, tmp_path):
    config = RunConfig(model="rag", tasks="synth-caption", limit=4, output_dir=tmp_path, cache_dir=cache_dir,
                       model_args={"base": "oracle", "kb": KB, "kb_limit": 20, "retrieval": "audio-to-mixture",
                                   "audio_encoder": "chance", "text_encoder": "chance"})
    cold = run(config, registry).results[0]
    runner = Runner(config, registry)
    warm = runner.run().results[0]
    assert runner.local.stats.model_calls == 0 and warm.metrics == cold.metrics
    records = read_records(result_path(tmp_path, warm))
    assert all(r["output"] == r["target"][0] for r in records)  # the oracle's answers reached the augmented calls
    for record in records:
        retrieved = record["details"]["retrieval"]["retrieved"]
        assert len(retrieved) == 4 and all(isinstance(r["id"], str) and isinstance(r["score"], float) for r in retrieved)
        assert record["retrieval"]["retrieved same kinds"] is not None
    assert 0 < warm.metrics["retrieval audio similarity"] <= 1 and "retrieved same kinds" in warm.intervals
    assert warm.provenance["model_config"]["retrieval"] == "audio-to-mixture"


def test_sweep_runs_every_combination_and_writes_a_table(cache_dir, tmp_path, capsys):
    # the oracle's captions of the same 4 items as the test above: the caption metrics (a Java run) are
    # computed once and recalled from the cache
    table = tmp_path / "sweep.md"
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--model", "rag", "--task", "synth-caption", "--limit", "4", "--cache-dir", str(cache_dir),
              "--output-dir", str(tmp_path / "runs"), "--model-args", f"base=oracle,kb={KB},kb_limit=20,text_encoder=chance",
              "--grid", "k=1,3", "retrieval=audio-to-audio", "--output", str(table)])
    assert exit_.value.code == 0
    lines = [line for line in table.read_text().splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| k | retrieval | task | method | items |") and "CIDEr-D" in lines[0]
    assert [line.split(" | ")[0] for line in lines[1:]] == ["| 1", "| 3"]  # one row per combination
    assert "retrieved same kinds" in lines[0]


def test_the_refined_kb_is_the_union_of_what_training_pairs_retrieve(env, clap, small_kb, tmp_path):
    train = load_kb(KB, env, limit=5)
    kept = refine(small_kb, load_or_build(small_kb, clap, tmp_path), train, load_or_build(train, clap, tmp_path), 2, 0.5)
    assert 2 <= len(kept) <= 2 * len(train.entries) and len(set(kept)) == len(kept)
    assert set(kept) <= set(small_kb.entries)


def test_the_refine_command_writes_a_kb_that_kb_accepts(env, cache_dir, tmp_path, capsys):
    from alm_bench_plugins.rag import refine as command

    output = tmp_path / "refined.csv"
    with pytest.raises(SystemExit) as exit_:
        command.run(["--kb", KB, "--kb-limit", "20", "--train", KB, "--train-limit", "3", "--k", "2",
                     "--text-encoder", "chance", "--cache-dir", str(cache_dir), "--output", str(output)])
    assert exit_.value.code == 0 and "pass kb=" in capsys.readouterr().out
    refined = load_kb(str(output), env)
    assert 2 <= len(refined.entries) <= 2 * 15 and all(e.labels for e in refined.entries)


def test_rag_passes_every_conformance_check(env):
    from alm_bench.checks import check_model

    results = check_model(rag(env, base="chance"), plugin="rag")
    assert len(results) > 5 and all(r.passed for r in results), [(r.name, r.problem) for r in results if not r.passed]
