"""The command line: user errors are one line on stderr with exit code 2 and no traceback."""

import os
import subprocess
import sys

import pytest


def alm_bench(*args, cache_dir=None):
    env = dict(os.environ)
    if cache_dir:
        env["ALM_BENCH_CACHE"] = str(cache_dir)
    return subprocess.run([sys.executable, "-m", "alm_bench.cli", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("args, phrase", [
    (["run", "--model", "nosuch", "--task", "synth-events"], "unknown model 'nosuch'"),
    (["run", "--model", "oracle", "--task", "nosuch"], "unknown task 'nosuch'"),
    (["run", "--model", "oracle", "--task", "synth-events", "--method", "telepathy"], "unknown method 'telepathy'"),
    (["run", "--model", "oracle", "--task", "synth-events", "--model-args", "dim"], "bad --model-args"),
    (["run", "--model", "oracle", "--task", "synth-events", "--model-args", "colour=red"], "takes no argument"),
    (["run", "--model", "oracle", "--task", "synth-events", "--text-encoder", "nosuch", "--method", "text_matching",
      "--limit", "5"], "unknown text encoder 'nosuch'"),
    (["run", "--model", "oracle", "--task", "synth-events", "--data-dir", "/nonexistent/data"], "no synthetic"),
    (["run", "--model", "oracle", "--task", "synth-retrieval", "--method", "retrieval", "--method-args", "colour=red"],
     "unknown --method-args key 'colour'"),
])
def test_user_errors_exit_2_with_one_line(args, phrase, cache_dir, tmp_path):
    result = alm_bench(*args, "--output-dir", str(tmp_path), cache_dir=cache_dir)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "━" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_bad_option_value_exits_2():
    result = alm_bench("run", "--model", "oracle", "--task", "synth-events", "--batch-size", "0")
    assert result.returncode == 2


def test_list_models_shows_capabilities_and_plugin():
    result = alm_bench("list", "models")
    assert result.returncode == 0
    row = next(line for line in result.stdout.splitlines() if "oracle" in line)
    assert "generate" in row and "embed" in row and "score" in row and "reference-models" in row


def test_list_tasks_shows_domain_metric_and_data_status(cache_dir):
    result = alm_bench("list", "tasks", cache_dir=cache_dir)
    assert result.returncode == 0
    row = next(line for line in result.stdout.splitlines() if "synth-events" in line)
    assert "sound events" in row and "accuracy" in row and ("ok" in row or "generated" in row)


def test_run_prints_a_results_table(cache_dir, tmp_path):
    result = alm_bench("run", "--model", "oracle", "--task", "synth-count", "--output-dir", str(tmp_path),
                       cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    assert "synth-count" in result.stdout and "1.0000" in result.stdout
    assert (tmp_path / "oracle" / "synth-count" / "qa--question-question.json").is_file()


def test_task_all_skips_tasks_without_data_and_says_why(cache_dir, tmp_path):
    # an empty data dir: every synthetic task generates into it, so point at a file path instead
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = alm_bench("run", "--model", "oracle", "--task", "synth-c*", "--data-dir", str(blocker),
                       "--output-dir", str(tmp_path / "out"), "--show-skipped", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    assert "skipped synth-caption" in result.stdout and "skipped synth-count" in result.stdout
