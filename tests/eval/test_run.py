import json
import subprocess
import sys

import pytest

from eval.run import EvalConfig, JsonlResume, evaluate, run_ranking
from gencrs.data import load_dataset
from gencrs.data.protocols import Context, contexts_of, select_instances


def test_popularity_numbers_are_stable_and_cooccurrence_beats_them(shared_data, tmp_path):
    results = [evaluate(EvalConfig(model="baseline:popularity", dataset="redial", protocol="unicrs", data_dir=str(shared_data),
                                   out=str(tmp_path / f"pop{n}"))) for n in range(2)]
    drop = ("seconds",)
    assert {k: v for k, v in results[0].items() if k not in drop} == {k: v for k, v in results[1].items() if k not in drop}
    assert 0.005 < results[0]["recall@1"] < results[0]["recall@10"] < results[0]["recall@50"] < 0.5
    co = evaluate(EvalConfig(model="baseline:cooccurrence", dataset="redial", protocol="unicrs", data_dir=str(shared_data),
                             out=str(tmp_path / "co")))
    assert co["recall@10"] > results[0]["recall@10"]
    out = tmp_path / "pop0"
    assert (out / "recall_at_k.png").stat().st_size > 1000 and "| recall@1 |" in (out / "report.md").read_text()
    assert "| repeated |" in (out / "report.md").read_text()
    assert len((out / "predictions.jsonl").read_text().splitlines()) == results[0]["contexts"]


def test_first_ranked_items_in_context_and_how_varied(shared_data, tmp_path):
    result = {protocol: evaluate(EvalConfig(model="baseline:popularity", dataset="redial", protocol=protocol, limit=500,
                                            data_dir=str(shared_data), out=str(tmp_path / protocol)))
              for protocol in ("unicrs", "recommender")}
    most_popular = json.loads((tmp_path / "unicrs" / "predictions.jsonl").read_text().splitlines()[0])["ranking"][0]
    contexts = contexts_of(select_instances(load_dataset("redial", data_dir=str(shared_data)), "test", "unicrs", 500))
    share = sum(most_popular in c.items for c in contexts) / len(contexts)
    assert 0 < result["unicrs"]["first_ranked_in_context"] == pytest.approx(share)
    assert result["recommender"]["first_ranked_in_context"] == 0  # the protocol removes the context's items
    assert result["unicrs"]["distinct_first_ranked"] == 1 and result["unicrs"]["most_frequent_first_ranked_share"] == 1
    assert result["recommender"]["distinct_first_ranked"] > 1  # the most popular movie is excluded where mentioned


class Counting:
    name = "counting"

    def __init__(self):
        self.seen = []

    def rank(self, contexts, k):
        self.seen.extend(c.key for c in contexts)
        return [["a"] for _ in contexts]


def test_ranking_resumes_after_a_kill(tmp_path):
    contexts = [Context(f"d:{n}", [], [], []) for n in range(10)]
    path = tmp_path / "predictions.jsonl"
    first = Counting()
    run_ranking(first, contexts[:4], JsonlResume(path), k=5, batch_size=2)
    with open(path, "a") as f:
        f.write('{"key": "d:4", "rank')  # the process was killed mid-line
    second = Counting()
    store = JsonlResume(path)
    run_ranking(second, contexts, store, k=5, batch_size=3)
    assert second.seen == [f"d:{n}" for n in range(4, 10)]
    assert [json.loads(l)["key"] for l in path.read_text().splitlines()] == [f"d:{n}" for n in range(10)]


def test_ranking_batches_contexts_of_similar_length(tmp_path):
    sizes = [1, 50, 2, 49, 3, 48, 4, 47]
    contexts = [Context(f"d:{n}", [{"role": "user", "content": "x" * size}], [], []) for n, size in enumerate(sizes)]
    counting = Counting()
    store = JsonlResume(tmp_path / "predictions.jsonl")
    run_ranking(counting, contexts, store, k=5, batch_size=2)
    assert [sizes[int(key[2:])] for key in counting.seen] == sorted(sizes, reverse=True)
    assert set(store.rows) == {c.key for c in contexts}  # every context ranked once, keyed


