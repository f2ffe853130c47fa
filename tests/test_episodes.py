import numpy as np
import pytest

from alm_bench.episodes import Episode, prototype_predict, sample_episodes

# 12 classes with 8 items each, plus a small class that can never fill an episode.
LABELS = [f"c{i % 12:02d}" for i in range(96)] + ["tiny"] * 3


def sample(**overrides) -> list[Episode]:
    args = dict(ways=5, shots=5, queries_per_class=3, episodes=20, seed=7) | overrides
    return sample_episodes(LABELS, **args)


def test_episode_sizes_and_labels():
    for ep in sample():
        assert len(ep.classes) == len(set(ep.classes)) == 5
        assert "tiny" not in ep.classes
        assert len(ep.support) == 25 and len(ep.queries) == 15
        for items in (ep.support, ep.queries):
            assert all(LABELS[i] == c and c in ep.classes for i, c in items)
        assert all(sum(c == k for _, c in ep.support) == 5 for k in ep.classes)


def test_support_and_queries_do_not_overlap():
    for ep in sample(ways=12):
        support = [i for i, _ in ep.support]
        queries = [i for i, _ in ep.queries]
        assert len(set(support)) == len(support) and len(set(queries)) == len(queries)
        assert not set(support) & set(queries)


def test_support_order_is_shuffled():
    # Grouped by class, the first 5 support items would always share a class.
    assert any(len({c for _, c in ep.support[:5]}) > 1 for ep in sample())


def test_deterministic_and_prefix_stable():
    assert sample(episodes=10) == sample(episodes=10)
    assert sample(episodes=10) == sample(episodes=100)[:10]
    assert sample(seed=8) != sample(seed=7)


def test_too_few_classes_or_items_raise():
    with pytest.raises(ValueError, match="only 12 of 13 classes"):
        sample(ways=13)
    with pytest.raises(ValueError, match=">= 9 items"):
        sample(shots=6)  # 6 + 3 items needed, every class has 8
    with pytest.raises(ValueError):
        sample(shots=0)


def test_prototype_predict_on_clusters():
    rng = np.random.default_rng(0)
    names = ["dog", "rain", "siren"]
    centres = rng.normal(size=(3, 32)) * 5
    support_classes = [names[i % 3] for i in range(15)]
    support_x = centres[np.arange(15) % 3] + rng.normal(size=(15, 32))
    truth = rng.integers(0, 3, 30)
    query_x = centres[truth] + rng.normal(size=(30, 32))
    query_x[4] = np.nan
    pred = prototype_predict(support_x, support_classes, query_x)
    assert pred[4] is None
    assert [p for k, p in enumerate(pred) if k != 4] == [names[t] for k, t in enumerate(truth) if k != 4]


def test_prototype_predict_uses_cosine_not_distance():
    # Nearer to "b" in Euclidean distance, but pointing the same way as "a".
    assert prototype_predict(np.array([[10.0, 0.0], [0.0, 1.0]]), ["a", "b"], np.array([[2.0, 1.0]])) == ["a"]


def test_prototype_averages_normalised_support():
    # Normalised, "a"'s support averages to 45 degrees; raw, its long first vector would drag it to ~0.
    support_x = np.array([[100.0, 0.0], [0.0, 1.0], [1.0, 0.2]])
    assert prototype_predict(support_x, ["a", "a", "b"], np.array([[1.0, 0.9]])) == ["a"]


def test_nonce_label_words_are_drawn_per_episode_and_names_are_kept():
    from alm_bench.evaluators.fewshot import label_words
    from alm_bench.synth import EVENT_LABELS

    episodes = sample_episodes(LABELS, ways=3, shots=1, queries_per_class=1, episodes=2, seed=0)
    assert label_words(episodes[0], "names", 0, 0) == {c: c for c in episodes[0].classes}
    first, again, second = (label_words(episodes[i], "nonce", 0, i) for i in (0, 0, 1))
    assert first == again and set(first) == set(episodes[0].classes) and len(set(first.values())) == 3
    assert set(first.values()) != set(second.values()) and not set(first.values()) & set(EVENT_LABELS)
