"""The task catalogue on real recordings (../shared/data), the data commands and downloads."""

import csv
import hashlib
import http.server
import json
import tarfile
import threading
import zipfile
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from alm_bench import acquire
from alm_bench.cli import app
from alm_bench.data import DataMissing
from alm_bench.errors import UsageError
from alm_bench.runner import RunConfig, limit_items, run
from alm_bench.specs import DatasetSpec, Download

from .conftest import SHARED

ESC50 = SHARED / "data" / "esc50-mini"
CLOTHO = SHARED / "data" / "clotho-mini"
FSDD = SHARED / "data" / "fsdd"


def _load(registry, task, data_dir, cache_dir):
    spec = registry.tasks[task]
    return registry.loaders[spec.dataset.loader](spec, data_dir, cache_dir)


def test_every_spec_loads_and_the_catalogue_is_complete(registry):
    assert not registry.errors
    paper_tasks = {"clotho-caption", "clotho-retrieval", "clotho-aqa", "esc50", "fsdd-digits"}
    assert paper_tasks <= set(registry.tasks)
    for spec in registry.tasks.values():
        assert spec.dataset.loader in registry.loaders, spec.id
        assert spec.dataset.source and spec.dataset.licence, spec.id


def test_list_tasks_shows_domain_metric_and_data_status(cache_dir):
    result = CliRunner().invoke(app, ["list", "tasks", "--data-dir", str(ESC50)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "│ esc50 " in line)
    assert "sound events" in row and "accuracy" in row and "partial copy (100 of 2000" in row


def test_esc50_mini_official_layout(registry, cache_dir):
    items = _load(registry, "esc50", ESC50, cache_dir)
    assert len(items) == 100 and {i.fold for i in items} == {4}
    labels = Counter(i.labels[0] for i in items)
    assert len(labels) == 50 and set(labels.values()) == {2}
    item = next(i for i in items if i.id == "4-102844-A-49")
    assert item.labels == ("hand saw",) and item.original_labels == ("hand_saw",)
    assert Path(item.audio[0]).is_file()


def test_esc50_zero_shot_on_real_clips_and_probe_on_a_split_within_one_fold(registry, cache_dir, tmp_path):
    summary = run(RunConfig(model="oracle", tasks="esc50", data_dir=ESC50, output_dir=tmp_path,
                            cache_dir=cache_dir), registry)
    results = {r.method: r for r in summary.results}
    assert results["log_likelihood"].metrics["accuracy"] == 1.0
    assert results["text_matching"].metrics["accuracy"] == 1.0
    assert results["zero_shot_embedding"].metrics["accuracy"] == 1.0
    # a partial copy is never reported as the full dataset
    assert all(r.partial and r.expected_items == 2000 and r.dataset_items == 100 for r in results.values())
    assert not summary.skipped and "1 of the 5 official folds" in results["linear_probe"].details["split"]
    saved = json.loads((tmp_path / "oracle/esc50/log_likelihood--generate-metadata.json").read_text())
    assert saved["partial"] and saved["expected_items"] == 2000


def test_clotho_mini_caption_and_retrieval(registry, cache_dir, tmp_path):
    items = _load(registry, "clotho-caption", CLOTHO, cache_dir)
    assert len(items) == 7 and all(len(i.captions) == 5 and i.split == "evaluation" for i in items)
    summary = run(RunConfig(model="oracle", tasks="clotho-caption,clotho-retrieval", data_dir=CLOTHO,
                            output_dir=tmp_path, cache_dir=cache_dir), registry)
    results = {(r.task, r.method): r for r in summary.results}
    assert results[("clotho-retrieval", "retrieval_embedding")].metrics["t2a_R@1"] == 1.0
    oracle_cider = results[("clotho-caption", "captioning")].metrics["CIDEr-D"]
    chance = run(RunConfig(model="chance", tasks="clotho-caption", data_dir=CLOTHO, output_dir=tmp_path,
                           cache_dir=cache_dir), registry).results[0]
    assert oracle_cider > chance.metrics["CIDEr-D"] + 0.5


def test_fsdd_folds_are_speakers_and_labels_are_words(registry, cache_dir):
    items = _load(registry, "fsdd-digits", FSDD, cache_dir)
    assert len(items) == 3000
    speakers_per_fold = {}
    for item in items:
        speakers_per_fold.setdefault(item.fold, set()).add(item.meta["speaker"])
    assert len(speakers_per_fold) == 6 and all(len(s) == 1 for s in speakers_per_fold.values())
    assert {i.labels[0] for i in items} == set(registry.tasks["fsdd-digits"].labels)
    assert next(i for i in items if i.id == "7_jackson_3").labels == ("seven",)


def test_limit_is_balanced_over_folds_and_labels(registry, cache_dir):
    spec = registry.tasks["fsdd-digits"]
    sample = limit_items(_load(registry, "fsdd-digits", FSDD, cache_dir), 200, spec)
    cells = Counter((i.fold, i.labels[0]) for i in sample)
    assert len(sample) == 200 and len(cells) == 60 and set(cells.values()) == {3, 4}
    assert limit_items(sample, 200, spec) == sample  # deterministic


def test_logmel_baseline_probe_on_real_speech_beats_chance(registry, cache_dir, tmp_path):
    summary = run(RunConfig(model="logmel", tasks="fsdd-digits", data_dir=FSDD, limit=600,
                            output_dir=tmp_path, cache_dir=cache_dir), registry)
    (result,) = summary.results
    assert result.method == "linear_probe" and result.n_items == 600
    assert result.metrics["accuracy"] > 0.3  # chance is 0.1; unseen speakers
    assert {s.method for s in summary.skipped} == {"text_matching", "log_likelihood"}


def test_missing_audio_is_counted_with_examples(registry, tmp_path):
    copy = tmp_path / "esc50"
    (copy / "meta").mkdir(parents=True)
    (copy / "meta" / "esc50.csv").write_text((ESC50 / "meta" / "esc50.csv").read_text())
    (copy / "audio").mkdir()
    for wav in sorted((ESC50 / "audio").glob("*.wav"))[:97]:
        (copy / "audio" / wav.name).symlink_to(wav)
    with pytest.raises(DataMissing, match=r"3 of 100 audio files are missing under .*\(e\.g\. audio/.*\.wav"):
        _load(registry, "esc50", copy, tmp_path)
    report = registry.loaders["esc50"].check(registry.tasks["esc50"], copy, tmp_path)
    assert report.status.startswith("incomplete: 3 of 100")


def test_official_archive_nesting_is_found(registry, tmp_path):
    (tmp_path / "ESC-50-master").symlink_to(ESC50)  # as master.zip unpacks
    assert len(_load(registry, "esc50", tmp_path, tmp_path)) == 100


def _write_aqa(root: Path) -> None:
    (root / "audio_files").mkdir(parents=True)
    for name in ("a.wav", "b.wav"):
        sf.write(root / "audio_files" / name, np.zeros(22050, np.float32), 22050)
    rows = [("a.wav", "Is it raining?", "yes", "yes"), ("a.wav", "Is it raining?", "no", "maybe"),
            ("a.wav", "Is it raining?", "yes", "yes"), ("b.wav", "What animal is heard?", "dog", "yes"),
            ("b.wav", "What animal is heard?", "cat", "yes"), ("b.wav", "What animal is heard?", "Dog", "yes")]
    with open(root / "clotho_aqa_test.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_name", "QuestionText", "answer", "confidence"])
        writer.writerows(rows)