class Preparing(Counting):
    def __init__(self):
        super().__init__()
        self.prepared = []

    def prepare(self, contexts):
        assert not self.seen, "prepare comes before the first batch is ranked"
        self.prepared.append([c.key for c in contexts])


def test_ranking_prepares_the_contexts_still_to_rank_once(tmp_path):
    contexts = [Context(f"d:{n}", [], [], []) for n in range(7)]
    store = JsonlResume(tmp_path / "predictions.jsonl")
    run_ranking(Counting(), contexts[:3], store, k=5, batch_size=2)
    preparing = Preparing()
    run_ranking(preparing, contexts, store, k=5, batch_size=2)  # resumed: 4 left, ranked in 2 batches
    assert len(preparing.prepared) == 1 and sorted(preparing.prepared[0]) == [f"d:{n}" for n in range(3, 7)]
    finished = Preparing()
    run_ranking(finished, contexts, store, k=5, batch_size=2)  # nothing left: nothing to prepare (no empty call)
    assert finished.prepared == [] and finished.seen == []


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "eval", "run", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["model=MODEL_WITHOUT_CODES", "dataset=synthetic"], "no code table"),
    (["model=/no/such/dir", "dataset=synthetic"], "not a model directory"),
    (["model=baseline:nope", "dataset=synthetic"], "unknown baseline"),
    (["model=baseline:popularity", "dataset=synthetic", "split=nope"], "has no split 'nope'"),
])
def test_bad_input_is_one_line_and_nonzero(tiny_base, tmp_path, args, message):
    args = [a.replace("MODEL_WITHOUT_CODES", str(tiny_base)) for a in args] + [f"out={tmp_path / 'o'}"]
    result = cli(*args)
    assert result.returncode == 1 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("option, message", [("dataset=movielens", "unknown dataset 'movielens'"),
                                             ("protocol=kgsf", "unknown protocol 'kgsf'")])
def test_unknown_dataset_or_protocol(option, message):
    result = cli("model=baseline:popularity", "dataset=synthetic", option)
    assert result.returncode == 1 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_success_rate_and_reward_per_dialogue_length_from_the_seekers_answers(tmp_path):
    """Popularity ranks 'a' first everywhere (gcrs: nothing excluded). d1 liked it (reward 1 on its one ranked turn,
    4 turns), d2 had seen it (0.5 on each of two ranked turns, 6 turns), d3 neither; d4 has no answers and is left out."""
    def turns(*texts):
        return [{"role": ("user", "assistant")[n % 2], "text": t} for n, t in enumerate(texts)]
    train = [{"id": f"t{n}", "turns": turns("Hi", "[[item:a]]")} for n in range(3)] + [{"id": "t9", "turns": turns("Hi", "[[item:b]]")}]
    test = [
        {"id": "d1", "turns": turns("Hi", "[[item:b]]", "ok", "bye"), "feedback": {"a": {"seen": True, "liked": True}}},
        {"id": "d2", "turns": turns("Hi", "[[item:b]]", "no", "[[item:c]]", "ok", "bye"), "feedback": {"a": {"seen": True, "liked": False}}},
        {"id": "d3", "turns": turns("Hi", "[[item:c]]"), "feedback": {"a": {"seen": False, "liked": None}}},
        {"id": "d4", "turns": turns("Hi", "[[item:c]]")},
    ]
    root = tmp_path / "data"
    root.mkdir()
    for name, records in (("catalog", [{"id": i, "title": i.upper()} for i in "abc"]), ("train", train), ("valid", []),
                          ("test", test)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = evaluate(EvalConfig(model="baseline:popularity", dataset=str(root), split="test", protocol="gcrs",
                                 out=str(tmp_path / "out")))
    assert result["user_centric_dialogues"] == 3
    assert result["success_rate"] == pytest.approx(2 / 3)
    assert result["reward_per_dialogue_length"] == pytest.approx((1 / 4 + 1.0 / 6 + 0) / 3)
    assert "Success Rate 0.6667" in (tmp_path / "out" / "report.md").read_text()
    synthetic = evaluate(EvalConfig(model="baseline:popularity", dataset="synthetic", split="valid", protocol="gcrs",
                                    limit=5, out=str(tmp_path / "synthetic")))
    assert "success_rate" not in synthetic  # no answers of the seeker: not measured
