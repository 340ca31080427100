"""Whole assistant turns from a transformers model under the served turn rule (gencrs.decoding.turn): greedy, batched,
left-padded. The evaluation harness's hf backend and `gencrs chat` generate through it."""

import torch

from gencrs.decoding.hf import TurnConstraintLogitsProcessor
from gencrs.decoding.turn import TurnRules
from gencrs.format import prompt_messages


def chat_prompts(tokenizer, conversations: list[list[dict]], suffix: str = "",
                 item_codes: list[list[str]] | None = None) -> list[str]:
    """Each conversation (chat messages so far) as the model's prompt text, with the generation prompt, plus `suffix`;
    `item_codes`: per conversation, the codes of its items for a `context_codes` model (gencrs.format.prompt_messages)."""
    item_codes = item_codes or [()] * len(conversations)
    return [tokenizer.apply_chat_template(prompt_messages(messages, codes), tokenize=False, add_generation_prompt=True)
            + suffix for messages, codes in zip(conversations, item_codes, strict=True)]


def encode(tokenizer, texts: list[str], device) -> dict:
    """Left-padded ids and attention mask on `device` (generation continues every row from its last token)."""
    tokenizer.padding_side = "left"
    return tokenizer(texts, add_special_tokens=False, return_tensors="pt", padding=True).to(device)


@torch.no_grad()
def generate_turns(model, tokenizer, rules: TurnRules | None, prompts: list[str], max_new_tokens: int) -> list[str]:
    """The turn each prompt continues with, decoded with its special tokens and cut at end-of-sequence; under the
    turn rule unless `rules` is None."""
    inputs = encode(tokenizer, prompts, model.device)
    processors = [TurnConstraintLogitsProcessor(rules, inputs["input_ids"].shape[1])] if rules is not None else []
    out = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens, logits_processor=processors,
                         pad_token_id=tokenizer.pad_token_id)
    texts = []
    for row in out[:, inputs["input_ids"].shape[1]:].tolist():
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id)]
        texts.append(tokenizer.decode(row, skip_special_tokens=False))
    return texts
