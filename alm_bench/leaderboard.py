"""The leaderboard: markdown generated from results JSON files, side by side with published numbers.

Everything here is a pure function of the results files and the task specs: the same inputs give
byte-identical markdown whatever the file-system order, and nothing depends on the current date,
the machine or the path the results were read from.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

from .errors import UsageError
from .evaluators import BUILTIN_METHODS
from .evaluators.base import Method
from .results import Result, load_results, write_atomic
from .specs import DOMAINS, Reference, TaskSpec

OTHER_DOMAIN = "other (task spec not installed)"
DECIMALS = 3

#: a results file as the leaderboard reads it (the results module owns the schema)
Run = Result

__all__ = ["load_results", "render", "write_leaderboard", "Run"]


def _builtin_methods() -> dict[str, Method]:
    return {m.name: m for m in BUILTIN_METHODS}


# ---------------------------------------------------------------------------------------------- tables

class Column(NamedTuple):
    key: tuple
    header: str
    metric: str
    #: the method declares the metric higher-is-better (the default for undeclared metrics)
    higher: bool = True


@dataclass(frozen=True)
class Cell:
    value: float | None = None
    #: shown instead of a value ("—", "n/a")
    text: str = "—"
    #: the metric's spread in results written before intervals (std over folds, CI half-width), shown as ± x
    spread: float | None = None
    #: the 95% interval recorded with the metric, shown as [low, high]
    interval: tuple[float, float] | None = None
    suffix: str = ""
    notes: tuple[str, ...] = ()
    #: takes part in "best of the column" (not partial runs, not the chance level)
    ranked: bool = True


@dataclass
class Row:
    label: str
    cells: dict[tuple, Cell] = field(default_factory=dict)


@dataclass
class Table:
    first_header: str
    columns: list[Column]
    rows: list[Row]
    provenance: list[str]


@dataclass(frozen=True)
class Declarations:
    """What the installed methods declare: titles, section order, metric directions."""

    methods: Mapping[str, Method]

    def title(self, method: str) -> str:
        found = self.methods.get(method)
        return found.title if found is not None and found.title else method

    def rank(self, method: str) -> tuple:
        order = list(dict.fromkeys(self.title(m) for m in self.methods))  # registration order
        title = self.title(method)
        return (order.index(title), method) if title in order else (len(order), method)

    def higher(self, method: str, metric: str) -> bool:
        found = self.methods.get(method)
        declared = found.metric(metric) if found is not None else None
        return declared.higher_is_better if declared is not None else True

    def column(self, key: tuple, header: str, method: str, metric: str) -> Column:
        higher = self.higher(method, metric)
        return Column(key, f"{header} {'↑' if higher else '↓'}", metric, higher)


def _spread_names(metric: str) -> tuple[str, ...]:
    names = (f"{metric}_std",)
    return names + ((metric[: -len(" accuracy")] + " ci95",) if re.fullmatch(r"\d+-way accuracy", metric) else ())


def _is_spread(name: str, metrics: Iterable[str]) -> bool:
    """``accuracy_std`` and ``5-way ci95`` are shown as ± next to their metric, not as columns."""
    return any(name in _spread_names(base) for base in metrics if base != name)


def _domain(spec: TaskSpec | None) -> str:
    return spec.domain if spec else OTHER_DOMAIN


def _default_prompt(spec: TaskSpec | None) -> str:
    return spec.prompts[0] if spec and spec.prompts else ""


def _pick(runs: list[Run], spec: TaskSpec | None) -> Run:
    """The run a main table shows: the spec's first (default) prompt, else the earliest prompt run."""
    prompts = list(spec.prompts) if spec else []
    return min(runs, key=lambda r: (prompts.index(r.prompt) if r.prompt in prompts else len(prompts), r.prompt))


def _label(run: Run) -> str:
    """A row: the model, or the model under an audio control."""
    return f"{run.model} ({run.control} control)" if run.control else run.model


def _run_notes(run: Run, decl: Declarations) -> tuple[str, ...]:
    prompt = f", prompt {_q(run.prompt)}" if run.prompt else ""
    where = f"{_label(run)} on {run.task} ({decl.title(run.method)}{prompt})"
    notes = []
    if run.partial:
        notes.append(f"{where}: partial run, {run.n_items} items scored{_partial_detail(run)}. "
                     "Not a full-dataset score; not ranked.")
    if run.superseded:
        older = ", ".join(sorted(run.superseded))
        notes.append(f"{where}: newest of {len(run.superseded) + 1} runs shown (finished {run.finished_at or '?'}); "
                     f"superseded: {older}.")
    fell = run.control_effect.get("fell_by", {})
    if run.control and fell:
        drops = ", ".join(f"{name} by {_fmt(value)}" for name, value in fell.items())
        notes.append(f"{where}: every clip replaced ({run.control} control); fell from the real audio's run: {drops}.")
    return tuple(notes)


