import statistics

import pytest

from eval.run import EvalConfig, evaluate
from eval.seeds import summarize_seeds
from gencrs.errors import GencrsError


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    made = {}
    for model, protocol in (("popularity", "recommender"), ("cooccurrence", "recommender"), ("popularity", "unicrs")):
        out = root / f"{model}_{protocol}"
        made[model, protocol] = (str(out), evaluate(EvalConfig(model=f"baseline:{model}", dataset="redial",
                                                               protocol=protocol, limit=200, data_dir=str(shared_data),
                                                               out=str(out))))
    return made


def test_mean_and_sample_std_of_each_metric_over_the_runs(runs):
    (a, metrics_a), (b, metrics_b) = runs["popularity", "recommender"], runs["cooccurrence", "recommender"]
    assert metrics_a["recall@10"] != metrics_b["recall@10"]  # else the std below could not tell mean from a single run
    result = summarize_seeds([a, b])
    for name in ("recall@1", "recall@10", "recall@50", "success_rate", "reward_per_dialogue_length"):
        values = [metrics_a[name], metrics_b[name]]
        assert result["metrics"][name]["mean"] == pytest.approx(statistics.fmean(values))
        assert result["metrics"][name]["std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert "instances" not in result["metrics"] and "seconds" not in result["metrics"]
    first = result["metrics"]["recall@1"]
    assert result["row"].startswith(f"| {first['mean']:.4f} ± {first['std']:.4f} |")


def test_runs_over_different_instances_or_one_run_are_refused(runs, tmp_path):
    recommender, unicrs = runs["popularity", "recommender"][0], runs["popularity", "unicrs"][0]
    with pytest.raises(GencrsError, match="different instances: protocol"):
        summarize_seeds([recommender, unicrs])
    with pytest.raises(GencrsError, match="at least 2"):
        summarize_seeds([recommender])
    with pytest.raises(GencrsError, match="metrics.json: not found"):
        (tmp_path / "config.json").write_text("{}")
        summarize_seeds([recommender, str(tmp_path)])
