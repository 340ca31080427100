import json
import math

import pytest

from eval.compare import compare, mcnemar_exact
from eval.run import EvalConfig, evaluate
from gencrs.errors import GencrsError


def exact_two_sided(a: int, b: int) -> float:
    n, low = a + b, min(a, b)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(low + 1)) / 2 ** n)


@pytest.mark.parametrize("a,b", [(36, 18), (5, 0), (0, 5), (7, 7), (1, 12)])
def test_mcnemar_matches_the_binomial_tail_by_hand(a, b):
    assert mcnemar_exact(a, b) == pytest.approx(exact_two_sided(a, b), rel=1e-9)


def test_no_discordant_pairs_is_p_one():
    assert mcnemar_exact(0, 0) == 1.0


@pytest.fixture(scope="module")
def two_runs(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    runs = {}
    for model in ("popularity", "cooccurrence"):
        for protocol in ("unicrs", "recommender"):
            out = root / f"{model}_{protocol}"
            metrics = evaluate(EvalConfig(model=f"baseline:{model}", dataset="redial", protocol=protocol, limit=300,
                                          data_dir=str(shared_data), out=str(out)))
            runs[model, protocol] = (str(out), metrics)
    return runs


def test_paired_counts_agree_with_each_runs_metrics(two_runs):
    (pop, pop_metrics), (co, co_metrics) = two_runs["popularity", "unicrs"], two_runs["cooccurrence", "unicrs"]
    for k in (1, 10):
        result = compare(pop, co, k=k)
        assert result["instances"] == pop_metrics["instances"] == co_metrics["instances"]
        assert result["hits_a"] == round(pop_metrics[f"recall@{k}"] * pop_metrics["instances"])
        assert result["hits_b"] == round(co_metrics[f"recall@{k}"] * co_metrics["instances"])
        assert result["only_a"] - result["only_b"] == result["hits_a"] - result["hits_b"]
        assert result["mcnemar_p"] == pytest.approx(exact_two_sided(result["only_a"], result["only_b"]))
    assert compare(co, pop, k=10)["only_a"] == compare(pop, co, k=10)["only_b"]


def test_comparing_new_or_repeated_labels_splits_the_instances(two_runs):
    (pop, _), (co, co_metrics) = two_runs["popularity", "unicrs"], two_runs["cooccurrence", "unicrs"]
    every, new, repeated = (compare(pop, co, k=10, labels=labels) for labels in ("all", "new", "repeated"))
    assert new["instances"] > 0 and repeated["instances"] > 0
    for field in ("instances", "hits_a", "hits_b", "only_a", "only_b"):
        assert new[field] + repeated[field] == every[field]
    for kind, result in (("new", new), ("repeated", repeated)):
        assert result["instances"] == co_metrics["by_label"][kind]["instances"]
        assert result["hits_b"] == round(co_metrics["by_label"][kind]["recall@10"] * result["instances"])
    with pytest.raises(GencrsError, match="labels: 'old'"):
        compare(pop, co, labels="old")


def test_a_run_against_itself_has_no_discordant_pairs(two_runs):
    run, metrics = two_runs["cooccurrence", "unicrs"]
    result = compare(run, run, k=10)
    assert result["only_a"] == result["only_b"] == 0 and result["mcnemar_p"] == 1.0
    assert result["hits_a"] == round(metrics["recall@10"] * metrics["instances"])


def test_runs_over_different_instances_are_refused(two_runs):
    with pytest.raises(GencrsError, match="protocol"):
        compare(two_runs["popularity", "unicrs"][0], two_runs["popularity", "recommender"][0])


def test_an_unfinished_run_names_the_missing_context(two_runs, tmp_path):
    import shutil
    source = two_runs["popularity", "unicrs"][0]
    partial = tmp_path / "partial"
    shutil.copytree(source, partial)
    lines = (partial / "predictions.jsonl").read_text().splitlines()
    (partial / "predictions.jsonl").write_text("\n".join(lines[:-5]) + "\n")
    dropped = {json.loads(line)["key"] for line in lines[-5:]}
    with pytest.raises(GencrsError, match="5 contexts have no prediction") as error:
        compare(source, str(partial))
    assert "partial" in str(error.value) and any(key in str(error.value) for key in dropped)


def test_a_corrupt_prediction_line_is_named(two_runs, tmp_path):
    import shutil
    source = two_runs["popularity", "unicrs"][0]
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    lines = (broken / "predictions.jsonl").read_text().splitlines()
    lines[2] = '{"key": "x"'
    (broken / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(GencrsError, match=r"broken/predictions.jsonl:3: not a prediction row"):
        compare(source, str(broken))