def _prompt_note(run: Run, spec: TaskSpec | None, decl: Declarations) -> tuple[str, ...]:
    """A main table shows the default prompt; say so when a model only ran others."""
    default = _default_prompt(spec)
    if not run.prompt or not default or run.prompt == default:
        return ()
    return (f"{_label(run)} on {run.task} ({decl.title(run.method)}): prompt {_q(run.prompt)} shown; "
            f"the default prompt {_q(default)} was not run.",)


def _partial_detail(run: Run) -> str:
    limit = run.provenance.get("limit")
    parts = [f" with --limit {limit}"] if limit else []
    if run.expected_items and run.dataset_items is not None and run.dataset_items < run.expected_items:
        parts.append(f"; the data copy holds {run.dataset_items} of the {run.expected_items} items of the official set")
    elif run.dataset_items is not None:
        parts.append(f"; the data copy holds {run.dataset_items} items")
    return "".join(parts)


def _q(text: str) -> str:
    return '"' + text + '"'


def _run_cell(run: Run, metric: str, decl: Declarations) -> Cell:
    value = run.metrics.get(metric)
    if value is None:
        reason = run.unavailable.get(metric) or (
            "no value recorded and no reason given" if metric in run.metrics else "not in this run's results")
        return Cell(text="n/a", notes=(f"n/a: {metric} unavailable: {reason}",), ranked=False)
    spread = next((run.metrics[s] for s in _spread_names(metric) if run.metrics.get(s) is not None), None)
    interval = run.intervals.get(metric)
    suffix = []
    if run.partial:
        suffix.append(f"(partial: {run.n_items} items)")
    if run.n_failed:
        suffix.append(f"({run.n_failed}/{run.n_items} failed)")
    return Cell(value, spread=None if interval else spread, suffix=" ".join(suffix), notes=_run_notes(run, decl),
                ranked=not run.partial and not run.control,
                interval=(interval["low"], interval["high"]) if interval else None)


def _references(spec: TaskSpec, method: str) -> list[Reference]:
    """Published numbers for the main table of ``method``; one without a method goes to the task's first method."""
    first = next(iter(spec.methods), "")
    return [ref for ref in spec.references
            if (ref.method or first) == method and ref.prompt in ("", _default_prompt(spec))]


def _paper_label(model: str) -> str:
    return model if model.endswith("(paper)") else f"{model} (paper)"


def _published_rows(specs: list[TaskSpec], method: str, columns: dict[tuple, str]) -> list[Row]:
    rows: dict[str, Row] = {}
    for spec in specs:
        for ref in _references(spec, method):
            label = _paper_label(ref.model)
            key = (spec.id, ref.metric)
            columns.setdefault(key, spec.metric)
            # a repeated reference: the spec's first one wins, and only its source is cited
            rows.setdefault(label, Row(label)).cells.setdefault(key, _published_cell(label, ref))
    return [rows[label] for label in sorted(rows)]


def _published_cell(label: str, ref: Reference) -> Cell:
    return Cell(ref.value, notes=(f"{label}: {ref.source or 'no source given'}",))


def _chance_cell(task: str, metric: str, runs: list[Run]) -> Cell:
    """The analytic chance level the method declared, as the results recorded it for this task."""
    levels = sorted({round(r.chance[metric], 9) for r in runs if metric in r.chance})
    if not levels:
        return Cell(ranked=False, notes=(f"chance level: no analytic value of {metric} is recorded for {task}.",))
    note = f"chance level on {task}: analytic (a uniform guess or a random ranking), as the method declares it."
    if len(levels) > 1:
        note += f" The runs record different values ({', '.join(_fmt(v) for v in levels)}; the data differ); the first is shown."
    return Cell(levels[0], ranked=False, notes=(note,))


