"""Cached teacher outputs equal the online ones within float16 tolerance (real tiny dialogue model, real R-GCN
teacher, synthetic data; untrained weights are enough for agreement)."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gencrs.data import build_examples
from gencrs.kg import build_kg
from gencrs.teachers.outputs import TeacherCache, compute_teacher_outputs
from gencrs.teachers.rec import RecTeacher, RecTeacherModel
from gencrs.training.model import ensure_extended
from gencrs.training.records import sft_records
from tokenizer_ext import CodeBook


def test_cached_equals_online(tiny_base, synthetic, tmp_path):
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
    keys, online = compute_teacher_outputs(model, tokenizer, rec, codebook, examples, records, batch_size=8, top_k=16)
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
