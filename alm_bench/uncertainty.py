"""Confidence intervals and paired tests, computed from item records.

A method scores a run from its item records through a *statistic*: a function of a weight matrix
``W`` of shape ``[b, units]`` (how many times each resampling unit is drawn) returning, per metric,
``b`` values.  All ones reproduces the metric; multinomial counts are bootstrap resamples.  The
same statistic gives each metric its interval, and, applied to two runs with the same weights, the
paired bootstrap of ``compare``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

#: resamples for every bootstrap interval: cheap, since statistics are vectorised over resamples
RESAMPLES = 1000
LEVEL = 0.95
_CHUNK = 100  # resamples per weight matrix, to bound memory on large test sets

Statistic = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    #: how it was computed, e.g. "percentile bootstrap over items"
    method: str
    resamples: int = 0

    def as_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "method": self.method, "resamples": self.resamples}


def resample_weights(units: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples as draw counts, ``[chunk, units]`` at a time; seeded, so reproducible."""
    rng = np.random.default_rng([seed, units])
    done = 0
    while done < resamples:
        size = min(_CHUNK, resamples - done)
        yield rng.multinomial(units, np.full(units, 1.0 / units), size=size).astype(np.float64)
        done += size


def bootstrap(statistic: Statistic, units: int, seed: int, resamples: int = RESAMPLES,
              over: str = "items") -> dict[str, Interval]:
    """Percentile bootstrap interval of every metric the statistic returns.

    Every resample of a score of exactly 0 or 1 (no item right, or all) is that score again, so the
    percentile interval collapses; there the Wilson score interval of 0 or n successes in n units is
    given instead, which is what a binomial count at its bound supports."""
    draws: dict[str, list[np.ndarray]] = {}
    for weights in resample_weights(units, resamples, seed):
        for name, values in statistic(weights).items():
            draws.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    observed = {name: float(values[0]) for name, values in statistic(ones(units)).items()}
    intervals = {}
    for name, parts in draws.items():
        values = np.concatenate(parts)
        if observed.get(name) in (0.0, 1.0) and np.all(values == observed[name]):
            intervals[name] = _wilson_at_bound(observed[name], units, over)
        else:
            intervals[name] = _percentile(values, f"percentile bootstrap over {over}", resamples)
    return intervals


def _wilson_at_bound(value: float, units: int, over: str) -> Interval:
    z2 = _Z95 ** 2
    width = z2 / (units + z2)
    low, high = (0.0, width) if value == 0.0 else (1.0 - width, 1.0)
    return Interval(low, high, f"Wilson score interval over {over} (every resample scored {value:g})")


_Z95 = 1.959963984540054


def _percentile(values: np.ndarray, method: str, resamples: int) -> Interval:
    values = values[np.isfinite(values)]
    if not len(values):
        return Interval(math.nan, math.nan, method, resamples)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), method, resamples)


def t_interval(values: Sequence[float], over: str = "folds") -> Interval:
    """Student-t interval of the mean of a few values (e.g. one metric per fold)."""
    from scipy import stats

    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    if len(array) < 2:
        return Interval(mean, mean, f"t interval over {over} (one value: no spread)")
    half = float(stats.t.ppf(0.5 + LEVEL / 2, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array)))
    return Interval(mean - half, mean + half, f"t interval over {len(array)} {over}")


def ones(units: int) -> np.ndarray:
    """The weights that reproduce the metric itself."""
    return np.ones((1, units))


