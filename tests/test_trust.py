"""Numbers users can trust: every metric has an interval its records reproduce, the oracle scores the
declared best, chance lands on the declared chance level, audio controls expose who listens, and
``compare`` tells a real difference from noise.  The suite runs are the session's shared ones."""

from __future__ import annotations

import shutil
import sys
import types

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from alm_bench import AudioFormat, Capabilities, Model, hookimpl
from alm_bench import cli
from alm_bench.compare import compare
from alm_bench.errors import SpecError, UsageError
from alm_bench.evaluators.base import reproduce
from alm_bench.plugins import build_registry
from alm_bench.results import read_records, read_result, result_path
from alm_bench.runner import RunConfig, run
from alm_bench.specs import parse_spec
from alm_bench.uncertainty import average_precision

SUITE = [("oracle", "model"), ("chance", "model"), ("pengi-tiny", None)]
#: the oracle's own ceilings (plugins/reference.py), not the evaluators': it captions a clip with one
#: reference and is queried with the others, and its text vectors share comma-separated clauses
ORACLE_CEILINGS = {("synth-retrieval", "retrieval"): ("t2a_", "mAP@10"),
                   ("synth-retrieval", "retrieval_embedding"): ("a2t_mAP@10",)}
CLASSIFICATION = ("accuracy", "mAP", "5-way accuracy")


@pytest.mark.parametrize("model, encoder", SUITE)
def test_every_metric_has_an_interval_and_the_item_records_reproduce_it(synth_suite, registry, model, encoder):
    suite = synth_suite(model, encoder)
    for (task, method), result in suite.results.items():
        path = result_path(suite.output_dir, result)
        written = read_result(path)
        assert written.intervals == result.intervals and written.chance == result.chance
        again = reproduce(registry.methods[method], read_records(path), written.details)
        for name, value in result.metrics.items():
            if value is None:
                continue
            interval = result.intervals[name]
            assert interval["low"] - 1e-9 <= value <= interval["high"] + 1e-9, (task, method, name, interval)
            assert interval["method"] and (interval["resamples"] >= 1000 or "interval over" in interval["method"])
            assert again[name] == pytest.approx(value, abs=1e-9), (task, method, name)


def test_oracle_scores_the_declared_best_of_every_metric(synth_suite, registry):
    checked = 0
    for (task, method), result in synth_suite("oracle", "model").results.items():
        for name, value in result.metrics.items():
            best = registry.methods[method].metric(name).best
            if value is None or best is None or any(part in name for part in ORACLE_CEILINGS.get((task, method), ())):
                continue
            assert value == pytest.approx(best, abs=2e-3), (task, method, name, value)
            checked += 1
    assert checked >= 25  # every method, F1 of multilabel tagging included


def test_chance_lands_inside_its_interval_around_the_declared_chance_level(synth_suite):
    results = synth_suite("chance", "model").results
    for (task, method), result in results.items():
        if method != "captioning":  # caption metrics have no analytic chance level
            assert result.chance, (task, method)
        for name, level in result.chance.items():
            interval = result.intervals[name]
            assert interval["low"] <= level <= interval["high"], (task, method, name, level, interval)


def test_compare_finds_no_difference_between_two_runs_of_one_model(synth_suite, registry, cache_dir, tmp_path):
    first = synth_suite("pengi-tiny").output_dir
    run(RunConfig(model="pengi-tiny", tasks="synth-events,synth-tagging", output_dir=tmp_path,
                  cache_dir=cache_dir), registry)
    differences = compare(first, tmp_path, registry.methods)
    assert {(d.task, d.method) for d in differences} == {(t, m) for t in ("synth-events", "synth-tagging")
                                                         for m in ("text_matching", "log_likelihood", "linear_probe")}
    assert not any(d.significant for d in differences)
    assert all(d.a == d.b and d.p_bootstrap == 1.0 for d in differences)


