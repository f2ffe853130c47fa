"""The leaderboard: markdown generated from results files, deterministic, side by side with published numbers."""

import json
import re
import sys
from datetime import date
from pathlib import Path

import pytest

from alm_bench import cli
from alm_bench.evaluators import BUILTIN_METHODS
from alm_bench.evaluators.base import Method, Metric
from alm_bench.leaderboard import load_results, render
from alm_bench.results import Result
from alm_bench.specs import DatasetSpec, Reference, TaskSpec

REPO = Path(__file__).resolve().parents[1]
JARS = "needs Stanford CoreNLP jars; fetch them with network access"


def spec(task_id, domain="sound events", type="multiclass", metric="accuracy",
         methods=("text_matching", "log_likelihood", "linear_probe"), prompts=("p1", "p2"), **fields) -> TaskSpec:
    return TaskSpec(id=task_id, domain=domain, type=type, description="", metric=metric,
                    dataset=DatasetSpec("synth", "generated", "CC0-1.0"), methods={m: {} for m in methods},
                    prompts=prompts, **fields)


def write(root: Path, model="m1", task="t-events", method="text_matching", prompt="p1", metrics=None,
          subdir="", finished="2026-01-02T10:00:00+00:00", **fields) -> Path:
    """A results file as the runner writes it (``fields`` override or add top-level keys)."""
    metrics = {"accuracy": 0.5} if metrics is None else metrics
    provenance = {"alm_bench_version": "0.1.0", "model_plugin": "plug", "model_args": {"size": "tiny"},
                  "model_config": {"dim": 8}, "model_config_hash": "abc123", "seed": 7, "limit": None,
                  "finished_at": finished, **fields.pop("provenance", {})}
    result = Result(model, task, method, prompt, metrics, next(iter(metrics)), n_items=250, n_failed=0,
                    partial=False, dataset_items=250, provenance=provenance)
    data = {**result.to_json(), **fields}
    path = root / subdir / model / task / f"{result.stem()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def edit(path: Path, **fields) -> None:
    """Overwrite top-level fields of a written results file (to break it)."""
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}), encoding="utf-8")


def build(root: Path, tasks=(), methods=None) -> str:
    return render(load_results(root), {t.id: t for t in tasks}, methods)


class Transcription(Method):
    """A third-party method whose metric is lower-is-better: the leaderboard reads its declaration."""

    name = "transcription"
    title = "Speech recognition"
    task_types = ("qa",)
    metrics = (Metric("WER", higher_is_better=False, best=0.0, headline=True),)


def section(md: str, title: str, domain: str = "") -> str:
    text = md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return text.split(f"\n### {domain}\n", 1)[1].split("\n### ", 1)[0] if domain else text


