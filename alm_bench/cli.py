"""The ``alm-bench`` command line.

User errors (unknown model/task/method, missing data, bad arguments) and a model that breaks the
protocol mid-run print one line and exit with code 2; storage faults (disk full, read-only, permission
denied) print one line and exit with code 74 after listing what was saved; ``--verbose`` shows the
traceback instead.
"""

from __future__ import annotations

import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import DistributedError, Interrupted, ModelOutputError, PluginError, StorageError, UsageError
from .protocol import GenerationConfig
from .quiet import quiet_libraries

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark audio-language models on a HEAR-style suite of tasks.")
list_app = typer.Typer(no_args_is_help=True, help="List registered models or tasks.")
app.add_typer(list_app, name="list")
data_app = typer.Typer(no_args_is_help=True, help="Fetch task data into the cache, or check a local copy.")
app.add_typer(data_app, name="data")
console = Console(width=None if sys.stdout.isatty() else 200)  # no truncation in pipes and logs
errors = Console(stderr=True, soft_wrap=True)
_VERBOSE = {"on": False}
#: the arguments of this invocation (recorded in results' provenance)
_ARGV: list[str] = []


def parse_model_args(text: str, option: str = "--model-args") -> dict:
    """``k=v,k2=v2`` -> dict; numbers, true/false and none are converted."""
    args = {}
    for part in (p for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad {option} entry {part!r}; write key=value pairs separated by commas")
        args[key.strip()] = _literal(value.strip())
    return args


def _literal(value: str):
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _registry():
    from .plugins import default_registry

    registry = default_registry()
    for line in registry.errors:
        errors.print(f"[yellow]warning:[/] {line}", highlight=False)
    return registry


@contextmanager
def _progress() -> Iterator:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=False) as progress:
        def open_bar(description: str, total: int):
            task = progress.add_task(description, total=total)
            return lambda n: progress.advance(task, n)

        yield open_bar