def main_table(method: str, runs: list[Run], specs: list[TaskSpec], tasks: Mapping[str, TaskSpec],
               decl: Declarations) -> Table:
    """Rows: published numbers, models, the chance level; columns: (task, metric) of one domain and method."""
    shown = _shown_runs(runs, tasks)
    columns: dict[tuple, str] = {}  # (task, metric) -> the task's primary metric, in order of appearance
    published = _published_rows(specs, method, columns)
    for label in sorted(shown):
        for task, run in sorted(shown[label].items()):
            for metric in [*run.metrics, *run.unavailable]:
                if not _is_spread(metric, run.metrics):
                    columns.setdefault((task, metric), run.primary_metric)
    keys = _order_columns(columns, tasks)
    used = [run for label in sorted(shown) for _, run in sorted(shown[label].items())]
    cols = [decl.column(k, f"{k[0]} · {k[1]}", method, k[1]) for k in keys]
    rows = published + [_model_row(label, shown[label], keys, tasks, decl) for label in sorted(shown)]
    chance = Row("Chance level", {(task, metric): _chance_cell(task, metric, [r for r in runs if r.task == task])
                                  for task, metric in keys})
    return Table("model", cols, rows + [chance], provenance_lines(used))


def _shown_runs(runs: list[Run], tasks: Mapping[str, TaskSpec]) -> dict[str, dict[str, Run]]:
    """row label -> task -> the run a main table shows (one prompt per task)."""
    groups: dict[str, dict[str, list[Run]]] = {}
    for run in runs:
        groups.setdefault(_label(run), {}).setdefault(run.task, []).append(run)
    return {label: {task: _pick(group, tasks.get(task)) for task, group in per_task.items()}
            for label, per_task in groups.items()}


def _order_columns(columns: dict[tuple, str], tasks: Mapping[str, TaskSpec]) -> list[tuple]:
    """By task; the task's primary metric first, then the metrics in the order the results list them."""
    position = {key: i for i, key in enumerate(columns)}

    def rank(key: tuple) -> tuple:
        spec = tasks.get(key[0])
        return key[0], key[1] != (spec.metric if spec else columns[key]), position[key]

    return sorted(columns, key=rank)


def _model_row(label: str, shown: dict[str, Run], keys: list[tuple], tasks: Mapping[str, TaskSpec],
               decl: Declarations) -> Row:
    row = Row(label)
    for task, metric in keys:
        run = shown.get(task)
        if run is not None:
            cell = _run_cell(run, metric, decl)
            row.cells[(task, metric)] = replace(cell, notes=cell.notes + _prompt_note(run, tasks.get(task), decl))
    return row


def provenance_lines(runs: list[Run]) -> list[str]:
    """One line per model: package version, plugin, model config, seed and dates of the runs shown."""
    lines = []
    for model in sorted({r.model for r in runs}):
        mine = [r.provenance for r in runs if r.model == model]

        def values(name: str, fmt=str) -> str:
            found = sorted({fmt(p.get(name)) for p in mine if p.get(name) is not None})
            return ", ".join(found) or "?"

        dates = sorted({str(p.get("finished_at"))[:10] for p in mine if p.get("finished_at")})
        when = "?" if not dates else dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
        args = values("model_args", lambda a: json.dumps(a, sort_keys=True))
        lines.append(f"- {_escape(model)}: alm-bench {values('alm_bench_version')} · plugin {values('model_plugin')}"
                     f" · model config {values('model_config_hash')} · args `{args}` · seed {values('seed')}"
                     f" · finished {when}")
    return lines


def prompt_tables(runs: list[Run], tasks: Mapping[str, TaskSpec], decl: Declarations) -> dict[str, Table]:
    """Per model (and per paper): rows = prompts, then the mean, spread and best and worst prompt over
    them; columns = (task, method) run with two or more prompts."""
    cells: dict[str, dict[tuple, dict[str, Cell]]] = {}
    used: dict[str, list[Run]] = {}
    for run in runs:
        if not run.prompt:
            continue
        metric = _primary(run, tasks.get(run.task))
        cells.setdefault(_label(run), {}).setdefault((run.task, run.method, metric), {})[run.prompt] = \
            _run_cell(run, metric, decl)
        used.setdefault(_label(run), []).append(run)
    for task_id in sorted(tasks):
        spec = tasks[task_id]
        for ref in spec.references:
            if ref.prompt:
                label = _paper_label(ref.model)
                key = (spec.id, ref.method or next(iter(spec.methods), ""), ref.metric)
                cells.setdefault(label, {}).setdefault(key, {}).setdefault(ref.prompt, _published_cell(label, ref))
    tables = {}
    for label in sorted(cells):
        compared = {key: per_prompt for key, per_prompt in cells[label].items() if len(per_prompt) >= 2}
        if not compared:
            continue
        keys = sorted(compared, key=lambda k: (k[0], decl.rank(k[1]), k[2]))
        cols = [decl.column(k, f"{k[0]} · {decl.title(k[1])} · {k[2]}", k[1], k[2]) for k in keys]
        prompts = sorted({p for k in keys for p in compared[k]})
        rows = [Row(_q(p), {k: compared[k][p] for k in keys if p in compared[k]}) for p in prompts]
        shown = [r for r in used.get(label, []) if (r.task, r.method, _primary(r, tasks.get(r.task))) in compared]
        tables[label] = Table("prompt", cols, rows + _sensitivity_rows(cols, compared), provenance_lines(shown))
    return tables


