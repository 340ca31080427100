import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from gencrs import metrics as M


def test_ranking_metrics_hand_computed():
    rankings = [["a", "b", "c"], ["b", "a"], ["c"], []]
    labels = ["a", "a", "a", "a"]
    m = M.ranking_metrics(rankings, labels, ks=(1, 2, 3))
    assert m["recall@1"] == 1 / 4 and m["recall@2"] == 2 / 4 and m["recall@3"] == 2 / 4
    assert m["mrr@2"] == pytest.approx((1 + 1 / 2) / 4)
    assert m["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert m["instances"] == 4


def test_duplicates_are_removed_before_ranking():
    # without de-duplication 'a' would sit at rank 3; with it, at rank 2
    m = M.ranking_metrics([["b", "b", "a"]], ["a"], ks=(2,))
    assert m["recall@2"] == 1 and m["mrr@2"] == 0.5


def test_fewer_predictions_than_k_count_as_misses():
    m = M.ranking_metrics([["b"]], ["a"], ks=(50,))
    assert m["recall@50"] == 0 and m["ndcg@50"] == 0


def test_ties_keep_catalog_order():
    assert M.rank_by_scores([1, 3, 3, 0, 3], ["p", "q", "r", "s", "t"]) == ["q", "r", "t", "p", "s"]


def test_ndcg_matches_sklearn_for_a_single_relevant_item():
    rng = np.random.default_rng(0)
    items = [f"i{n}" for n in range(30)]
    for _ in range(20):
        scores = rng.random(30)
        label = rng.integers(30)
        ranking = M.rank_by_scores(scores, items)
        relevance = np.zeros((1, 30))
        relevance[0, label] = 1
        ours = M.ranking_metrics([ranking], [items[label]], ks=(10,))["ndcg@10"]
        assert ours == pytest.approx(ndcg_score(relevance, scores[None], k=10))


def test_recall_curve():
    assert M.recall_curve([["a", "b"], ["b", "a"], ["c"]], ["a", "a", "a"], 3) == [1 / 3, 2 / 3, 2 / 3]


def test_in_response_metrics_hand_computed():
    named = [["a", "x"], [], ["b"]]
    gold = [["a", "b"], ["a"], ["b"]]
    m = M.in_response_metrics(named, gold, k=2)
    # turn 1: hits 1, R=1/2, P=1/2, F1=1/2; turn 2: 0; turn 3: R=P=F1=1
    assert m["ReR@2"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["PrR@2"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["F1@2"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert M.in_response_metrics([["x", "a"]], [["a"]], k=1)["ReR@1"] == 0  # only the first named item counts at k=1


def test_turn_ratio_and_mismatch():
    assert M.recommendation_turn_ratio([["a"], [], ["b", "c"], []]) == 0.5
    # turn 1 matches, turn 2 differs, turn 3 names nothing anywhere (ignored), turn 4 target only
    assert M.mismatch_rate([["a"], ["a"], [], ["c"]], [["a"], ["b"], [], []]) == pytest.approx(2 / 3)


def test_response_metrics():
    hyps = ["the cat sat on the mat", "a dog"]
    assert M.bleu(hyps, hyps, 2) == pytest.approx(1.0)
    assert M.bleu(["completely different words here"], ["the cat sat on the mat"], 2) < 0.1
    assert M.rouge(hyps, hyps) == {"rouge2": pytest.approx(1.0), "rougeL": pytest.approx(1.0)}
    assert M.distinct(["a b a b", "a b"], 2) == pytest.approx(2 / 4)  # (a b),(b a),(a b),(a b): 2 distinct of 4
    assert M.distinct(["x"], 2) == 0


def test_user_centric_metrics_hand_computed():
    # d1: liked on its one turn; d2: seen twice; d3: nothing the seeker answered about
    rewards = {"d1": [1.0], "d2": [0.5, 0.5], "d3": [0.0, 0.0]}
    result = M.user_centric_metrics(rewards, {"d1": 4, "d2": 8, "d3": 2})
    assert result["success_rate"] == pytest.approx(2 / 3)
    assert result["reward_per_dialogue_length"] == pytest.approx((1 / 4 + 1 / 8 + 0) / 3)
    assert result["user_centric_dialogues"] == 3
