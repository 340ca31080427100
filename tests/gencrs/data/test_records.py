"""Item-alignment records: a request built from one item's metadata -> a recommend turn whose target is that item."""

import torch

from gencrs.data.records import item_records
from gencrs.format import parse_turn
from tokenizer_ext import CodeBook


def test_item_records_target_the_item_they_describe(synthetic):
    items = sorted(synthetic.catalog)
    codebook = CodeBook(3, 8, {item: (n // 64, (n // 8) % 8, n % 8) for n, item in enumerate(items)})
    records = item_records(synthetic, codebook, per_item=2, seed=0)
    assert len(records) == 2 * len(items)
    for record in records:
        item_id = record["key"].split(":")[1]
        item = synthetic.catalog[item_id]
        turn = parse_turn(record["completion"][0]["content"])
        assert turn["intent"] == "recommend"
        assert codebook.items_in_text(turn["target"]) == [item_id]
        assert turn["response_titles"] == [synthetic.title(item_id)]
        request = record["prompt"][0]["content"]
        facts = [*item.genres, *item.directors, *item.actors, *item.writers]
        assert any(fact in request for fact in facts), request
    assert records == item_records(synthetic, codebook, per_item=2, seed=0)  # seeded
    assert records != item_records(synthetic, codebook, per_item=2, seed=1)


def test_the_conkd_student_gets_teacher_outputs_for_item_records(student_parts, synthetic):
    """Item turns are read by both teachers like dialogue turns: the dialogue teacher at every completion token, the
    recommendation teacher (from the request's text and linked entities) at the three code slots of the target."""
    from transformers import AutoTokenizer

    from gencrs.data.records import examples_by_key
    from gencrs.teachers.outputs import (
        TeacherSettings,
        compute_teacher_outputs,
        encode_records,
        load_online_teachers,
    )

    codebook = CodeBook.load(student_parts["semantic_ids"])
    tokenizer = AutoTokenizer.from_pretrained(student_parts["dialogue_teacher"])
    records = item_records(synthetic, codebook, per_item=1, seed=0)[:6]
    settings = TeacherSettings(student_parts["dialogue_teacher"], student_parts["rec_teacher"], top_k=8)
    teachers = load_online_teachers(settings, examples_by_key(synthetic, "train", 1, seed=0), records, tokenizer, codebook)
    keys, rows = compute_teacher_outputs(teachers, batch_size=3)
    _, labels = encode_records(tokenizer, records)
    assert keys == [r["key"] for r in records]
    for row, row_labels in zip(rows, labels):
        assert len(row["mass"]) == int((row_labels[1:] != -100).sum()) > 0
        assert row["rec"].shape == (codebook.levels, codebook.codes_per_level)
        torch.testing.assert_close(row["rec"].sum(-1), torch.ones(codebook.levels))
