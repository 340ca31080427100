"""Item-alignment records: a request built from one item's metadata -> a recommend turn whose target is that item."""

from dataclasses import replace

import pytest
import torch

from gencrs.data.examples import dialogue_examples
from gencrs.data.records import approximate_records, examples_by_key, item_records
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


def test_approximate_records_learn_the_target_codes_of_the_recommendation_turns(synthetic, smollm2_base):
    """The approximate dialogues' turns with a target item become records whose loss counts at the codes only, each
    targeting its turn's new items; their other turns give none; the teachers' examples (examples_by_key with
    `approximate`) hold each record's turn by its key. Synthetic valid dialogues stand in for the approximate ones:
    what makes a dialogue approximate (its rebuilt turn order) does not change how its turns are read."""
    from transformers import AutoTokenizer

    items = sorted(synthetic.catalog)
    codebook = CodeBook(3, 8, {item: (n // 64, (n // 8) % 8, n % 8) for n, item in enumerate(items)})
    approximate = [replace(d, id=f"precessed:{n}") for n, d in enumerate(synthetic.splits["valid"][:20])]
    dataset = replace(synthetic, approximate_train=approximate)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_base)
    records = approximate_records(dataset, codebook, tokenizer, max_length=512)
    turns = [e for d in approximate for e in dialogue_examples(d, dataset.title)]
    recommending = [e for e in turns if e.targets]
    assert 0 < len(records) == len(recommending) < len(turns)
    examples = examples_by_key(dataset, "train", approximate=True)
    for record, example in zip(records, recommending):
        assert record["key"] == example.key and record["codes_only"] is True
        assert examples[record["key"]] == example
        turn = parse_turn(record["completion"][0]["content"])
        assert turn["intent"] == "recommend"
        assert codebook.items_in_text(turn["target"]) == example.targets
    assert not {r["key"] for r in records} & set(examples_by_key(dataset, "train"))  # only when asked


def test_approximate_train_on_a_dataset_without_such_dialogues_is_an_error(tmp_path):
    from gencrs.errors import GencrsError
    from gencrs.training.sft import SFTRunConfig, prepare_run

    with pytest.raises(GencrsError, match="approximate_train: dataset synthetic has no approximate train"):
        prepare_run(SFTRunConfig(out=str(tmp_path / "run"), approximate_train=True))


def test_context_codes_open_each_prompt_with_the_context_items_codes_and_survive_dropped_messages(
        synthetic, synthetic_generative):
    """With `context_codes` every record's prompt opens with one system message: the code tokens of the items its
    context mentioned, in order of first mention, kept when the oldest messages are dropped to fit max_length; the
    rest of the prompt is the record without them. The extended tokenizer reads each code as its one token."""
    from transformers import AutoTokenizer

    from gencrs.data.records import sft_records

    codebook = CodeBook.load(synthetic_generative["semantic_ids"])
    tokenizer = AutoTokenizer.from_pretrained(synthetic_generative["model"])
    examples = {e.key: e for e in dialogue_examples_of(synthetic)}
    plain = sft_records(synthetic, "valid", codebook, tokenizer, max_length=160, limit=60)
    coded = sft_records(synthetic, "valid", codebook, tokenizer, max_length=160, limit=60, context_codes=True)
    assert [r["key"] for r in coded] == [r["key"] for r in plain]
    code_token_ids = set(tokenizer.convert_tokens_to_ids(codebook.all_tokens()))
    with_items = dropped = 0
    for record, without in zip(coded, plain):
        example = examples[record["key"]]
        assert without["prompt"][0]["role"] != "system"
        if not example.context_items:
            assert record["prompt"] == without["prompt"]
            continue
        with_items += 1
        system, *messages = record["prompt"]
        assert system == {"role": "system", "content": " ".join(codebook.text(i) for i in example.context_items)}
        assert messages == without["prompt"][len(without["prompt"]) - len(messages):]  # the newest messages kept
        dropped += len(messages) < len(example.context)
        ids = tokenizer(system["content"], add_special_tokens=False)["input_ids"]
        code_ids = [t for t in ids if t in code_token_ids]
        assert len(code_ids) == codebook.levels * len(example.context_items)
    assert with_items > 10 and dropped > 0  # both cases were met


def dialogue_examples_of(dataset):
    return [e for d in dataset.splits["valid"] for e in dialogue_examples(d, dataset.title)]
