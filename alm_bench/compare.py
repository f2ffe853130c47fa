"""Paired comparison of two runs on the same items: ``alm-bench compare RUN_A RUN_B``.

Each side is an output directory (or one results file).  For every (task, method, prompt) both hold,
the item records must name the same items with the same prompts; the method's statistic recomputes
each metric under the same bootstrap resamples for both runs (paired bootstrap of B - A), and
accuracies also get McNemar's exact test on the items one run got right and the other wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .errors import UsageError
from .evaluators.base import Method
from .results import Result, load_results, read_records, read_result
from .uncertainty import RESAMPLES, mcnemar, paired_bootstrap

ALPHA = 0.05


@dataclass(frozen=True)
class Difference:
    task: str
    method: str
    prompt: str
    metric: str
    a: float
    b: float
    low: float
    high: float
    p_bootstrap: float
    p_mcnemar: float | None
    n_units: int

    @property
    def significant(self) -> bool:
        """The 95% interval of the difference excludes zero (and McNemar agrees where it applies)."""
        excludes_zero = self.low > 0 or self.high < 0
        return excludes_zero and (self.p_mcnemar is None or self.p_mcnemar < ALPHA)


def _runs(location: Path) -> tuple[Path, list[Result]]:
    location = Path(location)
    if location.is_file():
        return location.parent, [read_result(location, location.parent)]
    return location, load_results(location)


def _by_key(results: list[Result]) -> dict[tuple, Result]:
    return {(r.task, r.method, r.prompt, r.control): r for r in results}


def compare(run_a: Path, run_b: Path, methods: Mapping[str, Method], seed: int = 0,
            resamples: int = RESAMPLES) -> list[Difference]:
    """Every metric of every (task, method, prompt) both runs hold, B - A, paired over items."""
    root_a, results_a = _runs(run_a)
    root_b, results_b = _runs(run_b)
    a, b = _by_key(results_a), _by_key(results_b)
    shared = sorted(a.keys() & b.keys())
    # the same task and method run with other prompts on each side: say so rather than "nothing shared"
    prompts_a, prompts_b = ({(k[0], k[1], k[3]): k[2] for k in side} for side in (a, b))
    differ = sorted(k for k in prompts_a.keys() & prompts_b.keys() if prompts_a[k] != prompts_b[k])
    if differ and not shared:
        task, method, _ = differ[0]
        raise UsageError(f"task {task} method {method}: the two runs used different prompts "
                         f"({prompts_a[differ[0]]!r} and {prompts_b[differ[0]]!r}); "
                         "compare runs with the same --prompt")
    if not shared:
        raise UsageError(f"{run_a} and {run_b} share no (task, method, prompt) to compare; "
                         "run both models on the same tasks")
    differences = []
    for key in shared:
        method = methods.get(key[1])
        if method is None:
            raise UsageError(f"method {key[1]!r} of the results is not installed; install the plugin that provides it")
        differences += _compare_one(a[key], b[key], root_a, root_b, method, seed, resamples)
    return differences


def _aligned(method: Method, result: Result, root: Path) -> list[dict]:
    records = read_records(root / result.path)
    return sorted(records, key=lambda r: (method.unit(r), str(r.get("id"))))


def _compare_one(a: Result, b: Result, root_a: Path, root_b: Path, method: Method, seed: int,
                 resamples: int) -> list[Difference]:
    records_a, records_b = _aligned(method, a, root_a), _aligned(method, b, root_b)
    where = f"task {a.task} method {a.method}" + (f" prompt {a.prompt!r}" if a.prompt else "")
    items_a = [(method.unit(r), r.get("id")) for r in records_a]
    if items_a != [(method.unit(r), r.get("id")) for r in records_b]:
        raise UsageError(f"{where}: the two runs scored different items (data, --limit or --seed differ); "
                         "compare runs on the same items")
    if [r.get("prompt") for r in records_a] != [r.get("prompt") for r in records_b]:
        raise UsageError(f"{where}: the two runs used different prompts; compare runs with the same --prompt")
    stat_a, stat_b = method.statistic(records_a, a.details), method.statistic(records_b, b.details)
    if stat_a is None or stat_b is None:
        return []
    units = len({method.unit(r) for r in records_a})
    paired = paired_bootstrap(stat_a, stat_b, units, seed, resamples)
    out = []
    for metric in [m for m in a.metrics if m in paired and a.metrics[m] is not None and b.metrics.get(m) is not None]:
        interval, p = paired[metric]
        exact = None
        if metric.endswith("accuracy") and all("correct" in r for r in records_a):
            exact = mcnemar([bool(r["correct"]) for r in records_a], [bool(r["correct"]) for r in records_b])
        out.append(Difference(a.task, a.method, a.prompt, metric, a.metrics[metric], b.metrics[metric],
                              interval.low, interval.high, p, exact, units))
    return out


def markdown(differences: list[Difference], name_a: str, name_b: str) -> str:
    """A table of B - A per metric, with its paired 95% interval, p-values and a verdict."""
    lines = [f"| task | method | prompt | metric | A: {name_a} | B: {name_b} | B - A [95% CI] | p (bootstrap) "
             "| p (McNemar) | significant |", "|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    for d in differences:
        mcnemar_text = "—" if d.p_mcnemar is None else f"{d.p_mcnemar:.3g}"
        lines.append(f"| {d.task} | {d.method} | {d.prompt} | {d.metric} | {d.a:.3f} | {d.b:.3f} | "
                     f"{d.b - d.a:+.3f} [{d.low:+.3f}, {d.high:+.3f}] | {d.p_bootstrap:.3g} | {mcnemar_text} | "
                     f"{'**yes**' if d.significant else 'no'} |")
    significant = sum(d.significant for d in differences)
    tests = "paired bootstrap over the same items"
    if any(d.p_mcnemar is not None for d in differences):
        tests += ", and McNemar for accuracies"
    lines += ["", f"{significant} of {len(differences)} differences significant at the 5% level ({tests})."]
    return "\n".join(lines) + "\n"