def _sensitivity_rows(columns: list[Column], compared: dict[tuple, dict[str, Cell]]) -> list[Row]:
    """How much the score depends on the prompt: mean, spread (max - min), best and worst prompt."""
    rows = [Row("mean over prompts"), Row("spread (max − min)"), Row("best prompt"), Row("worst prompt")]
    for column in columns:
        values = {p: c.value for p, c in compared[column.key].items() if c.value is not None}
        if len(values) < 2:
            continue
        ordered = sorted(values, key=lambda p: (values[p] if column.higher else -values[p], p))
        worst, best = ordered[0], ordered[-1]
        for row, cell in zip(rows, (Cell(statistics.fmean(values.values()), ranked=False),
                                    Cell(max(values.values()) - min(values.values()), ranked=False),
                                    Cell(text=f"{_q(best)} ({_fmt(values[best])})", ranked=False),
                                    Cell(text=f"{_q(worst)} ({_fmt(values[worst])})", ranked=False))):
            row.cells[column.key] = cell
    return rows


def _primary(run: Run, spec: TaskSpec | None) -> str:
    for metric in ((spec.metric,) if spec else ()) + (run.primary_metric,):
        if metric in run.metrics:
            return metric
    return next((m for m in run.metrics if not _is_spread(m, run.metrics)), run.primary_metric)


# ---------------------------------------------------------------------------------------------- markdown

def _fmt(value: float) -> str:
    text = f"{value:.{DECIMALS}f}"
    return f"{0:.{DECIMALS}f}" if float(text) == 0 else text  # never "-0.000"


def _escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _best(column: Column, rows: list[Row]) -> float | None:
    """The best rounded value of a column, when at least two ranked values compete."""
    values = [round(c.value, DECIMALS) for row in rows
              if (c := row.cells.get(column.key)) is not None and c.ranked and c.value is not None]
    if len(values) < 2:
        return None
    return max(values) if column.higher else min(values)


def _cell_text(cell: Cell, best: float | None) -> str:
    if cell.value is None:
        return cell.text
    text = _fmt(cell.value)
    if cell.ranked and best is not None and round(cell.value, DECIMALS) == best:
        text = f"**{text}**"
    if cell.interval is not None:
        text += f" ({_fmt(cell.interval[0])}–{_fmt(cell.interval[1])})"
    elif cell.spread is not None:
        text += f" ± {_fmt(cell.spread)}"
    return f"{text} {cell.suffix}" if cell.suffix else text


