"""The ``alm-bench`` command line.

User errors (unknown model/task/method, missing data, bad arguments) and a model that breaks the
protocol mid-run print one line and exit with code 2; storage faults (disk full, read-only, permission
denied) print one line and exit with code 74 after listing what was saved; ``--verbose`` shows the
traceback instead.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import DistributedError, ModelOutputError, PluginError, StorageError, UsageError
from .protocol import GenerationConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark audio-language models on a HEAR-style suite of tasks.")
list_app = typer.Typer(no_args_is_help=True, help="List registered models or tasks.")
app.add_typer(list_app, name="list")
data_app = typer.Typer(no_args_is_help=True, help="Fetch task data into the cache, or check a local copy.")
app.add_typer(data_app, name="data")
console = Console(width=None if sys.stdout.isatty() else 200)  # no truncation in pipes and logs
errors = Console(stderr=True, soft_wrap=True)
_VERBOSE = {"on": False}


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
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="use only the first N items per split"),
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
    no_cache: bool = typer.Option(False, "--no-cache", help="do not read or write cached model outputs"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                          help="CPU threads for the model; default: the CPUs this process may use "
                                               "(affinity, cgroup quota) less the audio decode workers"),
    control: Optional[str] = typer.Option(None, "--control",
                                          help="silence | shuffle: replace every clip by silence, or permute clips"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show tracebacks"),
) -> None:
    """Evaluate a model on tasks; writes results JSON + item-level JSONL and prints a table."""
    from .distributed import World
    from .plugins import default_registry
    from .runner import RunConfig, default_cache_dir
    from .runner import run as run_benchmark

    _VERBOSE["on"] = verbose
    methods = tuple(m.strip() for entry in method for m in entry.split(",") if m.strip())
    config = RunConfig(
        model=model, tasks=task, methods=methods, prompt=prompt, model_args=parse_model_args(model_args),
        method_args=parse_model_args(method_args, "--method-args"),
        data_dir=data_dir, output_dir=output_dir, cache_dir=cache_dir or default_cache_dir(), use_cache=not no_cache,
        limit=limit, batch_size=batch_size, device=device, seed=seed, text_encoder=text_encoder,
        generation=GenerationConfig(num_beams=num_beams, max_new_tokens=max_new_tokens, temperature=temperature),
        threads=threads,
        control=control,
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
            _print_summary(exc.summary, output_dir, saved=True)
        raise
    _print_summary(summary, output_dir)


def _note(line: str) -> None:
    errors.print(f"note: {line}", highlight=False, markup=False)


def _print_summary(summary, output_dir: Path, saved: bool = False) -> None:
    if saved:
        console.print(f"saved before the error: {len(summary.results)} results in {output_dir}/", highlight=False)
        if not summary.results:
            return
    table = Table(title="alm-bench results (saved before the error)" if saved else "alm-bench results")
    for column in ("task", "method", "prompt", "metric", "value", "95% CI", "items", "failed"):
        table.add_column(column, justify="right" if column in ("value", "95% CI", "items", "failed") else "left")
    for r in summary.results:
        # the spec's headline metric, or the method's first (e.g. a probe on a captioning-metric task)
        metric = r.primary_metric if r.primary_metric in r.metrics else next(iter(r.metrics))
        value, interval = r.metrics[metric], r.intervals.get(metric)
        items = f"{r.n_items} (partial)" if r.partial else str(r.n_items)
        ci = f"{interval['low']:.4f}–{interval['high']:.4f}" if interval else ""
        if r.control and metric in r.control_effect.get("fell_by", {}):
            ci += f" ({r.control}: fell by {r.control_effect['fell_by'][metric]:.4f})"
        table.add_row(r.task, r.method, r.prompt, metric, "n/a" if value is None else f"{value:.4f}", ci, items,
                      str(r.n_failed))
    console.print(table)
    for s in summary.skipped:
        console.print(f"[yellow]skipped[/] {s.task} {s.method}: {s.reason}", highlight=False)
    if not saved:
        console.print(f"results in {output_dir}/ ({summary.seconds:.1f} s)")


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
        report = check(spec, data_dir, cache_dir or default_cache_dir())
        colour = "green" if report.ok else "red"
        console.print(f"[{colour}]{spec.id}[/]: {report.status} — {report.root}", highlight=False)
        if report.problem:
            console.print(f"  {report.problem}", highlight=False, markup=False)
        incomplete += not report.ok
    if incomplete:
        raise typer.Exit(1)


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
    output: Path = typer.Option(Path("leaderboard/README.md"), "--output", help="the markdown file to write"),
) -> None:
    """Generate the markdown leaderboard from results files (same results, byte-identical output)."""
    from .leaderboard import load_results, write_leaderboard

    runs = load_results(results_dir)  # bad input fails before the plugins load
    registry = _registry()
    console.print(f"wrote {write_leaderboard(runs, registry.tasks, output, registry.methods)}", highlight=False)


def main() -> None:
    try:
        app()
    except (UsageError, PluginError, DistributedError, StorageError, ModelOutputError) as exc:
        if _VERBOSE["on"]:
            raise
        errors.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(getattr(exc, "exit_code", 2))


if __name__ == "__main__":
    main()
