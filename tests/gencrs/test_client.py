"""gencrs.client: request options and parsing of structured replies (the served test uses them against vLLM)."""

from gencrs.client import Catalog, options, parse_reply
from tokenizer_ext import CodeBook

CATALOG = Catalog(CodeBook(2, 4, {"m1": (0, 1), "m2": (3, 2)}), {"m1": "Alien (1979)", "m2": "Heat (1995)"})


def test_parse_reply_splits_the_turn_and_counts_sequences_that_are_no_item():
    text = ("<|intent:recommend|><|target|><a_0><b_1><a_1><b_1><a_3><b_2><|/target|><|response|>"
            "Try <|item|>Alien (1979)<|/item|> or <|item|>Heat (1995)<|/item|>.")
    reply = parse_reply(text, CATALOG)
    assert reply.intent == "recommend"
    assert reply.items == [("m1", "Alien (1979)"), ("m2", "Heat (1995)")]
    assert reply.invalid_targets == 1  # <a_1><b_1> is no item
    assert reply.response == "Try Alien (1979) or Heat (1995)."
    assert reply.response_titles == ["Alien (1979)", "Heat (1995)"]


def test_parse_reply_of_a_chat_turn_and_of_a_cut_turn():
    assert parse_reply("<|intent:chat|><|target|><|/target|><|response|>Hello!", CATALOG).items == []
    cut = parse_reply("<|intent:recommend|><|target|><a_0>", CATALOG)
    assert cut.items == [] and cut.invalid_targets == 1 and cut.response == ""


def test_options_build_the_request_body():
    assert options() == {"skip_special_tokens": False}
    assert options(structured=False) == {}
    assert options(constrain=False, items=["m1"], exclude=["m2"]) == {
        "skip_special_tokens": False,
        "vllm_xargs": {"gencrs_constrain": False, "gencrs_items": ["m1"], "gencrs_exclude": ["m2"]}}
    assert options(context_items=("m3", "m1")) == {"skip_special_tokens": False, "gencrs_context_items": ["m3", "m1"]}
