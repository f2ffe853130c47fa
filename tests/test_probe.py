import numpy as np
import pytest

from alm_bench.probe import FoldResult, ProbeConfig, fold_splits, run_probe, summarize, train_probe

FAST = ProbeConfig(max_epochs=60, patience=10, batch_size=32)


def clusters(n=250, dim=16, classes=5, spread=0.3, seed=0):
    """Gaussian clusters around well separated centres: linearly separable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(classes, dim))[y] * 3 + rng.normal(scale=spread, size=(n, dim))
    return x, y


def folds_of(n, k=5):
    """Shuffled so that every fold holds every class of clusters()."""
    return np.random.default_rng(0).permutation(n) % k + 1


def test_fold_splits_rotation():
    splits = fold_splits([3, 1, 2, 5, 4, 1, 5])
    assert splits[0] == (1, 2, [3, 4, 5])
    assert splits[1] == (2, 3, [1, 4, 5])
    assert splits[4] == (5, 1, [2, 3, 4])
    assert [s[0] for s in splits] == [1, 2, 3, 4, 5]


def test_fold_splits_needs_three_folds():
    with pytest.raises(ValueError, match="at least 3"):
        fold_splits([1, 2, 1, 2])


def test_summarize_is_mean_and_population_std():
    results = [FoldResult(str(i), m, 1e-3, 1, []) for i, m in enumerate([0.5, 1.0])]
    assert summarize(results) == (0.75, 0.25)


def test_linear_probe_separates_clusters():
    x, y = clusters()
    config = ProbeConfig(max_epochs=50)  # the default grid; fewer epochs keep the test quick
    results = run_probe(x, y, folds_of(len(y)), multilabel=False, config=config, folds=True)
    assert [r.test_fold for r in results] == ["1", "2", "3", "4", "5"]
    assert all(len(r.predictions) == 50 for r in results)
    assert all(r.learning_rate in config.learning_rates and 1 <= r.epochs <= 50 for r in results)
    assert summarize(results)[0] >= 0.95


def test_linear_probe_on_random_labels_is_near_chance():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(1000, 16)), rng.integers(0, 5, 1000)
    results = run_probe(x, y, folds_of(1000), multilabel=False, config=FAST, folds=True)
    assert summarize(results)[0] < 0.35


def test_mlp_probe_separates_clusters():
    x, y = clusters(n=200)
    config = ProbeConfig(layers=3, hidden_size=32, max_epochs=60, patience=10, batch_size=32)
    results = run_probe(x, y, folds_of(200, 4), multilabel=False, config=config, folds=True)
    assert summarize(results)[0] >= 0.95


def test_multilabel_map_on_separable_data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 12))
    y = (x[:, :4] > 0).astype(int)  # each label is one half-space
    results = run_probe(x, y, folds_of(300, 3), multilabel=True, config=FAST, folds=True)
    assert summarize(results)[0] >= 0.9
    assert all(len(p) == 4 for r in results for p in r.predictions)


def test_learning_rate_is_chosen_on_validation():
    # In 3 epochs lr 1e-6 barely moves the random init; only lr 0.1 can fit the validation part.
    x, y = clusters(n=150, dim=8)
    config = ProbeConfig(learning_rates=(1e-6, 0.1), max_epochs=3, patience=3)
    results = run_probe(x, y, folds_of(150, 3), multilabel=False, config=config, folds=True)
    assert [r.learning_rate for r in results] == [0.1] * 3


def test_saturated_validation_accuracy_is_broken_by_validation_loss():
    x, y = clusters(n=150, dim=8, spread=0.01)  # every lr reaches perfect validation accuracy at once
    config = ProbeConfig(learning_rates=(0.1, 0.001), max_epochs=30, patience=5)
    results = run_probe(x, y, folds_of(150, 3), multilabel=False, config=config, folds=True)
    # accuracy ties, so the lower validation loss decides: the larger lr and a later epoch than the first
    assert [r.learning_rate for r in results] == [0.1] * 3
    assert all(r.epochs > 1 and r.metric == 1.0 for r in results)


def test_deterministic_for_a_seed():
    x, y = clusters(n=150, spread=3.0)  # overlapping clusters: predictions depend on the fit
    first = run_probe(x, y, folds_of(150, 3), multilabel=False, config=FAST, folds=True)
    second = run_probe(x, y, folds_of(150, 3), multilabel=False, config=FAST, folds=True)
    assert first == second


def test_failed_rows_are_skipped_in_training_and_wrong_in_test():
    x, y = clusters(n=200)
    groups = np.array(["train"] * 120 + ["valid"] * 30 + ["test"] * 50)
    x[[0, 5, 125]] = np.nan  # two train rows, one valid row
    x[[150, 151, 199]] = np.nan  # three test rows
    (result,) = run_probe(x, y, groups, multilabel=False, config=FAST, folds=False)
    pred = np.array(result.predictions)
    assert list(pred[[0, 1, 49]]) == [-1, -1, -1]
    assert result.metric == pytest.approx(np.mean(pred == y[150:])) and result.metric == pytest.approx(47 / 50)


def test_failed_rows_rank_last_in_multilabel():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 8))
    y = (x[:, :3] > 0).astype(int)
    x[[0, 180]] = np.nan
    groups = ["train"] * 150 + ["test"] * 50
    (result,) = run_probe(x, y, groups, multilabel=True, config=FAST, folds=False)
    assert result.predictions[30] == [-np.inf] * 3
    assert np.isfinite(result.metric) and 0 < result.metric <= 1


def test_split_mode_with_and_without_valid():
    x, y = clusters(n=200)
    with_valid = ["train"] * 120 + ["valid"] * 30 + ["test"] * 50
    without_valid = ["train"] * 150 + ["test"] * 50
    for groups in (with_valid, without_valid):
        (result,) = run_probe(x, y, groups, multilabel=False, config=FAST, folds=False)
        assert result.test_fold == "test" and len(result.predictions) == 50
        assert result.metric >= 0.95
    carved = [run_probe(x, y, without_valid, multilabel=False, config=FAST, folds=False) for _ in range(2)]
    assert carved[0] == carved[1]


def test_split_mode_rejects_unknown_split_names():
    x, y = clusters(n=20)
    with pytest.raises(ValueError, match="split names"):
        run_probe(x, y, ["train"] * 10 + ["dev"] * 10, multilabel=False, config=FAST, folds=False)


def test_class_absent_from_train_does_not_crash():
    x, y = clusters(n=60, classes=3)
    y_train, y_test = y[:40], y[50:].copy()
    y_test[0] = 5  # a class index the probe never saw in training
    result = train_probe(x[:40], y_train, x[40:50], y[40:50], x[50:], y_test, multilabel=False, config=FAST)
    assert all(0 <= p <= 5 for p in result.predictions)
    assert result.predictions[0] != 5
