import random

import pytest
import torch
from transformers import AutoTokenizer

from gencrs.format import SPECIAL_TOKENS
from tokenizer_ext import CodeBook, Trie
from tokenizer_ext.extend import extend_tokenizer


def hand_trie():
    return Trie({"x": [5, 7, 9], "y": [5, 7, 10], "z": [5, 8, 9], "w": [6, 7, 9]})


def test_allowed_tokens_follow_the_catalog():
    trie = hand_trie()
    assert trie.allowed_tokens([]) == [5, 6]
    assert trie.allowed_tokens([5]) == [7, 8]
    assert trie.allowed_tokens([5, 7]) == [9, 10]
    assert trie.allowed_tokens([6, 8]) == []  # not a catalog prefix
    assert trie.allowed_tokens([5, 7, 9]) == []  # complete item: nothing may follow
    assert [5, 7, 10] in trie and [5, 8, 10] not in trie and [5, 7] not in trie


def test_batched_step_mask_and_leaves():
    trie = hand_trie()
    nodes = trie.walk([[], [5], [5, 7], [6, 8], [5, 8, 9]])
    mask = trie.mask(nodes, vocab_size=12)
    assert mask.tolist()[1] == [i in (7, 8) for i in range(12)]
    assert not mask[3].any() and not mask[4].any()
    assert trie.is_leaf(nodes).tolist() == [False, False, False, False, True]
    assert trie.item(int(nodes[4])) == "z"
    stepped = trie.step(nodes, torch.tensor([6, 6, 10, 1, 3]))
    assert stepped[0] >= 0 and stepped[1] == -1 and trie.item(int(stepped[2])) == "y" and stepped[3] == -1 and stepped[4] == -1
    assert trie.step(torch.tensor([0]), torch.tensor([10_000]))[0] == -1  # token beyond every trie token


def test_sequences_must_be_unique_and_of_one_length():
    with pytest.raises(ValueError, match="same token sequence"):
        Trie({"a": [1, 2], "b": [1, 2]})
    with pytest.raises(ValueError, match="one length"):
        Trie({"a": [1, 2], "b": [1]})


@pytest.fixture(scope="module")
def extended(redial_codes, tiny_base):
    codebook = redial_codes[0]
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    extend_tokenizer(tokenizer, codebook, SPECIAL_TOKENS)
    return codebook, tokenizer, Trie.from_codebook(codebook, tokenizer)


def test_round_trip_every_redial_item(extended):
    codebook, tokenizer, trie = extended
    for item in codebook.item_codes:
        text = codebook.text(item)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == codebook.levels  # each code is one token
        assert codebook.item_of_tokens(tokenizer.convert_ids_to_tokens(ids)) == item
        assert trie.item(int(trie.walk([ids])[0])) == item
    assert len(trie.leaf_item) == 6924


def test_trie_accepts_exactly_the_catalog(extended):
    codebook, tokenizer, trie = extended
    token_id = dict(zip(codebook.all_tokens(), tokenizer.convert_tokens_to_ids(codebook.all_tokens())))
    level_ids = [[token_id[f"<{chr(97 + l)}_{c}>"] for c in range(codebook.codes_per_level)] for l in range(codebook.levels)]
    valid = {tuple(token_id[t] for t in codebook.tokens(i)) for i in codebook.item_codes}
    rng = random.Random(0)
    samples = [tuple(rng.choice(level_ids[l]) for l in range(codebook.levels)) for _ in range(20_000)]
    invalid = [s for s in samples if s not in valid]
    assert len(invalid) > 19_000
    leaves = trie.is_leaf(trie.walk([list(s) for s in invalid]))
    assert not leaves.any()
    # and the allowed set after every catalog prefix equals the brute-force set of next tokens
    for depth in range(codebook.levels):
        expected = {}
        for seq in valid:
            expected.setdefault(seq[:depth], set()).add(seq[depth])
        prefixes = rng.sample(sorted(expected), min(200, len(expected)))
        for prefix in prefixes:
            assert set(trie.allowed_tokens(list(prefix))) == expected[prefix]


def test_items_in_text_marks_invalid_sequences():
    codebook = CodeBook(2, 4, {"a": (0, 1), "b": (2, 3)})
    assert codebook.items_in_text("<a_0><b_1><a_2><b_3>") == ["a", "b"]
    assert codebook.items_in_text("<a_0><b_3>") == [None]
    assert codebook.items_in_text("<b_0><a_1>") == [None]
