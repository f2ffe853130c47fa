"""HEAR-style shallow learning on frozen embeddings (the Pengi paper's L1/L2/L3 probes).

One, two or three fully-connected layers with cross-entropy (softmax for multiclass, sigmoid
for multilabel) are trained on standardised embeddings; the learning rate and the stopping
epoch are chosen on a validation part, and the chosen model is scored once on the test part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # scikit-learn loads when a probe trains, not at every command's start
    from sklearn.neural_network import MLPClassifier

SPLIT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class ProbeConfig:
    layers: int = 1  # 1 = linear (softmax/sigmoid layer only), 2/3 = MLP with hidden layers
    hidden_size: int = 256  # width of the hidden layers when layers > 1 (HEAR uses 1024)
    learning_rates: tuple[float, ...] = (1e-4, 1e-3, 1e-2)  # grid, chosen on validation
    max_epochs: int = 200
    patience: int = 20  # epochs without a better validation metric before stopping
    batch_size: int = 256
    seed: int = 0


@dataclass(frozen=True)
class FoldResult:
    test_fold: str  # "1", "2", ... for predefined folds, "test" for a train/valid/test split
    metric: float  # accuracy (multiclass) or macro mAP (multilabel) on the test part
    learning_rate: float  # chosen on validation
    epochs: int  # epoch (1-based) of the chosen model
    predictions: list  # per test row: class index (-1 = failed row) or per-label scores


def fold_splits(folds: Sequence[int]) -> list[tuple[int, int, list[int]]]:
    """HEAR rotation: split i tests on fold i, validates on the next fold, trains on the rest."""
    order = sorted(set(folds))
    k = len(order)
    if k < 3:
        raise ValueError(f"predefined folds need at least 3 distinct folds, got {k}: {order}")
    splits = []
    for i, test in enumerate(order):
        valid = order[(i + 1) % k]
        splits.append((test, valid, [f for f in order if f not in (test, valid)]))
    return splits


def summarize(results: Sequence[FoldResult]) -> tuple[float, float]:
    """Mean and population standard deviation of the metric over folds."""
    metrics = np.array([r.metric for r in results], dtype=float)
    return float(metrics.mean()), float(metrics.std(ddof=0))


def _finite_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop rows whose embedding failed (NaN): they cannot be trained or validated on."""
    keep = np.isfinite(x).all(axis=1)
    return x[keep], y[keep]


def _predict(model: MLPClassifier, x: np.ndarray, multilabel: bool) -> np.ndarray:
    """Class indices (-1 for failed rows) or per-label scores (-inf for failed rows)."""
    ok = np.isfinite(x).all(axis=1)
    if multilabel:
        out = np.full((len(x), len(model.classes_)), -np.inf)
        if ok.any():
            out[ok] = model.predict_proba(x[ok])
        return out
    out = np.full(len(x), -1, dtype=int)
    if ok.any():
        out[ok] = model.predict(x[ok])
    return out


def _metric(y: np.ndarray, pred: np.ndarray, multilabel: bool) -> float:
    """Accuracy, or macro mAP over labels that have at least one positive (nan if none do)."""
    if not multilabel:
        return float(np.mean(pred == y))
    # sklearn rejects infinite scores; -1 still ranks failed rows below every probability.
    scores = np.nan_to_num(pred, neginf=-1.0)
    from sklearn.metrics import average_precision_score

    aps = [average_precision_score(y[:, j], scores[:, j]) for j in range(y.shape[1]) if y[:, j].any()]
    return float(np.mean(aps)) if aps else float("nan")


def _make_model(config: ProbeConfig, lr: float, n_train: int) -> MLPClassifier:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(config.hidden_size,) * (config.layers - 1),  # () = linear layer only
        solver="adam",
        learning_rate_init=lr,
        alpha=1e-4,
        batch_size=min(config.batch_size, n_train),  # sklearn warns when it must clip
        shuffle=False,  # we shuffle per epoch; sklearn would reuse one permutation every call
        random_state=config.seed,
    )


def _validation_loss(proba: np.ndarray, y: np.ndarray, multilabel: bool) -> float:
    """Cross-entropy on validation: breaks ties once the metric saturates (e.g. accuracy 1.0)."""
    proba = np.clip(proba, 1e-12, 1 - 1e-12)
    if multilabel:
        return float(-np.mean(y * np.log(proba) + (1 - y) * np.log(1 - proba)))
    return float(-np.mean(np.log(proba[np.arange(len(y)), y])))


def _fit_one_lr(lr, train_x, train_y, valid_x, valid_y, classes, multilabel, config):
    """Train epoch by epoch; return (best validation (metric, -loss), its epoch, the model with that
    epoch's weights)."""
    model = _make_model(config, lr, len(train_x))
    rng = np.random.default_rng(config.seed)
    best_score, best_epoch, best_weights = (-np.inf, -np.inf), 0, None
    for epoch in range(1, config.max_epochs + 1):
        order = rng.permutation(len(train_x))
        model.partial_fit(train_x[order], train_y[order], classes=classes)
        proba = model.predict_proba(valid_x)  # every row is finite: one forward pass gives both
        predicted = proba if multilabel else model.classes_[proba.argmax(1)]  # = predict()
        # loss rounded: only a real improvement (>= 0.001) resets patience once the metric saturates
        score = (_metric(valid_y, predicted, multilabel), -round(_validation_loss(proba, valid_y, multilabel), 3))
        if best_weights is None or score > best_score:  # strict: ties keep the earlier epoch
            best_score, best_epoch = score, epoch
            best_weights = [w.copy() for w in model.coefs_ + model.intercepts_]
        elif epoch - best_epoch >= config.patience:
            break
    layers = len(model.coefs_)  # prediction reads only the weights: restore the best epoch's
    model.coefs_, model.intercepts_ = best_weights[:layers], best_weights[layers:]
    return best_score, best_epoch, model


