"""Trie-constrained generation with a real tiny model whose semantic-ID tokens were added (untrained)."""

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from eval.generative import GenerativeRecommender
from gencrs.data.protocols import build_instances, contexts_of
from gencrs.format import SPECIAL_TOKENS
from tokenizer_ext.extend import extend_model, extend_tokenizer


@pytest.fixture(scope="module")
def recommender(tiny_base, redial_codes, redial):
    codebook = redial_codes[0]
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    titles = {i: redial.title(i) for i in codebook.item_codes}
    extend_tokenizer(tokenizer, codebook, SPECIAL_TOKENS)
    extend_model(model, tokenizer, codebook, titles)
    return GenerativeRecommender(model, tokenizer, codebook, titles, batch_size=16, max_new_tokens=16)


@pytest.fixture(scope="module")
def test_contexts(redial):
    return contexts_of(build_instances(redial, "test", "recommender"))[:48]


def test_constrained_turns_name_only_catalog_items(recommender, test_contexts):
    turns = recommender.generate_turns(test_contexts, constrained=True)
    targets = [i for t in turns for i in t["target_items"]]
    assert all(t["intent"] in ("recommend", "discuss", "elicit", "chat") for t in turns)
    assert all(i is not None for i in targets)  # 0 invalid code sequences
    assert all(bool(t["target_items"]) == (t["intent"] == "recommend") for t in turns)
    assert all("<a_" not in t["response"] for t in turns)


def test_unconstrained_decoding_of_the_same_model_writes_invalid_items(recommender, test_contexts):
    """Without the processor, the same model after the same recommend prefix does not write a catalog item."""
    from gencrs.format import INTENT_TOKENS, TARGET_START
    inputs = recommender._encode(recommender.prompts(test_contexts, INTENT_TOKENS["recommend"] + TARGET_START))
    out = recommender.model.generate(**inputs, do_sample=False, max_new_tokens=recommender.codebook.levels,
                                     pad_token_id=recommender.tokenizer.pad_token_id)
    spans = out[:, inputs["input_ids"].shape[1]:].tolist()
    trie = recommender.constraint.trie
    invalid = sum(trie.item(int(n)) is None for n in trie.walk(spans))
    assert invalid == len(spans)


def test_beam_search_ranks_k_distinct_catalog_items(recommender, test_contexts, redial):
    rankings = recommender.rank(test_contexts[:4], k=10)
    for ranking, context in zip(rankings, test_contexts):
        assert len(ranking) == 10 == len(set(ranking))
        assert set(ranking) <= redial.catalog.keys() and not set(ranking) & set(context.exclude)


def test_response_nll_counts_response_tokens(recommender, test_contexts):
    nll, n = recommender.response_nll(test_contexts[:1], ["<|intent:chat|><|target|><|/target|><|response|>hi there"])
    assert n == len(recommender.tokenizer("hi there", add_special_tokens=False)["input_ids"]) + 1 and nll > 0