def test_clotho_aqa_majority_answers(registry, tmp_path):
    _write_aqa(tmp_path)
    items = _load(registry, "clotho-aqa", tmp_path, tmp_path)
    assert [(i.question, i.answer) for i in items] == [("Is it raining?", "yes"), ("What animal is heard?", "dog")]
    assert items[1].meta["answers"] == ["dog", "cat", "dog"]


def test_tasks_without_data_are_skipped_with_the_fix(registry, tmp_path):
    summary = run(RunConfig(model="chance", tasks="esc50,clotho-aqa", output_dir=tmp_path,
                            cache_dir=tmp_path / "empty-cache"), registry)
    assert not summary.results
    reasons = {s.task: s.reason for s in summary.skipped}
    assert "alm-bench data download esc50" in reasons["esc50"]
    assert "clotho_aqa_test.csv" in reasons["clotho-aqa"]


def test_data_check_exit_codes(cache_dir, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["data", "check", "esc50", "--data-dir", str(ESC50)])
    assert ok.exit_code == 0 and "partial copy (100 of 2000 items)" in ok.output
    missing = runner.invoke(app, ["data", "check", "fsdd-digits", "--cache-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "alm-bench data download fsdd-digits" in missing.output


# -- downloads, against a local HTTP server -------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()


def _fsdd_archive(served: Path) -> Path:
    archive = served / "fsdd.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for wav in sorted((FSDD / "recordings").glob("*_jackson_*.wav"))[:20]:
            tf.add(wav, arcname=f"free-spoken-digit-dataset-1.0.10/recordings/{wav.name}")
    return archive


def _spec_with(registry, task, downloads):
    import dataclasses

    spec = registry.tasks[task]
    return dataclasses.replace(spec, dataset=dataclasses.replace(spec.dataset, downloads=tuple(downloads)))


def test_download_verifies_unpacks_and_is_idempotent(registry, server, tmp_path):
    served, url, requests = server
    archive = _fsdd_archive(served)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    spec = _spec_with(registry, "fsdd-digits", [Download(url=f"{url}/fsdd.tar.gz", sha256=sha)])
    root = acquire.download(spec, tmp_path / "cache")
    assert json.loads((root / "downloaded.json").read_text())["fsdd.tar.gz"]["sha256"] == sha
    items = registry.loaders["fsdd"](spec, None, tmp_path / "cache")  # found inside the archive's top folder
    assert len(items) == 20
    acquire.download(spec, tmp_path / "cache")
    assert requests == ["/fsdd.tar.gz"]  # nothing fetched twice


def test_download_with_a_wrong_checksum_leaves_nothing(registry, server, tmp_path):
    served, url, _ = server
    _fsdd_archive(served)
    spec = _spec_with(registry, "fsdd-digits", [Download(url=f"{url}/fsdd.tar.gz", md5="0" * 32)])
    with pytest.raises(UsageError, match="does not match the pinned"):
        acquire.download(spec, tmp_path / "cache")
    downloads = tmp_path / "cache" / "data" / "fsdd" / "downloads"
    assert not list(downloads.iterdir())  # no .part, no unverified file


def test_zip_members_cannot_escape(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.txt", "x")
    (tmp_path / "dest").mkdir()
    with pytest.raises(UsageError, match="outside"):
        acquire.extract(archive, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()


def test_unreachable_url_and_undownloadable_dataset_are_one_line_errors(registry, tmp_path):
    spec = _spec_with(registry, "fsdd-digits", [Download(url="http://127.0.0.1:9/nothing.tar.gz")])
    with pytest.raises(UsageError, match="cannot download"):
        acquire.download(spec, tmp_path)
    no_source = _spec_with(registry, "fsdd-digits", [])
    with pytest.raises(UsageError, match="cannot be downloaded automatically"):
        acquire.download(no_source, tmp_path)
    assert isinstance(registry.tasks["esc50"].dataset, DatasetSpec)


def test_esc50_actions_reads_the_annotations_beside_esc50(registry, tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text((ESC50 / "meta" / "esc50.csv").read_text())
    (tmp_path / "audio").symlink_to(ESC50 / "audio")
    (tmp_path / "meta" / "esc50-actions.csv").write_text(
        "filename,actions\n4-102844-A-49.wav,scraping;vibrating\n4-102871-A-42.wav,wailing\n")
    items = _load(registry, "esc50-actions", tmp_path, tmp_path)
    assert [(i.id, i.labels, i.fold) for i in items] == [
        ("4-102844-A-49", ("scraping", "vibrating"), 4), ("4-102871-A-42", ("wailing",), 4)]
    (tmp_path / "meta" / "esc50-actions.csv").write_text("filename,actions\n4-102844-A-49.wav,juggling\n")
    with pytest.raises(DataMissing, match="labels the spec does not declare \\(juggling\\)"):
        _load(registry, "esc50-actions", tmp_path, tmp_path)


@pytest.mark.parametrize("task, data", [("esc50", ESC50), ("clotho-retrieval", CLOTHO)])
def test_embedding_baseline_runs_end_to_end_and_says_why_methods_are_skipped(registry, cache_dir, tmp_path,
                                                                             task, data):
    summary = run(RunConfig(model="logmel", tasks=task, data_dir=data, output_dir=tmp_path, cache_dir=cache_dir),
                  registry)
    reasons = {s.method: s.reason for s in summary.skipped}
    if task == "esc50":  # the 100-clip copy holds fold 4 only: probed on a stated split within it
        (result,) = summary.results
        assert result.method == "linear_probe" and result.partial and result.n_items == 20  # the 20% test part
        assert "stratified 60/20/20" in result.details["split"] and "seed 0" in result.details["split"]
        assert set(reasons) == {"text_matching", "log_likelihood"}
    else:
        assert not summary.results and set(reasons) == set(registry.tasks[task].methods)
        assert "lacks capability" in reasons["retrieval_embedding"]
