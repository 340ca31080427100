"""Cached teacher outputs equal the online ones within float16 tolerance, and the rec teacher's target distribution
leaves out the context's items (real tiny dialogue model, real R-GCN teacher, synthetic data; untrained weights are
enough for both)."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gencrs.data import build_examples
from gencrs.data.protocols import Context
from gencrs.data.records import sft_records
from gencrs.model import ensure_extended
from gencrs.teachers.kg import build_kg
from gencrs.teachers.outputs import (
    OnlineTeachers,
    TeacherCache,
    compute_teacher_outputs,
    online_rec_outputs,
)
from gencrs.teachers.rec import RecTeacher, RecTeacherModel
from tokenizer_ext import CodeBook


@pytest.fixture(scope="module")
def teachers(tiny_base, synthetic):
    items = list(synthetic.catalog)
    codebook = CodeBook(3, 8, {item: (n // 64, (n // 8) % 8, n % 8) for n, item in enumerate(items)})
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    ensure_extended(model, tokenizer, codebook, {i: synthetic.title(i) for i in items})
    torch.manual_seed(0)
    kg = build_kg(synthetic)
    rec = RecTeacher(RecTeacherModel(kg, items), kg, items, encoder=None)
    examples = {e.key: e for e in build_examples(synthetic, "train")}
    records = sft_records(synthetic, "train", codebook, tokenizer, 256)[:24]
    return model, tokenizer, rec, codebook, examples, records


def test_cached_equals_online(teachers, tmp_path):
    model, tokenizer, rec, codebook, examples, records = teachers
    teachers = OnlineTeachers(records, examples, model, rec, tokenizer, codebook, top_k=16)
    keys, online = compute_teacher_outputs(teachers, batch_size=8)
    assert any(len(r["rec"]) for r in online) and any(not len(r["rec"]) for r in online)
    stats = TeacherCache(tmp_path).write(keys, online)
    cached = TeacherCache(tmp_path).read()
    for key, row in zip(keys, online):
        assert len(cached[key]["mass"]) == len(row["mass"]) > 0
        torch.testing.assert_close(cached[key]["mass"], row["mass"], atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(cached[key]["topk_probs"], row["topk_probs"], atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(cached[key]["rec"], row["rec"], atol=1e-3, rtol=1e-3)
        assert torch.equal(cached[key]["topk_ids"], row["topk_ids"])
        if len(row["rec"]):
            torch.testing.assert_close(row["rec"].sum(-1), torch.ones(len(row["rec"])))
    assert stats["bytes_per_example"] < 16 * 1024


def test_rec_distribution_leaves_out_the_excluded_items(teachers):
    _, _, rec, codebook, examples, _ = teachers
    example = next(e for e in examples.values() if e.targets and e.context_items)
    gold = example.targets[0]
    first = codebook.item_codes[gold][0]
    other_first = [i for i in rec.item_ids if codebook.item_codes[i][0] != first]
    keep_all = Context("k", example.context, example.context_items, [])
    leave_out = Context("k", example.context, example.context_items, other_first)
    spread, focused = (online_rec_outputs(rec, [c], [[gold]], codebook)[0] for c in (keep_all, leave_out))
    assert spread[0, first] < 0.9  # the untrained teacher spreads over the first-level codes
    assert focused[0, first] == pytest.approx(1.0)  # every item left with mass starts with the gold code
    assert torch.allclose(spread[1:], focused[1:])  # deeper levels condition on the gold prefix anyway


def test_excluding_context_items_changes_only_examples_with_context_items(teachers):
    model, tokenizer, rec, codebook, examples, records = teachers
    rows = {flag: compute_teacher_outputs(OnlineTeachers(records, examples, model, rec, tokenizer, codebook, top_k=16,
                                                         exclude_context=flag), batch_size=8)[1]
            for flag in (True, False)}
    changed = 0
    for record, with_exclusion, without in zip(records, rows[True], rows[False]):
        example = examples[record["key"]]
        torch.testing.assert_close(with_exclusion["mass"], without["mass"])
        if example.context_items and example.targets:
            changed += not torch.allclose(with_exclusion["rec"], without["rec"])
        else:
            assert torch.equal(with_exclusion["rec"], without["rec"])
    assert changed > 0


def test_a_killed_build_resumes_from_its_shards(teachers, tmp_path):
    model, tokenizer, rec, codebook, examples, records = teachers
    online = OnlineTeachers(records, examples, model, rec, tokenizer, codebook, top_k=16)
    keys, uninterrupted = compute_teacher_outputs(online, batch_size=8)

    class Killed(Exception):
        pass

    computed = []

    def rec_rows(indices):  # the build is killed in its third shard, after the first two were written
        computed.extend(indices)
        if indices[0] >= 16:
            raise Killed
        return OnlineTeachers.rec_rows(online, indices)

    online.rec_rows = rec_rows
    with pytest.raises(Killed):
        compute_teacher_outputs(online, batch_size=8, partial=tmp_path, fingerprint="f", shard_batches=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0000000", "0000008"]
    computed.clear()
    online.rec_rows = lambda indices: computed.extend(indices) or OnlineTeachers.rec_rows(online, indices)
    resumed_keys, resumed = compute_teacher_outputs(online, batch_size=8, partial=tmp_path, fingerprint="f",
                                                    shard_batches=1)
    assert computed == list(range(16, 24))  # the two written shards were read, not computed again
    assert resumed_keys == keys
    for before, after in zip(uninterrupted, resumed):
        torch.testing.assert_close(after["mass"], before["mass"], atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(after["rec"], before["rec"], atol=1e-3, rtol=1e-3)
        assert torch.equal(after["topk_ids"], before["topk_ids"])
    computed.clear()  # another fingerprint (other teachers or settings) reads nothing back
    compute_teacher_outputs(online, batch_size=8, partial=tmp_path, fingerprint="g", shard_batches=1)
    assert computed == list(range(24))
