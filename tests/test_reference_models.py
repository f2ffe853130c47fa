"""Every evaluator gives the oracle its perfect score and the chance model its chance level,
end to end through the runner on the synthetic suite."""

import math

import pytest


@pytest.fixture(scope="module")
def oracle(synth_suite):
    # the oracle's own text encoder maps a caption to the clips it describes, so generative
    # retrieval is perfect too; every other method ignores the encoder choice or matches exact text
    return synth_suite("oracle", "model").results, None


@pytest.fixture(scope="module")
def chance(synth_suite):
    return synth_suite("chance", "model").results, None


PERFECT = {
    ("synth-events", "text_matching"): {"accuracy": 1.0},
    ("synth-events", "log_likelihood"): {"accuracy": 1.0},
    ("synth-events", "linear_probe"): {"accuracy": 1.0},
    ("synth-tagging", "log_likelihood"): {"mAP": 1.0, "F1": 1.0},
    ("synth-tagging", "text_matching"): {"mAP": 1.0, "F1": 1.0},
    ("synth-tagging", "linear_probe"): {"mAP": 1.0},
    ("synth-count", "qa"): {"accuracy": 1.0},
    ("synth-compare", "two_clip"): {"accuracy": 1.0},
    ("synth-fewshot", "fewshot"): {"5-way accuracy": 1.0},
    ("synth-fewshot", "fewshot_prototype"): {"5-way accuracy": 1.0},
    ("synth-order", "two_clip"): {"accuracy": 1.0},
    ("synth-fewshot-nonce", "fewshot"): {"5-way accuracy": 1.0},
    ("synth-retrieval", "retrieval_embedding"): {"t2a_R@1": 1.0, "a2t_R@1": 1.0, "t2a_mAP@10": 1.0},
}


def test_oracle_generative_retrieval_is_near_perfect(oracle):
    # the oracle captions a clip with one reference and is queried with the others, so its ceiling
    # is set by how far apart the text encoder keeps different clips' captions
    metrics = oracle[0][("synth-retrieval", "retrieval")].metrics
    assert metrics["a2t_R@1"] == 1.0
    assert metrics["t2a_R@1"] >= 0.9 and metrics["t2a_R@10"] >= 0.99


@pytest.mark.parametrize("key", sorted(PERFECT))
def test_oracle_is_perfect(oracle, key):
    results, _ = oracle
    for metric, value in PERFECT[key].items():
        if value is not None:
            assert results[key].metrics[metric] == pytest.approx(value), (key, metric)
    assert results[key].n_failed == 0


def test_oracle_captions_score_like_a_human_reference(oracle):
    scores = oracle[0][("synth-caption", "captioning")].metrics
    # the oracle answers with one of the five references, scored against all five
    assert scores["BLEU-1"] == pytest.approx(1.0)
    assert scores["CIDEr-D"] > 2.0


def test_unavailable_metrics_are_reported_not_replaced(oracle):
    result = oracle[0][("synth-caption", "captioning")]
    assert result.metrics["SPICE"] is None and result.metrics["SPIDEr"] is None
    assert "SPICE" in result.unavailable and "CoreNLP" in result.unavailable["SPICE"]


def _binomial_band(p, n, z=4.0):
    half = z * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


CHANCE = {  # (task, method, metric): expected chance level
    ("synth-events", "text_matching", "accuracy"): 1 / 10,
    ("synth-events", "log_likelihood", "accuracy"): 1 / 10,
    ("synth-events", "linear_probe", "accuracy"): 1 / 10,
    ("synth-count", "qa", "accuracy"): 1 / 4,  # answers 1..4
    ("synth-compare", "two_clip", "accuracy"): 1 / 4,  # guesses among first, second, yes, no
    ("synth-fewshot", "fewshot", "5-way accuracy"): 1 / 5,
    ("synth-fewshot", "fewshot_prototype", "5-way accuracy"): 1 / 5,
    ("synth-order", "two_clip", "accuracy"): 1 / 2,  # guesses between first and second
    ("synth-fewshot-nonce", "fewshot", "5-way accuracy"): 1 / 5,  # among the episode's five non-words
}


@pytest.mark.parametrize("key", sorted(CHANCE))
def test_chance_model_scores_chance_level(chance, key):
    task, method, metric = key
    result = chance[0][(task, method)]
    low, high = _binomial_band(CHANCE[key], result.n_items)
    assert low <= result.metrics[metric] <= high, (key, result.metrics[metric])


def test_chance_retrieval_is_near_k_over_n(chance):
    metrics = chance[0][("synth-retrieval", "retrieval_embedding")].metrics
    n_audio = 200
    for k in (1, 5, 10):
        assert metrics[f"t2a_R@{k}"] <= 3 * k / n_audio + 0.03
    assert metrics["t2a_R@10"] > 0  # random, not broken


def test_chance_tagging_map_is_near_label_prevalence(chance):
    value = chance[0][("synth-tagging", "log_likelihood")].metrics["mAP"]
    assert 0.15 <= value <= 0.4  # 2-3 of 10 labels per clip


def test_chance_captions_score_far_below_oracle(chance, oracle):
    assert chance[0][("synth-caption", "captioning")].metrics["CIDEr-D"] < 0.5 * \
        oracle[0][("synth-caption", "captioning")].metrics["CIDEr-D"]


def test_order_flip_rate_is_one_for_the_oracle_and_a_coin_for_chance(oracle, chance):
    perfect = oracle[0][("synth-order", "two_clip")].details
    guessed = chance[0][("synth-order", "two_clip")].details
    assert perfect["order_pairs"] == 100 and perfect["order_flip_rate"] == 1.0
    low, high = _binomial_band(0.5, guessed["order_pairs"])
    assert low <= guessed["order_flip_rate"] <= high
