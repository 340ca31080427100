import pytest

from gencrs.data import load_dataset
from gencrs.data.mentions import mark_mentions
from gencrs.format import mention, mentioned_ids


@pytest.fixture(scope="module")
def unicrs(shared_data):
    return load_dataset("inspired_unicrs", data_dir=shared_data)


def test_unicrs_processed_split_sizes(unicrs):
    assert {s: len(d) for s, d in unicrs.splits.items()} == {"train": 801, "valid": 99, "test": 99}
    assert sum(len(d.turns) for d in unicrs.splits["train"]) <= 16982  # merged again only where roles repeat


def test_tsv_dev_and_test_sizes(shared_data):
    tsv = load_dataset("inspired_tsv", data_dir=shared_data)
    assert len(tsv.splits["valid"]) == 99 and len(tsv.splits["test"]) == 99
    # the official dev file has one dialogue with a broken movie_dict: kept, counted, reported with file and line
    assert any("warning(s)" in n and "dev.tsv:2896" in n for n in tsv.notes)


def test_auto_format_prefers_the_complete_train(shared_data):
    assert load_dataset("inspired", data_dir=shared_data).name == "inspired_unicrs"


def test_every_marked_mention_is_a_turn_item_and_a_catalog_item(unicrs):
    for dialogue in unicrs.splits["test"]:
        for turn in dialogue.turns:
            assert set(mentioned_ids(turn.text)) <= set(turn.items) <= unicrs.catalog.keys()


def test_mark_mentions_whole_words_longest_first_and_unplaced():
    text, unplaced = mark_mentions("I loved Die Hard 2 and die hard. Not Up.", [("a", "Die Hard"), ("b", "Die Hard 2"), ("c", "Up"), ("d", "Zed")])
    assert text == f"I loved {mention('b')} and {mention('a')}. Not {mention('c')}."
    assert unplaced == ["d"]
    # a surface inside a word is not a mention
    assert mark_mentions("Upstairs", [("c", "Up")]) == ("Upstairs", ["c"])


def test_empty_movie_name_is_dropped_and_reported(unicrs):
    assert "" not in unicrs.catalog
    assert any("train_data_dbpedia.jsonl:430: empty movie name" in n for n in unicrs.notes)
