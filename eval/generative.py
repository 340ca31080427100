"""A generative model (HF directory with the extended tokenizer and codes.json) behind the recommender interface,
plus constrained turn generation and response perplexity for the evaluation harness."""

import math
from pathlib import Path

import torch

from gencrs.data.protocols import Context
from gencrs.data.records import context_item_codes
from gencrs.decoding.beam import trie_beam_search
from gencrs.decoding.generate import chat_prompts as conversation_prompts
from gencrs.decoding.generate import encode, generate_turns
from gencrs.decoding.turn import TurnRules
from gencrs.errors import GencrsError
from gencrs.format import (
    INTENT_TOKENS,
    RESPONSE_START,
    TARGET_START,
    parse_turn,
)
from gencrs.model import load_trained
from gencrs.model_dir import read_titles, reads_context_codes
from tokenizer_ext.codebook import CodeBook


def chat_prompts(tokenizer, contexts: list[Context], suffix: str = "", codebook: CodeBook | None = None,
                 context_codes: bool = False) -> list[str]:
    """Each context as the model's prompt text (chat template, generation prompt), plus `suffix`; `context_codes`: the
    model reads the context's items as codes of `codebook` (gencrs.model_dir.reads_context_codes)."""
    codes = [context_item_codes(c.items, codebook, context_codes) for c in contexts]
    return conversation_prompts(tokenizer, [c.messages for c in contexts], suffix, codes)


def parse_generated(text: str, codebook: CodeBook) -> dict:
    """A generated turn (decoded with special tokens) split into its parts, with the raw text and the target items
    (None for a code sequence that is no item)."""
    parsed = parse_turn(text)
    parsed["text"] = text
    parsed["target_items"] = codebook.items_in_text(parsed["target"])
    return parsed


def gold_response_ids(tokenizer, prompt: str, turn: str) -> tuple[list[int], list[int]]:
    """Token ids of a gold turn split for perplexity: everything through <|response|> (prompt included), then the
    response and the end-of-turn token."""
    head, _, response = turn.partition(RESPONSE_START)
    prefix_ids = tokenizer(prompt + head + RESPONSE_START, add_special_tokens=False)["input_ids"]
    return prefix_ids, tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


class GenerativeRecommender:
    name = "generative"

    def __init__(self, model, tokenizer, codebook: CodeBook, titles: dict[str, str], batch_size: int = 8,
                 max_new_tokens: int = 64, context_codes: bool = False):
        self.model, self.tokenizer, self.codebook = model.eval(), tokenizer, codebook
        self.context_codes = context_codes  # prompts open with the codes of the context's items
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.invalid_beams = 0  # beams whose code sequence is not a catalog item (0 under the constraint)
        self.rules = TurnRules.for_model(model, tokenizer, codebook, titles)  # the served rule
        self.constraint = self.rules.constraint

    @classmethod
    def load(cls, directory: str, **kwargs) -> "GenerativeRecommender":
        """A full model directory or a PEFT adapter directory (gencrs.model.load_trained)."""
        path = Path(directory)
        if not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
            raise GencrsError(f"{directory} is not a model directory (no config.json); pass a model directory or baseline:NAME")
        model, tokenizer, codebook = load_trained(path)  # a one-line error when the code table is missing
        return cls(model, tokenizer, codebook, read_titles(path), context_codes=reads_context_codes(path), **kwargs)

    def prompts(self, contexts: list[Context], suffix: str = "") -> list[str]:
        return chat_prompts(self.tokenizer, contexts, suffix, self.codebook, self.context_codes)

    def _encode(self, texts: list[str]):
        return encode(self.tokenizer, texts, self.model.device)

    @torch.no_grad()
    def rank(self, contexts: list[Context], k: int) -> list[list[str]]:
        """Beam search over the trie after the prompt `<|intent:recommend|><|target|>`: k beams of one item each."""
        suffix = INTENT_TOKENS["recommend"] + TARGET_START
        rankings = []
        for start in range(0, len(contexts), self.batch_size):
            batch = contexts[start:start + self.batch_size]
            inputs = self._encode(self.prompts(batch, suffix))
            width = k + max(len(c.exclude) for c in batch)  # excluded items must not use up the k places
            found = trie_beam_search(self.model, inputs["input_ids"], inputs["attention_mask"], self.constraint.trie, width)
            for items, context in zip(found, batch):
                self.invalid_beams += sum(item is None for item, _ in items)
                banned = set(context.exclude)
                rankings.append([item for item, _ in items if item is not None and item not in banned][:k])
        return rankings

    @torch.no_grad()
    def generate_turns(self, contexts: list[Context], constrained: bool = True) -> list[dict]:
        """Greedy decoding of whole assistant turns; each result has the decoded text and its parsed parts."""
        results = []
        for start in range(0, len(contexts), self.batch_size):
            texts = generate_turns(self.model, self.tokenizer, self.rules if constrained else None,
                                   self.prompts(contexts[start:start + self.batch_size]), self.max_new_tokens)
            results += [parse_generated(text, self.codebook) for text in texts]
        return results

    @torch.no_grad()
    def response_nll(self, contexts: list[Context], turns: list[str]) -> tuple[float, int]:
        """Summed negative log-likelihood and token count of each gold turn's response part (after <|response|>,
        through the end-of-turn token), teacher-forced."""
        total, count = 0.0, 0
        for context, turn in zip(contexts, turns):
            prefix_ids, response_ids = gold_response_ids(self.tokenizer, self.prompts([context])[0], turn)
            ids = torch.tensor([prefix_ids + response_ids], device=self.model.device)
            logits = self.model(ids).logits[0, len(prefix_ids) - 1:-1]
            total += float(torch.nn.functional.cross_entropy(logits.float(), ids[0, len(prefix_ids):], reduction="sum"))
            count += len(response_ids)
        return total, count


def perplexity(nll: float, tokens: int) -> float:
    return math.exp(nll / max(tokens, 1))