@app.command()
def run(
    model: str = typer.Option(..., "--model", "-m", help="registered model name (see `alm-bench list models`)"),
    task: str = typer.Option(..., "--task", "-t", help="task id, `all`, a glob like 'synth-*', or a comma list"),
    method: list[str] = typer.Option([], "--method", help="evaluation method(s); default: every method of the task"),
    model_args: str = typer.Option("", "--model-args", help="k=v,... passed to the model"),
    method_args: str = typer.Option("", "--method-args",
                                    help="k=v,... options of the chosen method(s), over the task spec's"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="local copy of the data (official layout)"),
    output_dir: Path = typer.Option(Path("results"), "--output-dir", help="where results files are written"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1,
                                        help="use a sample of N test items per task, balanced over folds and labels "
                                             "(round-robin over (fold, label) groups); results are marked partial"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    device: str = typer.Option("cpu", "--device"),
    seed: int = typer.Option(0, "--seed", help="seed for probes and few-shot episodes"),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="a prompt, or `all` for every prompt of the spec"),
    text_encoder: Optional[str] = typer.Option(None, "--text-encoder",
                                               help="model | sentence-transformers[:ID] | hf:ID"),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", min=1, help="default: the model's own"),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1, help="default: the model's own"),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0, help="default: the model's own"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="default: $ALM_BENCH_CACHE or ~/.cache/alm-bench"),
    no_cache: bool = typer.Option(False, "--no-cache",
                                  help="do not read or write cached model outputs or model-built state (an index)"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                          help="CPU threads for the model; default: the CPUs this process may use "
                                               "(affinity, cgroup quota) less the audio decode workers"),
    control: Optional[str] = typer.Option(None, "--control",
                                          help="silence | shuffle: replace every clip by silence, or permute clips"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show tracebacks and the libraries' own messages"),
    show_skipped: bool = typer.Option(False, "--show-skipped", help="list every skipped task and method with why"),
) -> None:
    """Evaluate a model on tasks; writes results JSON + item-level JSONL and prints a table."""
    from .distributed import World
    from .plugins import default_registry
    from .runner import RunConfig, default_cache_dir
    from .runner import run as run_benchmark

    _VERBOSE["on"] = verbose
    if not verbose:
        quiet_libraries()
    methods = tuple(m.strip() for entry in method for m in entry.split(",") if m.strip())
    config = RunConfig(
        model=model, tasks=task, methods=methods, prompt=prompt, model_args=parse_model_args(model_args),
        method_args=parse_model_args(method_args, "--method-args"),
        data_dir=data_dir, output_dir=output_dir, cache_dir=cache_dir or default_cache_dir(), use_cache=not no_cache,
        limit=limit, batch_size=batch_size, device=device, seed=seed, text_encoder=text_encoder,
        generation=GenerationConfig(num_beams=num_beams, max_new_tokens=max_new_tokens, temperature=temperature),
        threads=threads,
        control=control,
        command=shlex.join(["alm-bench", *_ARGV]),
    )
    if World.from_env().rank > 0:  # a distributed run's other ranks serve model calls, silently
        run_benchmark(config, default_registry())
        return
    registry = _registry()
    try:
        with _progress() as open_bar:
            summary = run_benchmark(config, registry, open_bar, _note)
    except StorageError as exc:
        if exc.summary is not None:  # the run had started: list what is safely on disk
            _print_summary(exc.summary, output_dir, registry.tasks, saved=True)
        raise
    _print_summary(summary, output_dir, registry.tasks, show_skipped=show_skipped)


def _note(line: str) -> None:
    errors.print(f"note: {line}", highlight=False, markup=False)


def shown_metrics(result, spec=None) -> list[str]:
    """The metrics a run's screen shows for a result: the task's headline and every metric the task's
    published numbers quote for the method (e.g. both retrieval directions), in the result's order."""
    wanted = {result.primary_metric}
    if spec is not None:
        wanted |= {ref.metric for ref in spec.references if ref.method in ("", result.method)}
    if result.method.startswith("retrieval"):  # the README and the papers quote R@10 beside the headline
        wanted |= {"t2a_R@10"}
    wanted |= {name.replace("t2a", "a2t") for name in wanted} | {name.replace("a2t", "t2a") for name in wanted}
    shown = [name for name in result.metrics if name in wanted]
    return shown or list(result.metrics)[:1]  # a probe on a captioning-metric task: the method's first


def _print_summary(summary, output_dir: Path, tasks=None, saved: bool = False, show_skipped: bool = False) -> None:
    if saved:
        console.print(f"saved before the error: {len(summary.results)} results in {output_dir}/", highlight=False)
        if not summary.results:
            return
    rows, notes = _summary_rows(summary.results, tasks or {})
    columns = ["task", "method", "prompt", "metric", "value", "95% CI", "items", "failed"]
    widths = {c: max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(columns)}
    # names and numbers are never cut: on a narrow terminal the prompt, then the interval, make way
    for optional in ("prompt", "95% CI"):
        if sum(widths[c] for c in columns) + 2 * (len(columns) - 1) > console.width:  # a gap: pad + divider
            columns.remove(optional)
            notes.append(f"({optional} not shown: the terminal is too narrow; the results files hold it)")
    table = Table(title="alm-bench results (saved before the error)" if saved else "alm-bench results",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    keep = [i for i, c in enumerate(("task", "method", "prompt", "metric", "value", "95% CI", "items", "failed"))
            if c in columns]
    for i in keep:
        column = ("task", "method", "prompt", "metric", "value", "95% CI", "items", "failed")[i]
        table.add_column(column, justify="right" if i >= 4 else "left", no_wrap=True, min_width=widths[column])
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    console.print(table)
    if any(r.partial for r in summary.results):
        notes.insert(0, "~ partial: a --limit sample or a copy smaller than the official set")
    for note in notes:
        console.print(note, highlight=False, markup=False)
    _print_skipped(summary.skipped, show_skipped)
    if not saved:
        console.print(f"results in {output_dir}/ ({summary.seconds:.1f} s)")


def _summary_rows(results, tasks) -> tuple[list[tuple[str, ...]], list[str]]:
    """One row per metric shown (task, method, prompt and counts on the result's first), and footnotes."""
    rows, notes = [], []
    for r in results:
        items = f"{r.n_items}{' ~' if r.partial else ''}"
        if r.details.get("split"):
            items += " *"
            notes.append(f"* {r.task} {r.method}: {r.details['split']}")
        for i, metric in enumerate(shown_metrics(r, tasks.get(r.task))):
            value, interval = r.metrics[metric], r.intervals.get(metric)
            ci = f"{interval['low']:.2f}–{interval['high']:.2f}" if interval else ""
            if r.control and metric in r.control_effect.get("fell_by", {}):
                ci += f" ({r.control}: fell by {r.control_effect['fell_by'][metric]:.3f})"
            first = i == 0
            rows.append((r.task if first else "", r.method if first else "", r.prompt if first else "", metric,
                         "n/a" if value is None else f"{value:.4f}", ci, items if first else "",
                         str(r.n_failed) if first else ""))
    return rows, notes


def _print_skipped(skipped, show: bool) -> None:
    if show:
        for s in skipped:
            console.print(f"[yellow]skipped[/] {s.task} {s.method}: {s.reason}", highlight=False)
    elif skipped:
        tasks = len({s.task for s in skipped})
        console.print(f"[yellow]skipped[/] {len(skipped)} task methods on {tasks} tasks: --show-skipped says why",
                      highlight=False)


@list_app.command("models")
def list_models() -> None:
    """Registered models with their capabilities and source plugin."""
    table = Table(title="models")
    for column in ("name", "capabilities", "plugin", "description"):
        table.add_column(column)
    for name, info in sorted(_registry().models.items()):
        table.add_row(name, ", ".join(info.capabilities.names()), info.plugin, info.description)
    console.print(table)


@list_app.command("tasks")
def list_tasks(data_dir: Optional[Path] = typer.Option(None, "--data-dir")) -> None:
    """Registered tasks with domain, metric, methods and data status."""
    from .runner import default_cache_dir

    registry = _registry()
    table = Table(title="tasks")
    for column in ("id", "domain", "type", "metric", "methods", "data"):
        table.add_column(column)
    for task_id, spec in sorted(registry.tasks.items()):
        loader = registry.loaders.get(spec.dataset.loader)
        status = getattr(loader, "status", None)
        data = status(spec, data_dir, default_cache_dir()) if status else "unknown loader" if loader is None else "?"
        table.add_row(task_id, spec.domain, spec.type, spec.metric, ", ".join(spec.methods), data)
    console.print(table)


def _data_tasks(task: str):
    from .runner import select_tasks

    registry = _registry()
    specs, _ = select_tasks(registry, task)
    return registry, specs


@data_app.command("download")
def data_download(
    task: str = typer.Argument(..., help="task id, `all`, a glob or a comma list"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="default: $ALM_BENCH_CACHE or ~/.cache/alm-bench"),
) -> None:
    """Download a task's dataset from its official source into the cache (checked, then unpacked)."""
    from .acquire import download
    from .runner import default_cache_dir

    registry, specs = _data_tasks(task)
    done: set[str] = set()
    with _byte_progress() as open_bar:
        for spec in specs:
            if spec.dataset.loader in done:
                continue
            if spec.dataset.loader == "synth":
                console.print(f"{spec.id}: synthetic, generated on first use (nothing to download)", highlight=False)
                continue
            root = download(spec, cache_dir or default_cache_dir(), open_bar)
            done.add(spec.dataset.loader)
            console.print(f"{spec.id}: data in {root}", highlight=False)


@data_app.command("check")
def data_check(
    task: str = typer.Argument(..., help="task id, `all`, a glob or a comma list"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="local copy in the official layout"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="default: $ALM_BENCH_CACHE or ~/.cache/alm-bench"),
) -> None:
    """Say what data is present, what is missing and how to get it; exit 1 if any task lacks data."""
    from .runner import default_cache_dir

    registry, specs = _data_tasks(task)
    incomplete = 0
    for spec in specs:
        loader = registry.loaders.get(spec.dataset.loader)
        check = getattr(loader, "check", None)
        if check is None:  # e.g. the synthetic suite: nothing to fetch, only a status
            status = getattr(loader, "status", None)
            text = status(spec, data_dir, cache_dir or default_cache_dir()) if status else "no data check"
            console.print(f"{spec.id}: {text}", highlight=False)
            continue
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=errors,
                      transient=True) as progress:
            bar = progress.add_task(f"{spec.id}: decoding", total=None)
            report = check(spec, data_dir, cache_dir or default_cache_dir(), decode=True,
                           progress=lambda done, total: progress.update(bar, completed=done, total=total))
        colour = "green" if report.ok else "red"
        console.print(f"[{colour}]{spec.id}[/]: {report.status} — {report.root}", highlight=False)
        if report.problem:
            console.print(f"  {report.problem}", highlight=False, markup=False)
        for path, problem in report.bad.items():
            console.print(f"  {_relative(path, report.root)} {problem}", highlight=False, markup=False)
        incomplete += not report.ok
    if incomplete:
        raise typer.Exit(1)


def _relative(path: str, root: Path) -> str:
    return str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path


@contextmanager
def _byte_progress() -> Iterator:
    from rich.progress import DownloadColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=errors) as progress:
        def open_bar(description: str, total: int | None):
            task = progress.add_task(description, total=total)
            return lambda n: progress.advance(task, n)

        yield open_bar