def test_compare_finds_every_classification_difference_between_pengi_tiny_and_chance(synth_suite, registry):
    differences = compare(synth_suite("chance", "model").output_dir, synth_suite("pengi-tiny").output_dir,
                          registry.methods)
    classification = [d for d in differences if d.metric in CLASSIFICATION]
    assert len(classification) >= 8
    for d in classification:
        assert d.significant and d.b > d.a and d.low > 0, d
        assert d.p_mcnemar is None or d.p_mcnemar < 1e-6


def _run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["alm-bench", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_compare_refuses_runs_on_other_items_or_prompts(synth_suite, registry, cache_dir, tmp_path,
                                                        monkeypatch, capsys):
    reference = synth_suite("chance", "model").output_dir
    limited, prompted = tmp_path / "limited", tmp_path / "prompted"
    common = dict(model="chance", tasks="synth-events", methods=("log_likelihood",), cache_dir=cache_dir)
    run(RunConfig(output_dir=limited, limit=20, **common), registry)
    run(RunConfig(output_dir=prompted, prompt="what do you hear", **common), registry)
    with pytest.raises(UsageError, match="different prompts"):
        compare(reference, prompted, registry.methods)
    code, _, err = _run_cli(monkeypatch, capsys, "compare", str(reference), str(limited))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "scored different items" in lines[0], err
    assert "synth-events" in lines[0] and "Traceback" not in err


def test_the_compare_command_prints_a_markdown_table(synth_suite, tmp_path, monkeypatch, capsys):
    chance, tiny = synth_suite("chance", "model").output_dir, synth_suite("pengi-tiny").output_dir
    code, out, err = _run_cli(monkeypatch, capsys, "compare", str(chance / "chance" / "synth-events"),
                              str(tiny / "pengi-tiny" / "synth-events"), "--output", str(tmp_path / "cmp.md"))
    assert code in (0, None), err
    table = (tmp_path / "cmp.md").read_text()
    assert "| synth-events | log_likelihood | this is a sound of | accuracy |" in table
    assert "3 of 3 differences significant" in table and "**yes**" in out


@pytest.fixture(scope="module")
def controlled(synth_suite, registry, cache_dir, tmp_path_factory):
    """pengi-tiny on synth-events under each control, next to its real-audio run."""
    out = tmp_path_factory.mktemp("controls")
    source = result_path(synth_suite("pengi-tiny").output_dir, synth_suite("pengi-tiny").results[
        ("synth-events", "log_likelihood")])
    target = out / "pengi-tiny" / "synth-events"
    target.mkdir(parents=True)
    for suffix in (".json", ".jsonl"):
        shutil.copy(source.with_suffix(suffix), target / source.with_suffix(suffix).name)
    return {control: run(RunConfig(model="pengi-tiny", tasks="synth-events", methods=("log_likelihood",),
                                   output_dir=out, cache_dir=cache_dir, control=control), registry).results[0]
            for control in ("silence", "shuffle")}


@pytest.mark.parametrize("control", ["silence", "shuffle"])
def test_audio_controls_take_pengi_tiny_to_chance(controlled, control):
    result = controlled[control]
    chance, n = result.chance["accuracy"], result.n_items
    # within 4 binomial standard deviations of the chance level (a shuffle never gives a clip back
    # to its own item, so a perfect listener lands a little below 1/labels)
    assert result.control == control
    assert abs(result.metrics["accuracy"] - chance) <= 4 * (chance * (1 - chance) / n) ** 0.5
    assert result.control_effect["uncontrolled"]["accuracy"] > 0.9
    assert result.control_effect["fell_by"]["accuracy"] > 0.7


class TextOnly(Model):
    """Answers from the prompt and candidates alone: the controls must not move it."""

    name = "text-only-fake"
    capabilities = Capabilities(score=True)
    audio_format = AudioFormat(sample_rate=16_000)

    def score(self, requests):
        return [np.array([-float(len(c)) + 0.1 * (hash(c) % 7) for c in r.candidates]) for r in requests]


def test_audio_controls_leave_a_text_only_model_where_it_was(cache_dir, tmp_path):
    plugin = types.SimpleNamespace(alm_bench_models=hookimpl(lambda: [TextOnly]))
    registry = build_registry(extra_plugins=(("text-only", plugin),))
    metrics = {}
    for control in (None, "silence", "shuffle"):
        (result,) = run(RunConfig(model="text-only-fake", tasks="synth-events", methods=("log_likelihood",),
                                  output_dir=tmp_path, cache_dir=cache_dir, control=control), registry).results
        metrics[control] = result.metrics["accuracy"]
        if control:
            assert result.control_effect["fell_by"] == {"accuracy": 0.0}
    assert metrics["silence"] == metrics["shuffle"] == metrics[None]


def test_method_names_take_hyphens_and_an_unknown_control_is_one_line(cache_dir, tmp_path, monkeypatch, capsys):
    code, _, err = _run_cli(monkeypatch, capsys, "run", "--model", "chance", "--task", "synth-events",
                            "--method", "log-likelihood", "--output-dir", str(tmp_path))
    assert code in (0, None), err
    assert (tmp_path / "chance" / "synth-events" / "log_likelihood--this-is-a-sound-of.json").is_file()
    code, _, err = _run_cli(monkeypatch, capsys, "run", "--model", "chance", "--task", "synth-events",
                            "--control", "noise", "--output-dir", str(tmp_path))
    assert code == 2 and err.strip().splitlines() == ["error: unknown control 'noise'; choose one of silence, shuffle"]


class NaNScores(TextOnly):
    name = "nan-fake"

    def score(self, requests):
        return [np.full(len(r.candidates), np.nan) for r in requests]


def test_a_model_that_breaks_the_protocol_mid_run_stops_with_one_line(cache_dir, tmp_path, monkeypatch, capsys):
    plugin = types.SimpleNamespace(alm_bench_models=hookimpl(lambda: [NaNScores]))
    monkeypatch.setattr(cli, "_registry", lambda: build_registry(extra_plugins=(("nan-plugin", plugin),)))
    code, _, err = _run_cli(monkeypatch, capsys, "run", "--model", "nan-fake", "--task", "synth-events",
                            "--output-dir", str(tmp_path), "--no-cache")
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert 'plugin "nan-plugin"' in lines[0] and "score()" in lines[0] and "non-finite" in lines[0]


def test_a_spec_metric_that_no_method_declares_names_the_file(registry):
    data = {"id": "t", "domain": "sound events", "type": "multiclass", "description": "",
            "dataset": {"loader": "synth", "source": "s", "licence": "CC0-1.0"}, "metric": "mAP",
            "prompts": ["p"], "methods": {"text_matching": {}, "linear_probe": {}}}
    with pytest.raises(SpecError, match=r"tasks/t\.yaml: field 'metric': 'mAP' is produced by none of the task's "
                                        r"methods; they report accuracy"):
        parse_spec(data, "tasks/t.yaml", registry.methods)
    assert parse_spec({**data, "metric": "accuracy"}, "tasks/t.yaml", registry.methods).metric == "accuracy"


def test_weighted_average_precision_is_scikit_learns_on_the_resampled_items():
    rng = np.random.default_rng(0)
    targets = rng.random((40, 4)) < 0.3
    scores = np.round(rng.random((40, 4)), 1)  # ties, as log-likelihoods of a small model have
    counts = rng.integers(0, 3, size=40)
    counts[np.flatnonzero(targets[:, 0])[0]] += 1  # keep a positive in every column
    ours = average_precision(targets, scores, np.stack([np.ones(40), counts]).astype(float))
    repeated = np.repeat(np.arange(40), counts)
    keep = targets[repeated].any(axis=0)
    expected = [average_precision_score(targets, scores, average="macro"),
                average_precision_score(targets[repeated][:, keep], scores[repeated][:, keep], average="macro")]
    assert ours == pytest.approx(expected, abs=1e-12)
