"""The vLLM logits processor on a real tiny model, driven step by step through vLLM's own BatchUpdate and
SamplingParams types. Only the engine's config object is a stand-in (a namespace with the two fields the processor
reads); the served end-to-end test needs a vLLM server."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate

from gencrs.format import parse_turn
from gencrs.serving.processor import TurnLogitsProcessor, check_options
from tokenizer_ext import CodeBook


@pytest.fixture(scope="module")
def served(student_parts):
    directory = student_parts["dialogue_teacher"]  # a full model directory with codes.json and catalog.json
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    config = SimpleNamespace(model_config=SimpleNamespace(model=directory, get_vocab_size=lambda: len(tokenizer)))
    return model, tokenizer, CodeBook.load(directory), config


def generate(served, prompts: list[str], extra_args: list[dict | None], steps: int = 40, seed: int = 0):
    """Sampling (temperature 1.5, so an untrained model would wander off the format) under the processor."""
    model, tokenizer, _, config = served
    processor = TurnLogitsProcessor(config, torch.device("cpu"), False)
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    outputs = [[] for _ in prompts]
    processor.update_state(BatchUpdate(batch_size=len(prompts), removed=[], moved=[], added=[
        (n, SamplingParams(extra_args=extra), ids, out) for n, (ids, out, extra) in enumerate(zip(prompt_ids, outputs, extra_args))]))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        logits = torch.stack([model(torch.tensor([ids + out])).logits[0, -1] for ids, out in zip(prompt_ids, outputs)])
        logits = processor.apply(logits.clone())
        tokens = torch.multinomial((logits / 1.5).softmax(-1), 1, generator=generator)[:, 0]
        for out, token in zip(outputs, tokens.tolist()):
            out.append(token)
        processor.update_state(None)
    return [tokenizer.decode(out, skip_special_tokens=False) for out in outputs]


def prompt(tokenizer, text):
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)


def test_constrained_turns_name_only_catalog_items_and_their_titles(served):
    model, tokenizer, codebook, config = served
    catalog = json.loads((Path(config.model_config.model) / "catalog.json").read_text())
    texts = generate(served, [prompt(tokenizer, "I love horror movies.")] * 6, [None] * 6)
    for text in texts:
        turn = parse_turn(text.split(tokenizer.eos_token)[0])
        assert turn["intent"], text
        items = codebook.items_in_text(turn["target"])
        assert all(item is not None for item in items), text  # every code sequence is a catalog item
        assert set(turn["response_titles"]) <= {catalog[i] for i in items}, text  # item spans name chosen targets


def test_item_markers_outside_a_span_and_spans_without_targets_are_banned(served):
    model, tokenizer, codebook, config = served
    processor = TurnLogitsProcessor(config, torch.device("cpu"), False)
    item = next(iter(codebook.item_codes))
    start, end = tokenizer.convert_tokens_to_ids(["<|item|>", "<|/item|>"])
    heads = {"chosen": "<|intent:recommend|><|target|>" + codebook.text(item) + "<|/target|><|response|>Try ",
             "none": "<|intent:chat|><|target|><|/target|><|response|>Hi "}
    outputs = {name: tokenizer(head, add_special_tokens=False)["input_ids"] for name, head in heads.items()}
    processor.update_state(BatchUpdate(batch_size=2, removed=[], moved=[], added=[
        (n, SamplingParams(), [], outputs[name]) for n, name in enumerate(heads)]))
    logits = processor.apply(torch.zeros(2, config.model_config.get_vocab_size()))
    assert logits[0, end] == float("-inf") and logits[0, start] == 0  # a span may open (a target was chosen)
    assert logits[1, end] == float("-inf") and logits[1, start] == float("-inf")  # no target: no span at all


def test_constraint_off_lets_the_untrained_model_write_anything(served):
    tokenizer = served[1]
    texts = generate(served, [prompt(tokenizer, "I love horror movies.")] * 6, [{"gencrs_constrain": False}] * 6)
    assert not all(parse_turn(t.split(tokenizer.eos_token)[0])["intent"] for t in texts)  # the format breaks


def test_item_subset_and_exclusion(served):
    tokenizer, codebook = served[1], served[2]
    items = sorted(codebook.item_codes)
    args = {"gencrs_items": items[:3], "gencrs_exclude": [items[0]]}
    for text in generate(served, [prompt(tokenizer, "Any movie?") + "<|intent:recommend|>"] * 4, [args] * 4, steps=12):
        chosen = codebook.items_in_text(parse_turn("<|intent:recommend|>" + text)["target"])
        assert chosen and set(chosen) <= {items[1], items[2]}, text


@pytest.mark.parametrize("extra, message", [
    ({"gencrs_constrain": "yes"}, "must be a bool"),
    ({"gencrs_items": ["nope"]}, "not a catalog item"),
    ({"gencrs_colour": 1}, "unknown vllm_xargs option"),
    ({"gencrs_items": ["m001"], "gencrs_exclude": ["m001"]}, "no catalog item"),
])
def test_bad_options_are_rejected(extra, message):
    with pytest.raises(ValueError, match=message):
        check_options(extra, {"m001": "A", "m002": "B"})