def _classes(multilabel: bool, *ys: np.ndarray) -> np.ndarray:
    """Every class index of the task, so classes missing from the train part do not break partial_fit."""
    if multilabel:
        n_labels = ys[0].shape[1]
        if n_labels < 2:
            raise ValueError("multilabel probes need at least 2 labels; use multiclass for a binary task")
        return np.arange(n_labels)
    return np.arange(max(int(y.max()) for y in ys if len(y)) + 1)


def train_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    valid_x: np.ndarray,
    valid_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    multilabel: bool,
    config: ProbeConfig,
    test_fold: str = "test",
) -> FoldResult:
    """Choose the learning rate and epoch on validation; score the chosen model on test."""
    classes = _classes(multilabel, train_y, valid_y, test_y)
    train_x, train_y = _finite_rows(train_x, train_y)
    valid_x, valid_y = _finite_rows(valid_x, valid_y)
    if not len(train_x) or not len(valid_x):
        raise ValueError(f"fold {test_fold}: no usable train or validation rows")
    from sklearn import config_context
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    scaler = StandardScaler().fit(train_x)
    train_x, valid_x = scaler.transform(train_x), scaler.transform(valid_x)
    best = None
    # One BLAS thread: per-batch matrices are small, so more threads only add sync cost, and
    # spinning BLAS threads made runs 5x slower when other processes shared the cores.  The rows are
    # checked above, so sklearn's per-call checks (most of an epoch's time on small data) are skipped.
    with threadpool_limits(limits=1, user_api="blas"), config_context(assume_finite=True,
                                                                      skip_parameter_validation=True):
        for lr in sorted(config.learning_rates):  # strict '>' below: ties go to the smaller lr
            score, epoch, model = _fit_one_lr(lr, train_x, train_y, valid_x, valid_y, classes, multilabel, config)
            if best is None or score > best[0]:
                best = (score, lr, epoch, model)
    _, lr, epoch, model = best
    pred = _predict(model, scaler.transform(test_x), multilabel)  # NaN rows stay NaN
    return FoldResult(test_fold, _metric(test_y, pred, multilabel), lr, epoch, pred.tolist())


def _fold_parts(groups: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    return [
        (str(test), np.isin(groups, train), groups == valid, groups == test)
        for test, valid, train in fold_splits(groups.tolist())
    ]


def _carve_valid(train: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    """Hold out 10% of the train rows for validation, stratified when every class allows it."""
    try:
        return train_test_split(train, test_size=0.1, random_state=seed, stratify=y[train])
    except ValueError:  # a class with a single row, or fewer held-out rows than classes
        return train_test_split(train, test_size=0.1, random_state=seed)


def within_copy_split(y: np.ndarray, seed: int) -> list[str]:
    """"train"/"valid"/"test" (60/20/20) per row, seeded and stratified by class where every class
    allows it: for a partial copy whose items all lie in fewer than 3 of the official folds."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    labels = y if y.ndim == 1 else None

    def split(part, size, stratify):
        try:
            return train_test_split(part, test_size=size, random_state=seed, stratify=stratify)
        except ValueError:  # a class too small to appear on both sides
            return train_test_split(part, test_size=size, random_state=seed)

    rest, test = split(rows, 0.2, labels)
    train, valid = split(rest, 0.25, None if labels is None else labels[rest])
    roles = np.empty(len(y), dtype=object)
    roles[train], roles[valid], roles[test] = "train", "valid", "test"
    return roles.tolist()


def _split_parts(groups: np.ndarray, x: np.ndarray, y: np.ndarray, seed: int):
    unknown = set(groups.tolist()) - set(SPLIT_NAMES)
    if unknown:
        raise ValueError(f"split names must be {SPLIT_NAMES}, got {sorted(map(str, unknown))}")
    train, valid, test = (np.flatnonzero(groups == name) for name in SPLIT_NAMES)
    if not len(train) or not len(test):
        raise ValueError("a train/valid/test split needs 'train' and 'test' rows")
    if not len(valid):
        # Carve from usable rows only, so the held-out 10% is not wasted on failed embeddings.
        train, valid = _carve_valid(train[np.isfinite(x[train]).all(axis=1)], y, seed)
    return [("test", train, valid, test)]


def run_probe(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str | int],
    *,
    multilabel: bool,
    config: ProbeConfig,
    folds: bool,
) -> list[FoldResult]:
    """Probe every predefined fold (``folds=True``) or the single train/valid/test split."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=int)
    groups = np.asarray(groups)
    parts = _fold_parts(groups) if folds else _split_parts(groups, x, y, config.seed)
    return [
        train_probe(
            x[tr], y[tr], x[va], y[va], x[te], y[te],
            multilabel=multilabel, config=config, test_fold=name,
        )
        for name, tr, va, te in parts
    ]
