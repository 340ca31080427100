"""The turn rule's core (gencrs.decoding.turn) on the real extended tiny model's tokenizer and the synthetic catalog:
what a response may name, in spans and outside them."""

import pytest

from gencrs.decoding.turn import TurnRules
from gencrs.format import assistant_turn


@pytest.fixture(scope="module")
def rules(synthetic_generative):
    return TurnRules.from_model_dir(synthetic_generative["model"])


def walk_through(rules, text: str, items=None):
    """A fresh walk fed `text`'s tokens; returns the walk and, per token, whether the rule banned it before it came."""
    walk = rules.start(items=items)
    banned_before = []
    for token in rules.tokenizer(text, add_special_tokens=False)["input_ids"]:
        banned_before.append(bool(walk.banned()[token]))
        walk.step(token)
    return walk, banned_before


def test_free_text_cannot_complete_a_catalog_title(rules):
    item = sorted(rules.titles)[5]
    title = rules.titles[item]
    head = assistant_turn("discuss", [], "I liked ")
    walk, banned = walk_through(rules, head + title)
    n_title = len(rules.tokenizer(" " + title, add_special_tokens=False)["input_ids"])
    assert banned[-1] and not any(banned[:-1]), (title, banned)  # only the title's last token, nothing before it
    walk, banned = walk_through(rules, head + title.split(" (")[0] + " is good.")  # the title's words without the year
    assert not any(banned)
    assert n_title >= 3


def test_a_recommend_turn_ends_only_after_naming_its_targets(rules):
    a, b = sorted(rules.titles)[:2]
    codes = [rules.codebook.text(a), rules.codebook.text(b)]
    eos = rules.eos
    walk, _ = walk_through(rules, assistant_turn("recommend", codes, f"Try <|item|>{rules.titles[a]}<|/item|>"))
    assert walk.chosen == [a, b] and walk.named == {a}
    assert walk.banned()[eos]  # b is not named yet
    walk, banned = walk_through(rules, assistant_turn("recommend", codes, f"Try <|item|>{rules.titles[a]}<|/item|> or "
                                                      f"<|item|>{rules.titles[b]}<|/item|>."))
    assert not any(banned) and walk.named == {a, b} and not walk.banned()[eos]


def test_a_span_names_only_a_chosen_item(rules):
    a, other = sorted(rules.titles)[:2]
    _, banned = walk_through(rules, assistant_turn("recommend", [rules.codebook.text(a)], f"<|item|>{rules.titles[other]}"))
    assert any(banned)
    _, banned = walk_through(rules, assistant_turn("chat", [], "See <|item|>"))
    assert banned[-1]  # no item chosen: no span


def test_subsets_are_cached_by_content(rules):
    items = sorted(rules.titles)
    first = rules.constraint_for(items[:5], [items[0]])
    assert rules.constraint_for(list(reversed(items[1:5]))) is first  # the same set, another spelling
    assert rules.constraint_for(items[:6])[0] != first[0]
    with pytest.raises(ValueError, match="no catalog item"):
        rules.constraint_for(items[:1], items[:1])
