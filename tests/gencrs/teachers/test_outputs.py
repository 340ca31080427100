import torch

from gencrs.teachers.outputs import (
    TeacherCache,
    cache_fingerprint,
    code_distributions,
    dialogue_teacher_outputs,
)

# hand-made catalog of 2 levels x 3 codes: a=(0,0) b=(0,1) c=(1,2) d=(2,0)
CODES = torch.tensor([[0, 0], [0, 1], [1, 2], [2, 0]])
PROBS = torch.tensor([0.1, 0.3, 0.4, 0.2])


def test_code_distribution_sums_items_along_the_trie():
    dist = code_distributions(PROBS, CODES, gold=[(0, 1)], codes_per_level=3)
    assert dist.shape == (2, 3)
    torch.testing.assert_close(dist[0], torch.tensor([0.4, 0.4, 0.2]))  # level 1: a+b, c, d
    torch.testing.assert_close(dist[1], torch.tensor([0.25, 0.75, 0.0]))  # level 2 under gold prefix 0: a, b
    torch.testing.assert_close(dist.sum(-1), torch.ones(2))


def test_second_item_in_a_span_excludes_the_first():
    dist = code_distributions(PROBS, CODES, gold=[(1, 2), (0, 0)], codes_per_level=3)
    # after c (0.4) is written, level 1 of the next item: a+b = 0.4, c = 0, d = 0.2 -> normalized by 0.6
    torch.testing.assert_close(dist[2], torch.tensor([0.4 / 0.6, 0.0, 0.2 / 0.6]))
    torch.testing.assert_close(dist[3], torch.tensor([0.25, 0.75, 0.0]))
    torch.testing.assert_close(dist.sum(-1), torch.ones(4))


def test_dialogue_teacher_mass_and_topk():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.1], [0.05, 0.1, 0.15, 0.7]]))
    out = dialogue_teacher_outputs(logits, torch.tensor([2, 3]), top_k=2)
    torch.testing.assert_close(out["mass"], torch.tensor([0.25, 0.85]))
    assert out["topk_ids"].tolist() == [[0, 1], [3, 2]]
    torch.testing.assert_close(out["topk_probs"], torch.tensor([[0.5, 0.25], [0.7, 0.15]]))


def test_cache_round_trip_within_float16(tmp_path):
    torch.manual_seed(0)
    rows = []
    for length, rec in ((5, 2), (3, 0), (7, 4)):
        probs = torch.rand(length, 10).softmax(-1)
        top = probs.topk(4, -1)
        rows.append({"mass": probs[:, :3].sum(-1), "topk_ids": top.indices, "topk_probs": top.values,
                     "rec": torch.rand(rec, 6).softmax(-1) if rec else torch.zeros(0, 6)})
    cache = TeacherCache(tmp_path)
    stats = cache.write(["a", "b", "c"], rows)
    assert stats["examples"] == 3 and stats["bytes_per_example"] > 0
    back = cache.read()
    for key, row in zip("abc", rows):
        for name in ("mass", "topk_probs", "rec"):
            torch.testing.assert_close(back[key][name], row[name].float(), atol=1e-3, rtol=1e-3)
        assert torch.equal(back[key]["topk_ids"], row["topk_ids"])


def test_cache_fingerprint_follows_the_records_content(tmp_path):
    """The same keys and count with another prompt (a record refitted to max_length) is another cache."""
    for name in ("dialogue", "rec"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights").write_text(name)
    record = lambda prompt: {"key": "d:1", "prompt": [{"role": "user", "content": prompt}],
                             "completion": [{"role": "assistant", "content": "<|intent:chat|>Hi"}]}
    fingerprint = lambda records: cache_fingerprint(str(tmp_path / "dialogue"), str(tmp_path / "rec"), 512, 32, records)
    assert fingerprint([record("older. newer")]) == fingerprint([record("older. newer")])
    assert fingerprint([record("older. newer")]) != fingerprint([record("newer")])
