"""`python -m eval prefixes` on two real baseline runs over the synthetic data, read against hand-made code tables whose
answer is known: one where every item shares the first code, one where the first code names the item."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eval.prefixes import PrefixesConfig, prefix_report
from eval.run import EvalConfig, evaluate
from gencrs.errors import GencrsError
from tokenizer_ext import CodeBook


@pytest.fixture(scope="module")
def baseline_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefixes")
    runs = {}
    for model in ("popularity", "cooccurrence"):
        out = root / model
        metrics = evaluate(EvalConfig(model=f"baseline:{model}", dataset="synthetic", split="valid",
                                      protocol="recommender", out=str(out)))
        runs[model] = (str(out), metrics)
    return runs


def write_table(directory, item_codes, codes_per_level):
    directory.mkdir()
    (directory / "codes.json").write_text(json.dumps(CodeBook(3, codes_per_level, item_codes).to_json()))
    return str(directory)


def test_the_last_level_is_recall_and_a_shared_first_code_is_always_reached(synthetic, baseline_runs, tmp_path):
    items = sorted(synthetic.catalog)
    # every item under first code 0; the other two levels number the items (300 < 20 x 20)
    table = write_table(tmp_path / "shared", {item: (0, n // 20, n % 20) for n, item in enumerate(items)}, 20)
    runs = [run for run, _ in baseline_runs.values()]
    out = prefix_report(PrefixesConfig(runs=runs, semantic_ids=table, k=10))
    for run, metrics in baseline_runs.values():
        profile = out["runs"][run]
        assert profile["hits"] == round(metrics["recall@10"] * metrics["instances"])
        assert profile["reached"][-1] == pytest.approx(metrics["recall@10"], abs=1e-4)
        assert profile["reached"][0] == 1.0 and profile["first_codes"] == 1.0
        assert profile["reached"] == sorted(profile["reached"], reverse=True)
        assert profile["within_prefix"][0] == pytest.approx(profile["reached"][1] / profile["reached"][0], abs=1e-3)
    for run in runs:  # every context of the synthetic valid split has an instance under this protocol
        rows = [json.loads(line) for line in (Path(run) / "predictions.jsonl").read_text().splitlines()]
        assert out["runs"][run]["distinct_items"] == len({item for row in rows for item in row["ranking"][:10]})
    assert out["runs"][runs[0]]["distinct_items"] < out["runs"][runs[1]]["distinct_items"]  # popularity: the same few


def test_a_first_code_that_names_the_item_is_reached_only_by_a_hit(synthetic, baseline_runs, tmp_path):
    items = sorted(synthetic.catalog)
    table = write_table(tmp_path / "unique", {item: (n, 0, 0) for n, item in enumerate(items)}, len(items))
    run, metrics = baseline_runs["cooccurrence"]
    profile = prefix_report(PrefixesConfig(runs=[run], semantic_ids=table, k=10))["runs"][run]
    assert profile["reached"] == [pytest.approx(metrics["recall@10"], abs=1e-4)] * 3
    assert profile["first_codes"] == 10.0


def test_bad_input_names_what_is_wrong(synthetic, baseline_runs, tmp_path):
    items = sorted(synthetic.catalog)
    partial = write_table(tmp_path / "partial", {item: (0, 0, n) for n, item in enumerate(items[:10])}, 300)
    run, _ = baseline_runs["popularity"]
    with pytest.raises(GencrsError, match="has no codes for"):
        prefix_report(PrefixesConfig(runs=[run], semantic_ids=partial, k=50))
    with pytest.raises(GencrsError, match="at least one"):
        prefix_report(PrefixesConfig(runs=[], semantic_ids=partial))
    other = tmp_path / "unicrs"
    evaluate(EvalConfig(model="baseline:popularity", dataset="synthetic", split="valid", protocol="unicrs",
                        out=str(other)))
    with pytest.raises(GencrsError, match="ranked different instances"):
        prefix_report(PrefixesConfig(runs=[run, str(other)], semantic_ids=partial))
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    predictions = unfinished / "predictions.jsonl"
    predictions.write_text("".join(predictions.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(GencrsError, match="contexts have no prediction"):
        prefix_report(PrefixesConfig(runs=[str(unfinished)], semantic_ids=partial))


def test_the_command_prints_one_json_object(synthetic, baseline_runs, tmp_path):
    items = sorted(synthetic.catalog)
    table = write_table(tmp_path / "cli", {item: (0, n // 20, n % 20) for n, item in enumerate(items)}, 20)
    run, _ = baseline_runs["popularity"]
    command = [sys.executable, "-m", "eval", "prefixes", f"runs=[{run}]", f"semantic_ids={table}", "k=10"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"][run]["reached"][0] == 1.0