def table(text: str) -> dict[str, dict[str, str]]:
    """label (note refs stripped) -> column header -> cell, for the first table of ``text``."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    split = lambda line: [c.strip() for c in line.strip("|").split(" | ")]  # noqa: E731
    header = split(lines[0])
    return {re.sub(r" \[\d+\]", "", split(line)[0]): dict(zip(header[1:], split(line)[1:])) for line in lines[1:]
            if not line.startswith("|---")}


def note(text: str, cell: str) -> str:
    """The note a cell refers to (its first reference)."""
    number = re.search(r"\[(\d+)\]", cell).group(1)
    return re.search(rf"^- \[{number}\] (.*)$", text, re.M).group(1)


EVENTS = spec("t-events")


def test_best_value_per_column_is_bold_and_the_chance_level_never_is(tmp_path):
    write(tmp_path, "m1", metrics={"accuracy": 0.70})
    write(tmp_path, "m2", metrics={"accuracy": 0.90})
    write(tmp_path, "m3", metrics={"accuracy": 0.90})  # ties share the bold
    write(tmp_path, "m1", task="t-asr", method="transcription", prompt="", metrics={"WER": 0.30})
    write(tmp_path, "m2", task="t-asr", method="transcription", prompt="", metrics={"WER": 0.10})
    methods = {**{m.name: m for m in BUILTIN_METHODS}, "transcription": Transcription()}
    md = build(tmp_path, [EVENTS], methods)
    rows = table(section(md, "Zero-shot: text matching", "Sound events"))
    column = "t-events · accuracy ↑"
    assert rows["m2"][column] == rows["m3"][column] == "**0.900**" and rows["m1"][column] == "0.700"
    assert not rows["Chance level"][column].startswith("**")
    rows = table(section(md, "Speech recognition"))  # the method's declared title
    assert rows["m2"]["t-asr · WER ↓"] == "**0.100**" and rows["m1"]["t-asr · WER ↓"] == "0.300"  # lower: better
    assert "Speech recognition" not in build(tmp_path, [EVENTS])  # without the plugin: its name, higher-is-better


def test_a_lone_value_is_not_bold(tmp_path):
    write(tmp_path, "m1", metrics={"accuracy": 0.70})
    assert table(section(build(tmp_path, [EVENTS]), "Zero-shot: text matching"))["m1"]["t-events · accuracy ↑"] \
        == "0.700"


def test_not_run_is_a_dash_and_an_unavailable_metric_is_na_with_its_reason(tmp_path):
    caption = spec("t-cap", domain="captioning", type="captioning", metric="CIDEr-D", methods=("captioning",),
                   prompts=("describe",))
    write(tmp_path, "m1", metrics={"accuracy": 0.5})
    write(tmp_path, "m1", task="t-tags", metrics={"accuracy": 0.6})
    write(tmp_path, "m2", metrics={"accuracy": 0.7})
    write(tmp_path, "m1", task="t-cap", method="captioning", prompt="describe",
          metrics={"CIDEr-D": 0.4, "SPICE": None, "METEOR": None}, unavailable={"SPICE": JARS})
    md = build(tmp_path, [EVENTS, spec("t-tags"), caption])
    assert table(section(md, "Zero-shot: text matching"))["m2"]["t-tags · accuracy ↑"] == "—"
    text = section(md, "Captioning")
    row = table(text)["m1"]
    assert row["t-cap · CIDEr-D ↑"] == "0.400"
    assert row["t-cap · SPICE ↑"].startswith("n/a [") and note(text, row["t-cap · SPICE ↑"]) == \
        f"n/a: SPICE unavailable: {JARS}"
    assert note(text, row["t-cap · METEOR ↑"]) == "n/a: METEOR unavailable: no value recorded and no reason given"
    assert "|  |" not in md and "| |" not in md  # never a silent blank


def test_a_partial_run_is_marked_with_its_item_count_and_never_ranked(tmp_path):
    write(tmp_path, "full", metrics={"accuracy": 0.60})
    write(tmp_path, "limited", metrics={"accuracy": 0.99}, partial=True, n_items=20,
          provenance={"limit": 20})
    # every item of the copy was used, but the copy is smaller than the official evaluation set
    write(tmp_path, "subset", metrics={"accuracy": 0.95}, dataset_items=400, n_items=400, expected_items=2000)
    write(tmp_path, "whole", metrics={"accuracy": 0.50}, expected_items=250)
    text = section(build(tmp_path, [EVENTS]), "Zero-shot: text matching")
    rows = table(text)
    column = "t-events · accuracy ↑"
    assert rows["limited"][column].startswith("0.990 (partial: 20 items) [")
    assert "20 items scored with --limit 20" in note(text, rows["limited"][column])
    assert "Not a full-dataset score" in note(text, rows["limited"][column])
    assert rows["subset"][column].startswith("0.950 (partial: 400 items) [")
    assert "the data copy holds 400 of the 2000 items" in note(text, rows["subset"][column])
    assert rows["full"][column] == "**0.600**" and rows["whole"][column] == "0.500"  # partial runs never win


def test_published_numbers_from_the_spec_are_rows_labelled_with_their_source(tmp_path):
    events = spec("t-events", references=(
        Reference("Pengi", "accuracy", 0.919, "Deshmukh et al. 2023, Table 3", method="text_matching"),
        Reference("CLAP", "accuracy", 0.826, "Elizalde et al. 2023"),  # no method: the task's first
        Reference("Pengi", "accuracy", 0.890, "Deshmukh et al. 2023, Table 5", method="linear_probe"),
    ))
    scenes = spec("t-scenes", domain="acoustic scenes", references=(
        Reference("Pengi", "accuracy", 0.529, "Deshmukh et al. 2023, Table 3", method="text_matching"),))
    write(tmp_path, "m1", metrics={"accuracy": 0.80})
    md = build(tmp_path, [events, scenes])
    text = section(md, "Zero-shot: text matching", "Sound events")
    rows = table(text)
    column = "t-events · accuracy ↑"
    assert rows["Pengi (paper)"][column].startswith("**0.919** [")
    assert note(text, rows["Pengi (paper)"][column]) == "Pengi (paper): Deshmukh et al. 2023, Table 3"
    assert rows["CLAP (paper)"][column].startswith("0.826 [") and rows["m1"][column] == "0.800"
    assert note(text, rows["CLAP (paper)"][column]) == "CLAP (paper): Elizalde et al. 2023"
    assert "0.890" not in text
    probe = table(section(md, "Linear probe"))
    assert probe["Pengi (paper)"][column].startswith("0.890 [") and "CLAP (paper)" not in probe
    # a task nobody ran still shows the paper's number
    assert table(section(md, "Zero-shot: text matching", "Acoustic scenes"))["Pengi (paper)"][
        "t-scenes · accuracy ↑"].startswith("0.529 [")


def test_the_newest_run_wins_and_the_table_says_so(tmp_path):
    write(tmp_path, "m1", metrics={"accuracy": 0.10}, subdir="b", finished="2026-01-02T10:00:00+02:00")  # 08:00 UTC
    write(tmp_path, "m1", metrics={"accuracy": 0.20}, subdir="a", finished="2026-01-02T09:00:00+00:00")
    write(tmp_path, "m1", metrics={"accuracy": 0.05}, subdir="c", finished="2025-12-31T09:00:00+00:00")
    md = build(tmp_path, [EVENTS])
    text = section(md, "Zero-shot: text matching")
    cell = table(text)["m1"]["t-events · accuracy ↑"]
    assert cell.startswith("0.200 [")
    assert note(text, cell).startswith("m1 on t-events (Zero-shot: text matching, prompt \"p1\"): newest of 3 runs "
                                       "shown (finished 2026-01-02T09:00:00+00:00); superseded: ")
    assert "Built from 3 results files: 1 runs shown, 2 older runs superseded" in md


def test_each_method_has_its_own_section_and_each_domain_its_own_table(tmp_path):
    write(tmp_path, "m1", method="linear_probe", prompt="", metrics={"accuracy": 0.33, "accuracy_std": 0.02})
    write(tmp_path, "m1", method="log_likelihood", metrics={"accuracy": 0.22})
    write(tmp_path, "m1", method="text_matching", metrics={"accuracy": 0.11})
    write(tmp_path, "m1", task="t-scenes", metrics={"accuracy": 0.44})
    write(tmp_path, "m1", task="t-mystery", method="text_matching", metrics={"accuracy": 0.55})  # no spec installed
    md = build(tmp_path, [EVENTS, spec("t-scenes", domain="acoustic scenes")])
    titles = re.findall(r"^## (.*)$", md, re.M)
    assert titles == ["Zero-shot: text matching", "Zero-shot: log-likelihood", "Linear probe", "Per prompt"]
    text_matching = section(md, "Zero-shot: text matching")
    assert re.findall(r"^### (.*)$", text_matching, re.M) == ["Sound events", "Acoustic scenes",
                                                               "Other (task spec not installed)"]
    assert "0.11" in text_matching and "0.22" not in text_matching and "0.33" not in text_matching
    assert table(section(md, "Linear probe"))["m1"] == {"t-events · accuracy ↑": "0.330 ± 0.020"}  # std: no column
    assert table(section(md, "Zero-shot: text matching", "Other (task spec not installed)"))["m1"][
        "t-mystery · accuracy ↑"] == "0.550"


def test_per_prompt_table_compares_prompts_and_main_tables_show_the_default_prompt(tmp_path):
    write(tmp_path, "m1", prompt="p1", metrics={"accuracy": 0.40})
    write(tmp_path, "m1", prompt="p2", metrics={"accuracy": 0.60})
    write(tmp_path, "m1", method="log_likelihood", prompt="p2", metrics={"accuracy": 0.30})
    write(tmp_path, "m2", prompt="p1", metrics={"accuracy": 0.50})  # one prompt: nothing to compare
    events = spec("t-events", references=(
        Reference("Pengi", "accuracy", 0.8, "Table 11", method="text_matching", prompt="p2"),
        Reference("Pengi", "accuracy", 0.7, "Table 11", method="text_matching", prompt="p1")))
    md = build(tmp_path, [events])
    main = section(md, "Zero-shot: text matching")
    assert table(main)["m1"]["t-events · accuracy ↑"] == "0.400"  # the default prompt, not the best one
    assert table(main)["Pengi (paper)"]["t-events · accuracy ↑"].startswith("**0.700** [")  # its default prompt
    only_other = section(md, "Zero-shot: log-likelihood")
    cell = table(only_other)["m1"]["t-events · accuracy ↑"]
    assert note(only_other, cell) == ('m1 on t-events (Zero-shot: log-likelihood): prompt "p2" shown; '
                                      'the default prompt "p1" was not run.')
    per_prompt = section(md, "Per prompt")
    assert re.findall(r"^### (.*)$", per_prompt, re.M) == ["Pengi (paper)", "m1"]
    rows = table(section(md, "Per prompt", "m1"))
    column = "t-events · Zero-shot: text matching · accuracy ↑"
    assert list(rows) == ['"p1"', '"p2"', "mean over prompts", "spread (max − min)", "best prompt", "worst prompt"]
    assert list(rows['"p1"']) == [column]
    assert rows['"p1"'][column] == "0.400" and rows['"p2"'][column] == "**0.600**"
    assert rows["mean over prompts"][column] == "0.500" and rows["spread (max − min)"][column] == "0.200"
    assert rows["best prompt"][column] == '"p2" (0.600)' and rows["worst prompt"][column] == '"p1" (0.400)'
    assert table(section(md, "Per prompt", "Pengi (paper)"))['"p2"'][column].startswith("**0.800**")


def test_main_tables_show_the_specs_first_prompt_even_when_another_scores_higher(tmp_path):
    write(tmp_path, "m1", prompt="a sound", metrics={"accuracy": 0.9})
    write(tmp_path, "m1", prompt="this is a sound of", metrics={"accuracy": 0.3})
    md = build(tmp_path, [spec("t-events", prompts=("this is a sound of", "a sound"))])
    assert table(section(md, "Zero-shot: text matching"))["m1"]["t-events · accuracy ↑"] == "0.300"


def test_failed_items_are_counted_where_non_zero(tmp_path):
    write(tmp_path, "m1", metrics={"accuracy": 0.5}, n_failed=3)
    write(tmp_path, "m2", metrics={"accuracy": 0.4})
    rows = table(section(build(tmp_path, [EVENTS]), "Zero-shot: text matching"))
    assert rows["m1"]["t-events · accuracy ↑"] == "**0.500** (3/250 failed)"
    assert rows["m2"]["t-events · accuracy ↑"] == "0.400"


def test_provenance_is_listed_under_every_table(tmp_path):
    write(tmp_path, "m1", metrics={"accuracy": 0.5})
    write(tmp_path, "m1", task="t-other", metrics={"accuracy": 0.5}, finished="2026-01-05T00:00:00+00:00",
          provenance={"seed": 8})
    write(tmp_path, "m1", method="linear_probe", prompt="", metrics={"accuracy": 0.5})
    md = build(tmp_path, [EVENTS, spec("t-other")])
    line = ("- m1: alm-bench 0.1.0 · plugin plug · model config abc123 · args `{\"size\": \"tiny\"}` · seed 7, 8"
            " · finished 2026-01-02 to 2026-01-05")
    assert line in section(md, "Zero-shot: text matching").split("Provenance:")[1]
    assert "seed 7 · finished 2026-01-02\n" in section(md, "Linear probe").split("Provenance:")[1]


def test_chance_level_is_the_analytic_value_the_results_record(tmp_path):
    tags = spec("t-tags", type="multilabel", metric="mAP")
    fewshot = spec("t-few", domain="few-shot", type="fewshot", metric="5-way accuracy", methods=("fewshot",))
    write(tmp_path, "m1", metrics={"accuracy": 0.9}, chance={"accuracy": 0.125})
    write(tmp_path, "m1", task="t-tags", metrics={"mAP": 0.9, "F1": 0.8}, chance={"mAP": 0.27})
    write(tmp_path, "chance", task="t-tags", metrics={"mAP": 0.31, "F1": 0.3}, chance={"mAP": 0.27})
    write(tmp_path, "m1", task="t-few", method="fewshot", metrics={"5-way accuracy": 0.9, "5-way ci95": 0.05})
    write(tmp_path, "m2", task="t-few", method="fewshot", metrics={"5-way accuracy": 0.8}, chance={"5-way accuracy": 0.2})
    md = build(tmp_path, [EVENTS, tags, fewshot])
    text = section(md, "Zero-shot: text matching", "Sound events")
    rows = table(text)
    assert rows["chance"]["t-tags · mAP ↑"] == "0.310"  # a model like any other: no name is special
    chance = rows["Chance level"]
    assert chance["t-events · accuracy ↑"].startswith("0.125 [") and chance["t-tags · mAP ↑"].startswith("0.270 [")
    assert "analytic" in note(text, chance["t-events · accuracy ↑"])
    assert chance["t-tags · F1 ↑"].startswith("— [") and "no analytic value of F1" in note(text, chance["t-tags · F1 ↑"])
    few = table(section(md, "Few-shot: in context"))
    assert few["Chance level"]["t-few · 5-way accuracy ↑"].startswith("0.200 [")
    assert few["m1"]["t-few · 5-way accuracy ↑"] == "**0.900** ± 0.050"  # a file written before intervals


def test_intervals_are_shown_with_every_value(tmp_path):
    interval = {"low": 0.55, "high": 0.65, "method": "percentile bootstrap over items", "resamples": 1000}
    write(tmp_path, "m1", metrics={"accuracy": 0.6}, intervals={"accuracy": interval})
    write(tmp_path, "m1", method="linear_probe", prompt="", metrics={"accuracy": 0.7},
          intervals={"accuracy": {**interval, "low": 0.68, "high": 0.72, "method": "t interval over 5 folds"}})
    md = build(tmp_path, [EVENTS])
    assert table(section(md, "Zero-shot: text matching"))["m1"]["t-events · accuracy ↑"] == "0.600 (0.550–0.650)"
    assert table(section(md, "Linear probe"))["m1"]["t-events · accuracy ↑"] == "0.700 (0.680–0.720)"


def test_a_controlled_run_is_its_own_row_says_how_far_it_fell_and_is_never_ranked(tmp_path):
    write(tmp_path, "m1", metrics={"accuracy": 0.6})
    write(tmp_path, "m2", metrics={"accuracy": 0.5})
    write(tmp_path, "m1", metrics={"accuracy": 0.95}, control="silence", subdir="controlled",
          control_effect={"uncontrolled": {"accuracy": 0.6}, "fell_by": {"accuracy": -0.35}})
    text = section(build(tmp_path, [EVENTS]), "Zero-shot: text matching")
    rows = table(text)
    cell = rows["m1 (silence control)"]["t-events · accuracy ↑"]
    assert cell.startswith("0.950 [") and rows["m1"]["t-events · accuracy ↑"] == "**0.600**"
    assert "every clip replaced (silence control); fell from the real audio's run: accuracy by -0.350" in \
        note(text, cell)


def test_output_is_byte_identical_and_independent_of_file_system_order(tmp_path, monkeypatch):
    for i, model in enumerate(["zeta", "alpha", "mid"]):
        write(tmp_path, model, metrics={"accuracy": 0.1 * i + 0.05, "F1": None}, unavailable={"F1": "no reason"})
        write(tmp_path, model, method="linear_probe", prompt="", metrics={"accuracy": 0.3})
    # same key, same timestamp: the tie is broken by path, never by listing order
    write(tmp_path, "alpha", subdir="copy", metrics={"accuracy": 0.77, "F1": None})
    tasks = [EVENTS]
    first = build(tmp_path, tasks)
    assert build(tmp_path, tasks) == first
    original = Path.rglob
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: reversed(list(original(self, pattern))))
    assert build(tmp_path, tasks) == first
    assert str(date.today()) not in first and str(tmp_path) not in first


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    """``alm-bench`` in process (no interpreter start): exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["alm-bench", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


def test_cli_writes_the_same_bytes_every_time(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    write(results, "m1")
    monkeypatch.setattr(cli, "_registry", lambda: type("Registry", (), {
        "tasks": {"t-events": EVENTS}, "methods": {m.name: m for m in BUILTIN_METHODS}})())
    outputs = []
    for name in ("a.md", "b.md"):
        code, err = run_cli(monkeypatch, capsys, "leaderboard", "--results-dir", str(results),
                            "--output", str(tmp_path / "out" / name))
        assert code in (0, None), err
        outputs.append((tmp_path / "out" / name).read_bytes().replace(name.encode(), b"X.md"))
    command = f"alm-bench leaderboard --results-dir {results} --output {tmp_path / 'out' / 'X.md'}"
    assert outputs[0] == outputs[1] == render(load_results(results), {"t-events": EVENTS}, None, command).encode()
    assert f"Rebuild with `{command}`." in outputs[0].decode()


def test_cli_without_output_prints_the_markdown_and_writes_no_file(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    write(results, "m1")
    monkeypatch.setattr(cli, "_registry", lambda: type("Registry", (), {
        "tasks": {"t-events": EVENTS}, "methods": {m.name: m for m in BUILTIN_METHODS}})())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["alm-bench", "leaderboard", "--results-dir", "results"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    out = capsys.readouterr().out
    assert exit_info.value.code in (0, None)
    assert out.startswith("# alm-bench leaderboard") and "Rebuild with `alm-bench leaderboard --results-dir results`." in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # nothing written, no leaderboard/README.md


@pytest.mark.parametrize("setup, phrase", [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "no results files"),
    (lambda root: (root / "m").mkdir(parents=True) or (root / "m" / "x.json").write_text("{oops"), "not valid JSON"),
    (lambda root: (root / "m").mkdir(parents=True) or (root / "m" / "x.json").write_text('{"model": "m"}'),
     "field 'task' is missing"),
    (lambda root: edit(write(root), metrics={"accuracy": "high"}), "metric 'accuracy' is 'high'"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys, setup, phrase):
    root = tmp_path / "results"
    setup(root)
    code, err = run_cli(monkeypatch, capsys, "leaderboard", "--results-dir", str(root),
                        "--output", str(tmp_path / "out.md"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], err
    assert not (tmp_path / "out.md").exists()


def test_leaderboard_readme_is_up_to_date(request):
    results = REPO / "leaderboard" / "results"
    if not results.is_dir() or not any(results.rglob("*.json")):
        pytest.skip("leaderboard/results/ holds no results files yet (the reproducible runs are added later)")
    readme = REPO / "leaderboard" / "README.md"
    tasks = request.getfixturevalue("registry").tasks  # the installed specs, as `alm-bench leaderboard` sees them
    expected = render(load_results(results), tasks)
    assert readme.is_file() and readme.read_text(encoding="utf-8") == expected, \
        "leaderboard/README.md is stale: run `alm-bench leaderboard --results-dir leaderboard/results --output " \
        "leaderboard/README.md` and commit the result"
