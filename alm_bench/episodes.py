"""Few-shot N-way K-shot episodes (APT Table VI style: 5-way / 12-way 5-shot on ESC-50).

Episode i draws from its own RNG, seeded by ``SeedSequence([seed, i])``, so asking for more
episodes never changes the earlier ones: 10 episodes are a prefix of 100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Episode:
    classes: tuple[str, ...]  # the N classes of this episode, in presentation order
    support: tuple[tuple[int, str], ...]  # (item index, class), K per class, shuffled as shown
    queries: tuple[tuple[int, str], ...]  # (item index, true class)


def _items_by_class(labels: Sequence[str]) -> dict[str, np.ndarray]:
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    # Sorted names: the sample must not depend on the order in which classes first appear.
    return {c: np.array(by_class[c]) for c in sorted(by_class)}


def _episode(rng: np.random.Generator, by_class: dict[str, np.ndarray], eligible: list[str],
             ways: int, shots: int, queries_per_class: int) -> Episode:
    classes = tuple(eligible[j] for j in rng.choice(len(eligible), ways, replace=False))
    support: list[tuple[int, str]] = []
    queries: list[tuple[int, str]] = []
    for c in classes:
        picked = rng.choice(by_class[c], shots + queries_per_class, replace=False)
        support += [(int(i), c) for i in picked[:shots]]
        queries += [(int(i), c) for i in picked[shots:]]
    # Shuffled so that a model cannot read the class from an example's position.
    order = rng.permutation(len(support))
    return Episode(classes, tuple(support[j] for j in order), tuple(queries))


def sample_episodes(labels: Sequence[str], *, ways: int, shots: int, queries_per_class: int,
                    episodes: int, seed: int) -> list[Episode]:
    """``episodes`` episodes of ``ways`` classes with ``shots`` support and ``queries_per_class`` queries each."""
    if min(ways, shots, queries_per_class) < 1:
        raise ValueError(f"ways, shots and queries_per_class must be >= 1, got {ways}, {shots}, {queries_per_class}")
    need = shots + queries_per_class
    by_class = _items_by_class(labels)
    eligible = [c for c, items in by_class.items() if len(items) >= need]
    if len(eligible) < ways:
        raise ValueError(
            f"{ways}-way {shots}-shot episodes with {queries_per_class} queries per class need {ways} "
            f"classes with >= {need} items each; only {len(eligible)} of {len(by_class)} classes have that many"
        )
    return [
        _episode(np.random.default_rng(np.random.SeedSequence([seed, i])), by_class, eligible,
                 ways, shots, queries_per_class)
        for i in range(episodes)
    ]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def prototype_predict(support_x: np.ndarray, support_classes: Sequence[str],
                      query_x: np.ndarray) -> list[str | None]:
    """Nearest class prototype (mean of L2-normalised support rows) by cosine similarity.

    Failed (NaN) query rows are predicted ``None``; failed support rows are ignored, and a
    class left with no support cannot be predicted.
    """
    support_x = np.asarray(support_x, dtype=float)
    ok = np.isfinite(support_x).all(axis=1)
    support = _unit_rows(support_x[ok])
    support_classes = np.asarray(support_classes)[ok]
    names = list(dict.fromkeys(support_classes.tolist()))
    prototypes = _unit_rows(np.stack([support[support_classes == c].mean(axis=0) for c in names]))
    sims = _unit_rows(np.asarray(query_x, dtype=float)) @ prototypes.T
    return [None if np.isnan(row).any() else names[int(row.argmax())] for row in sims]
