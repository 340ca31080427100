"""Item-alignment records: a request built from one item's metadata -> a recommend turn whose target is that item."""

import pytest

from gencrs.errors import GencrsError
from gencrs.format import parse_turn
from gencrs.training.records import item_records
from gencrs.training.student import ConKDConfig, check_config
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


def test_the_conkd_student_refuses_item_records(tmp_path):
    with pytest.raises(GencrsError, match="item_records are for plain SFT"):
        check_config(ConKDConfig(out=str(tmp_path), item_records=4, gamma=0.5))
    check_config(ConKDConfig(out=str(tmp_path), item_records=4, gamma=0.0))
