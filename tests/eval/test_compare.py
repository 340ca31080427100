import json
import math
import re
import subprocess
import sys

import pytest

from eval.compare import compare, compare_turns, mcnemar_exact
from eval.run import EvalConfig, evaluate
from gencrs.data import build_examples, load_dataset
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
    with pytest.raises(GencrsError, match=r"broken/predictions.jsonl:3: not a row with .key. and .ranking."):
        compare(source, str(broken))


@pytest.fixture(scope="module")
def generated_run(synthetic_generative, tmp_path_factory):
    """A real `eval run --generate` of the untrained extended tiny model on the first 24 synthetic test turns."""
    out = tmp_path_factory.mktemp("generated") / "run"
    metrics = evaluate(EvalConfig(model=synthetic_generative["model"], dataset="synthetic", protocol="recommender",
                                  limit=24, k=5, generate=True, max_new_tokens=24, out=str(out)))
    return out, metrics


def edited_copy(run, out, titles_of) -> dict:
    """A copy of `run` whose generated responses name `titles_of(example)` instead, with the metrics `eval run`
    recomputes from the stored rows (it resumes: nothing is generated again)."""
    import shutil
    shutil.copytree(run, out)
    examples = {e.key: e for e in build_examples(load_dataset("synthetic"), "test")}
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    for row in rows:
        row["response_titles"] = titles_of(examples[row["key"]])
    (out / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = json.loads((out / "config.json").read_text())
    return evaluate(EvalConfig(**{**config, "out": str(out)}))


def test_turn_comparison_pairs_the_first_named_item_with_the_targets(generated_run, synthetic, tmp_path):
    run, metrics = generated_run
    with_targets = [e for e in build_examples(synthetic, "test")[:24] if e.targets]
    assert with_targets and len({synthetic.title(i) for i in synthetic.catalog}) == len(synthetic.catalog)
    chosen = {e.key for e in with_targets[::2]}  # every other turn with targets names its first target first

    def target_first(e):
        return [synthetic.title(e.targets[0])] if e.key in chosen else ["No Such Movie"]

    def target_second(e):  # a non-target named first, then the target: a hit at k=2 only
        other = next(i for i in synthetic.catalog if i not in e.targets)
        return [synthetic.title(other), synthetic.title(e.targets[0])] if e.targets else []

    edited = edited_copy(run, tmp_path / "b", target_first)
    second = edited_copy(run, tmp_path / "c", target_second)
    n = len(with_targets)
    result = compare_turns(str(run), str(tmp_path / "b"))
    assert result["turns_with_targets"] == n
    assert result["hits_a"] == round(metrics["generation"]["PrR@1"] * n)  # the per-turn PrR@1 of each run
    assert result["hits_b"] == len(chosen) == round(edited["generation"]["PrR@1"] * n)
    assert result["only_b"] - result["only_a"] == result["hits_b"] - result["hits_a"]
    assert result["mcnemar_p"] == pytest.approx(exact_two_sided(result["only_a"], result["only_b"]))
    at_1, at_2 = (compare_turns(str(tmp_path / "b"), str(tmp_path / "c"), k=k) for k in (1, 2))
    assert at_1["hits_b"] == 0 == round(second["generation"]["PrR@1"] * n) and at_1["only_a"] == len(chosen)
    assert at_2["hits_b"] == n and at_2["only_b"] == n - len(chosen) and at_2["only_a"] == 0
    assert compare_turns(str(tmp_path / "c"), str(tmp_path / "b"), k=2)["only_a"] == n - len(chosen)


def test_turn_comparison_refuses_what_it_cannot_pair(generated_run, synthetic, two_runs, tmp_path):
    import shutil
    run, _ = generated_run
    with pytest.raises(GencrsError, match=r"generations.jsonl: not found .*made with generate=true"):
        compare_turns(str(run), two_runs["popularity", "unicrs"][0])
    shorter = tmp_path / "shorter"
    shutil.copytree(run, shorter)
    config = json.loads((shorter / "config.json").read_text())
    (shorter / "config.json").write_text(json.dumps({**config, "limit": 12}))
    with pytest.raises(GencrsError, match="generated different turns: limit"):
        compare_turns(str(run), str(shorter))
    (shorter / "config.json").write_text(json.dumps(config))
    dropped = [e.key for e in build_examples(synthetic, "test")[:24] if e.targets][-3:]
    rows = [line for line in (shorter / "generations.jsonl").read_text().splitlines()
            if json.loads(line)["key"] not in dropped]
    (shorter / "generations.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(GencrsError, match=rf"shorter: 3 turns have no generation \(first: {re.escape(dropped[0])}\)"):
        compare_turns(str(run), str(shorter))
    result = subprocess.run([sys.executable, "-m", "eval", "compare", f"run_a={run}", f"run_b={run}", "turns=true", "labels=new"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "does not apply to turns=true" in result.stderr
    result = subprocess.run([sys.executable, "-m", "eval", "compare", f"run_a={run}", f"run_b={run}", "turns=true"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and json.loads(result.stdout)["only_a"] == 0, result.stderr