def ratio(weights: np.ndarray, numerator: np.ndarray, denominator: np.ndarray | None = None) -> np.ndarray:
    """A metric that is a ratio of per-unit sums (accuracy, means, micro F1) under each resample."""
    num = weights @ np.asarray(numerator, dtype=np.float64)
    den = weights.sum(axis=1) if denominator is None else weights @ np.asarray(denominator, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def average_precision(targets: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Macro average precision (as scikit-learn computes it) under each row of ``weights``.

    targets and scores are ``[n, labels]``; an item drawn twice counts twice.  Columns with no
    positive under a resample are left out of that resample's mean, as columns without a positive
    are left out of the metric.  Failed items (NaN scores) rank last."""
    targets = np.asarray(targets, dtype=np.float64)
    scores = _rank_failed_last(np.asarray(scores, dtype=np.float64))
    per_label = []
    for column in range(targets.shape[1]):
        order = np.argsort(-scores[:, column], kind="stable")
        y, s, w = targets[order, column], scores[order, column], weights[:, order]
        last_of_tie = np.append(np.diff(s) != 0, True)  # thresholds: the end of each group of equal scores
        tp = np.cumsum(w * y, axis=1)[:, last_of_tie]
        seen = np.cumsum(w, axis=1)[:, last_of_tie]
        positives = tp[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(seen > 0, tp / np.where(seen > 0, seen, 1), 0.0)
            recall = tp / positives
        gained = np.diff(np.concatenate([np.zeros((len(w), 1)), recall], axis=1), axis=1)
        ap = (gained * precision).sum(axis=1)
        per_label.append(np.where(positives[:, 0] > 0, ap, np.nan))
    with np.errstate(invalid="ignore"):
        stacked = np.stack(per_label, axis=1)
        counted = np.isfinite(stacked).sum(axis=1)
        return np.where(counted > 0, np.nansum(stacked, axis=1) / np.maximum(counted, 1), np.nan)


def _rank_failed_last(scores: np.ndarray) -> np.ndarray:
    failed = ~np.isfinite(scores)
    if not failed.any():
        return scores
    floor = np.where(failed, np.inf, scores).min(axis=0)
    floor = np.where(np.isfinite(floor), floor, 0.0) - 1.0
    return np.where(failed, floor, scores)


def random_ranking_ap(relevant: int, documents: int, depth: int | None = None) -> float:
    """Expected average precision (at ``depth``) of a uniformly random ranking of ``documents``
    holding ``relevant`` relevant ones: the analytic chance level of mAP and mAP@k."""
    if relevant <= 0 or documents <= 0:
        return math.nan
    n, r = documents, relevant
    cut = min(depth or n, n)
    others = (r - 1) / (n - 1) if n > 1 else 0.0
    # E[precision@j * relevant_j] = r/n * (1 + (j-1)(r-1)/(n-1)) / j
    total = sum((r / n) * (1 + (j - 1) * others) / j for j in range(1, cut + 1))
    return total / min(r, cut)


def random_recall_at_k(relevant: int, documents: int, k: int) -> float:
    """Chance that a random ranking puts at least one of ``relevant`` documents in its top k."""
    if k >= documents:
        return 1.0
    return 1.0 - math.comb(documents - relevant, k) / math.comb(documents, k)


def paired_bootstrap(statistic_a: Statistic, statistic_b: Statistic, units: int, seed: int,
                     resamples: int = RESAMPLES) -> dict[str, tuple[Interval, float]]:
    """Per metric: the interval of the difference B - A over the same resamples, and a two-sided
    bootstrap p-value (twice the smaller share of resampled differences on either side of zero)."""
    diffs: dict[str, list[np.ndarray]] = {}
    for weights in resample_weights(units, resamples, seed):
        a, b = statistic_a(weights), statistic_b(weights)
        for name in a.keys() & b.keys():
            diffs.setdefault(name, []).append(np.asarray(b[name], np.float64) - np.asarray(a[name], np.float64))
    out = {}
    for name, parts in sorted(diffs.items()):
        values = np.concatenate(parts)
        values = values[np.isfinite(values)]
        interval = _percentile(values, "paired percentile bootstrap over items", resamples)
        if not len(values) or np.all(values == 0):
            p = 1.0
        else:
            p = float(min(1.0, 2 * min(np.mean(values <= 0), np.mean(values >= 0))))
        out[name] = (interval, p)
    return out


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> float:
    """Exact McNemar test (two-sided binomial test on the discordant items); 1.0 without any."""
    from scipy.stats import binomtest

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