def render_table(table: Table) -> list[str]:
    notes: dict[str, int] = {}

    def refs(texts: tuple[str, ...]) -> str:  # numbered in order of first appearance, per table
        return "".join(f" [{notes.setdefault(t, len(notes) + 1)}]" for t in texts)

    best = {c.key: _best(c, table.rows) for c in table.columns}
    lines = ["| " + " | ".join([table.first_header] + [_escape(c.header) for c in table.columns]) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for row in table.rows:
        cells = [_escape(row.label)]
        for column in table.columns:
            cell = row.cells.get(column.key, Cell())
            cells.append(_escape(_cell_text(cell, best[column.key])) + refs(cell.notes))
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += [""] + [f"- [{n}] {_escape(text)}" for text, n in notes.items()]
    if table.provenance:
        lines += ["", "Provenance:", ""] + table.provenance
    return lines


HEADER = """\
# alm-bench leaderboard

<!-- Generated by `alm-bench leaderboard` from results JSON files: do not edit by hand, rebuild it. -->

Rebuild with `{command}`.
{counts}

How to read the tables:

- Values are metrics as the results files store them (accuracy, mAP, recall and F1 as fractions; CIDEr-D on
  its own scale), always with 3 decimals; published numbers are stored on the same scale (0.919 = 91.9 %).
- ↑ higher is better, ↓ lower is better. **Bold**: the best value of a column among full-dataset runs and
  published numbers, when at least two compete; partial runs and the chance level are never ranked.
- "(paper)" rows are published numbers from the task specs, with their source in the notes. The "Chance level"
  row is the analytic chance level each method declares (a uniform guess over the labels or answers, 1/N for
  N-way episodes, a random ranking for mAP and recall), as the results recorded it for the task; "—" where
  there is none (caption metrics).
- `(low–high)`: the 95 % confidence interval recorded with the metric (a seeded bootstrap over items, over
  episodes for few-shot, a t interval over folds for linear probes; each results file names its method).
  `± x` in results written before intervals: standard deviation over folds or 95 % half-width over episodes.
- "(silence control)", "(shuffle control)" rows: the model re-run with every clip replaced by silence or by
  another item's clip (`alm-bench run --control`); a note says how far it fell. They are never ranked.
- —: not run. n/a: the metric was unavailable; the numbered note under the table says why.
- (partial: N items): a run on a subset of the dataset (`--limit`, or a partial copy of the data), with the
  number of items scored; never a full-dataset score.
- (k/N failed): k of the N items failed (see the run's .jsonl).
- Main tables show each task's default (first) prompt; tasks run with several prompts are compared under
  "Per prompt", with the mean and spread over prompts and the best and worst prompt. Published numbers that
  name no method are shown under the task's first method.
- When a model was run several times on a task, the newest run (by `finished_at`) is shown and a note says so.
"""


#: the command that rebuilds the tracked leaderboard (leaderboard/reproduce.sh runs it)
TRACKED_COMMAND = "alm-bench leaderboard --results-dir leaderboard/results --output leaderboard/README.md"


def render(runs: list[Run], tasks: Mapping[str, TaskSpec], methods: Mapping[str, Method] | None = None,
           command: str = TRACKED_COMMAND) -> str:
    """The whole leaderboard: a section per method, a table per domain, then the per-prompt tables.

    ``methods`` (the registry's) supply titles, section order and metric directions; ``command`` is
    the one that built it, quoted in the "Rebuild with" line."""
    decl = Declarations(_builtin_methods() if methods is None else methods)
    superseded = sum(len(r.superseded) for r in runs)
    counts = (f"Built from {len(runs) + superseded} results files: {len(runs)} runs shown, "
              f"{superseded} older runs superseded by newer runs of the same model, task, method and prompt.")
    lines = HEADER.format(counts=counts, command=command).splitlines()
    for method in _methods(runs, tasks, decl):
        lines += ["", f"## {decl.title(method)}"]
        for domain in _domain_order({_domain(tasks.get(r.task)) for r in runs if r.method == method}
                                    | {s.domain for s in tasks.values() if _references(s, method)}):
            specs = [tasks[t] for t in sorted(tasks) if tasks[t].domain == domain]
            mine = [r for r in runs if r.method == method and _domain(tasks.get(r.task)) == domain]
            table = main_table(method, mine, specs, tasks, decl)
            lines += ["", f"### {domain[0].upper() + domain[1:]}", ""] + render_table(table)
    lines += ["", "## Per prompt", "",
              "Tasks a model was run on with two or more prompts (`alm-bench run --prompt all`), as in the "
              "Pengi paper's Table 11: rows are prompts, columns the task's primary metric."]
    tables = prompt_tables(runs, tasks, decl)
    if not tables:
        lines += ["", "No model has been run with more than one prompt on a task yet."]
    for label, table in tables.items():
        lines += ["", f"### {_escape(label)}", ""] + render_table(table)
    return "\n".join(lines) + "\n"


def _methods(runs: list[Run], tasks: Mapping[str, TaskSpec], decl: Declarations) -> list[str]:
    found = {r.method for r in runs}
    for spec in tasks.values():
        found |= {m for m in {r.method or next(iter(spec.methods), "") for r in spec.references}
                  if _references(spec, m)}
    return sorted(found, key=decl.rank)


def _domain_order(domains: set[str]) -> list[str]:
    return sorted(domains, key=lambda d: (DOMAINS.index(d) if d in DOMAINS else len(DOMAINS), d))


def write_leaderboard(runs: list[Run], tasks: Mapping[str, TaskSpec], output: Path | str,
                      methods: Mapping[str, Method] | None = None, command: str = TRACKED_COMMAND) -> Path:
    """Render the markdown and write it atomically to ``output``."""
    output = Path(output)
    try:
        write_atomic(output, render(runs, tasks, methods, command))
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}; pass --output FILE") from None
    return output