@app.command("validate-model")
def validate_model(
    name: str = typer.Argument(..., help="registered model name"),
    model_args: str = typer.Option("", "--model-args", help="k=v,... passed to the model"),
) -> None:
    """Run the conformance checks on a registered model; exit 1 if any fails."""
    from .checks import check_model

    registry = _registry()
    info = registry.model_info(name)
    results = check_model(registry.load_model(name, parse_model_args(model_args)), plugin=info.plugin)
    for result in results:
        mark = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
        detail = "" if result.passed else f": {result.problem}\n      fix: {result.fix}"
        console.print(f"{mark} {result.name}{detail}", highlight=False)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


def parse_grid(entries: list[str]) -> dict[str, list]:
    """``["w=0.1,0.5", "k=2,4"]`` -> ``{"w": [0.1, 0.5], "k": [2, 4]}`` (values typed as in --model-args)."""
    grid: dict[str, list] = {}
    for entry in entries:
        key, sep, values = entry.partition("=")
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not parts:
            raise UsageError(f"bad --grid entry {entry!r}; write KEY=V1,V2,... (a model argument and its values)")
        if key.strip() in grid:
            raise UsageError(f"--grid names {key.strip()!r} twice; give all its values in one entry")
        grid[key.strip()] = [_literal(v) for v in parts]
    return grid


