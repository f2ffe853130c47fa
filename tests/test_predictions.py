"""Outputs made elsewhere: the ``predictions`` model re-scores a run's item records without audio."""

from __future__ import annotations

import json
import shutil

import pytest

from alm_bench.errors import UsageError
from alm_bench.results import records_path, result_path
from alm_bench.runner import RunConfig, run


def metadata_only(cache_dir, dataset: str, target):
    """A copy of a synthetic dataset's test split that holds its metadata and no audio file."""
    source = next((cache_dir / "data").glob(f"synth-v*/{dataset}/test/metadata.jsonl"))
    (target / dataset / "test").mkdir(parents=True)
    shutil.copy(source, target / dataset / "test" / "metadata.jsonl")
    return target


def test_pengi_tiny_captions_rescored_from_its_item_records_give_the_same_metrics(synth_suite, registry, cache_dir,
                                                                                  tmp_path):
    suite = synth_suite("pengi-tiny")
    original = suite.results[("synth-caption", "captioning")]
    records = records_path(result_path(suite.output_dir, original))
    data = metadata_only(cache_dir, "captions", tmp_path / "data")
    summary = run(RunConfig(model="predictions", model_args={"file": str(records)}, tasks="synth-caption",
                            data_dir=data, output_dir=tmp_path / "out", cache_dir=cache_dir), registry)
    [rescored] = summary.results
    assert rescored.metrics == original.metrics and rescored.n_items == original.n_items
    assert rescored.n_failed == 0 and not list(data.rglob("*.wav"))  # scored with no audio file present


def test_a_missing_record_fails_its_item_and_the_run_goes_on(synth_suite, registry, cache_dir, tmp_path):
    suite = synth_suite("pengi-tiny")
    original = suite.results[("synth-count", "qa")]
    lines = records_path(result_path(suite.output_dir, original)).read_text().splitlines()
    dropped = json.loads(lines[0])
    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text("\n".join(lines[1:]) + "\n")
    data = metadata_only(cache_dir, "count", tmp_path / "data")
    summary = run(RunConfig(model="predictions", model_args={"file": str(outputs)}, tasks="synth-count",
                            data_dir=data, output_dir=tmp_path / "out", cache_dir=cache_dir), registry)
    [rescored] = summary.results
    assert rescored.n_failed == 1 and rescored.n_items == original.n_items
    correct_without = sum(json.loads(line)["correct"] for line in lines[1:])
    assert rescored.metrics["accuracy"] == pytest.approx(correct_without / original.n_items)
    failed = [r for r in map(json.loads, records_path(result_path(tmp_path / "out", rescored)).read_text().splitlines())
              if r["error"]]
    assert [r["id"] for r in failed] == [dropped["id"]] and "no output for item" in failed[0]["error"]


def test_predictions_needs_a_readable_file(registry, tmp_path):
    with pytest.raises(UsageError, match="file=OUTPUTS.jsonl"):
        registry.load_model("predictions", {"file": str(tmp_path / "absent.jsonl")})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    with pytest.raises(UsageError, match="line 1"):
        registry.load_model("predictions", {"file": str(bad)})