@app.command("sweep")
def sweep_command(
    model: str = typer.Option(..., "--model", "-m", help="registered model name"),
    task: str = typer.Option(..., "--task", "-t", help="task id, a glob or a comma list"),
    grid: list[str] = typer.Option([], "--grid", help="KEY=V1,V2,...: a model argument and the values to sweep"),
    more_grid: Optional[list[str]] = typer.Argument(None, metavar="[KEY=V1,V2,...]...",
                                                   help="more grid entries (after --grid, without repeating it)"),
    model_args: str = typer.Option("", "--model-args", help="k=v,... fixed model arguments"),
    method: list[str] = typer.Option([], "--method", help="evaluation method(s); default: every method of the task"),
    output: Optional[Path] = typer.Option(None, "--output", help="also write the markdown table here"),
    output_dir: Path = typer.Option(Path("results/sweep"), "--output-dir",
                                    help="each combination's results go to a folder of its own here"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="a sample of N test items per task"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="local copy of the data (official layout)"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="default: $ALM_BENCH_CACHE or ~/.cache/alm-bench"),
    text_encoder: Optional[str] = typer.Option(None, "--text-encoder",
                                               help="model | sentence-transformers[:ID] | hf:ID"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    device: str = typer.Option("cpu", "--device"),
    seed: int = typer.Option(0, "--seed"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show tracebacks and the libraries' own messages"),
) -> None:
    """Run a model over every combination of a grid of its arguments; print (and --output) a markdown table."""
    from .results import write_atomic
    from .runner import RunConfig, default_cache_dir
    from .sweep import markdown, sweep

    _VERBOSE["on"] = verbose
    if not verbose:
        quiet_libraries()
    methods = tuple(m.strip() for entry in method for m in entry.split(",") if m.strip())
    config = RunConfig(model=model, tasks=task, methods=methods, model_args=parse_model_args(model_args),
                       data_dir=data_dir, output_dir=output_dir, cache_dir=cache_dir or default_cache_dir(),
                       limit=limit, batch_size=batch_size, device=device, seed=seed, text_encoder=text_encoder,
                       command=shlex.join(["alm-bench", *_ARGV]))
    axes = parse_grid([*grid, *(more_grid or [])])
    registry = _registry()
    with _progress() as open_bar:
        rows = sweep(config, axes, registry, open_bar, _note)
    text = markdown(rows, shlex.join(["alm-bench", *_ARGV]))
    console.print(text, highlight=False, markup=False, soft_wrap=True)
    if output is not None:
        write_atomic(output, text)


@app.command("compare")
def compare_runs(
    run_a: Path = typer.Argument(..., help="output directory (or results file) of run A"),
    run_b: Path = typer.Argument(..., help="output directory (or results file) of run B"),
    output: Optional[Path] = typer.Option(None, "--output", help="also write the markdown table here"),
    seed: int = typer.Option(0, "--seed", help="seed of the bootstrap resamples"),
) -> None:
    """Paired comparison of two runs on the same items: B - A per metric, with 95% intervals and p-values."""
    from .compare import compare, markdown
    from .results import write_atomic

    text = markdown(compare(run_a, run_b, _registry().methods, seed), str(run_a), str(run_b))
    console.print(text, highlight=False, markup=False, soft_wrap=True)
    if output is not None:
        write_atomic(output, text)


@app.command("leaderboard")
def leaderboard(
    results_dir: Path = typer.Option(Path("leaderboard/results"), "--results-dir", help="results JSON files (recursive)"),
    output: Optional[Path] = typer.Option(None, "--output",
                                          help="the markdown file to write (e.g. leaderboard/README.md); "
                                               "default: standard output"),
) -> None:
    """Generate the markdown leaderboard from results files (same results, byte-identical output)."""
    import shlex

    from .leaderboard import load_results, render, write_leaderboard

    runs = load_results(results_dir)  # bad input fails before the plugins load
    registry = _registry()
    command = shlex.join(["alm-bench", "leaderboard", "--results-dir", str(results_dir),
                          *(["--output", str(output)] if output is not None else [])])
    if output is None:
        sys.stdout.write(render(runs, registry.tasks, registry.methods, command))
        return
    written = write_leaderboard(runs, registry.tasks, output, registry.methods, command)
    errors.print(f"wrote {written}", highlight=False)


def main(argv: list[str] | None = None) -> None:
    """The console script; ``argv`` (default: the command line) lets tests run it in-process."""
    _ARGV[:] = sys.argv[1:] if argv is None else argv
    try:
        app(args=argv)
    except Interrupted as exc:
        errors.print(str(exc), highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # before the run started: nothing to save
        errors.print("interrupted before any result was saved", highlight=False, markup=False)
        sys.exit(Interrupted.exit_code)
    except (UsageError, PluginError, DistributedError, StorageError, ModelOutputError) as exc:
        if _VERBOSE["on"]:
            raise
        errors.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(getattr(exc, "exit_code", 2))


if __name__ == "__main__":
    main()
