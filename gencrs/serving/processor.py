"""vLLM (V1 interface) logits processor: the turn constraint of gencrs.decoding.constraint for served requests.

Loaded by vLLM with `--logits-processors gencrs.serving.processor:TurnLogitsProcessor` (`gencrs serve` does this).
Per request it keeps the turn state and walks it with the tokens the request has produced, then masks the logits:

- the turn is `<|intent:X|><|target|>CODES<|/target|><|response|>text`, and inside the target span only code
  sequences of catalog items are possible (the trie of gencrs.decoding);
- in the response, an item span `<|item|>...<|/item|>` can only hold the title of an item chosen in the target span,
  token for token (when the span chose none, `<|item|>` is not allowed): every item the answer names is a catalog item
  and one it recommends.

Per-request options come from the request body's `vllm_xargs` (SamplingParams.extra_args), checked in
`validate_params` (a bad value is HTTP 400):
    gencrs_constrain: bool          false turns the constraint off for this request (default true; 0/1 too)
    gencrs_items: [item id, ...]    recommend only among these items
    gencrs_exclude: [item id, ...]  never recommend these (e.g. items the user already mentioned)
The model directory (an export: codes.json, catalog.json beside the weights) is vLLM's `--model`.
"""

import functools
import itertools
import json
import os
from pathlib import Path

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

from gencrs.decoding.constraint import Phase, TurnConstraint
from gencrs.format import ITEM_END, ITEM_START
from tokenizer_ext.codebook import CodeBook

OPTIONS = {"gencrs_constrain": bool, "gencrs_items": list, "gencrs_exclude": list}
MODEL_ENV = "GENCRS_SERVE_MODEL"  # set by `gencrs serve` so that validate_params can check item ids


@functools.lru_cache(maxsize=4)
def catalog_of(model_dir: str) -> dict[str, str]:
    return json.loads((Path(model_dir) / "catalog.json").read_text(encoding="utf-8"))


def check_options(extra: dict | None, catalog: dict[str, str] | None) -> dict:
    """The request's gencrs options, validated; raises ValueError naming the bad field."""
    extra = extra or {}
    for key, value in extra.items():
        if key.startswith("gencrs_") and key not in OPTIONS:
            raise ValueError(f"unknown vllm_xargs option '{key}' (known: {', '.join(OPTIONS)})")
    options = {k: extra[k] for k in OPTIONS if k in extra}
    if options.get("gencrs_constrain") in (0, 1) and not isinstance(options["gencrs_constrain"], float):
        # the OpenAI server's vllm_xargs schema has no bool: a JSON true/false arrives as 1/0
        options["gencrs_constrain"] = bool(options["gencrs_constrain"])
    for key, kind in OPTIONS.items():
        if key in options and not isinstance(options[key], kind):
            raise ValueError(f"vllm_xargs.{key} must be a {kind.__name__}, got {type(options[key]).__name__}")
    for key in ("gencrs_items", "gencrs_exclude"):
        for item in options.get(key, []):
            if not isinstance(item, str):
                raise ValueError(f"vllm_xargs.{key} holds item ids (strings), got {item!r}")
            if catalog is not None and item not in catalog:
                raise ValueError(f"vllm_xargs.{key}: '{item}' is not a catalog item id")
    if catalog is not None:
        allowed = set(options.get("gencrs_items", catalog)) - set(options.get("gencrs_exclude", []))
        if options.get("gencrs_constrain", True) and not allowed:
            raise ValueError("vllm_xargs leaves no catalog item to recommend (gencrs_items minus gencrs_exclude is empty)")
    return options


class RequestState:
    """One request: its turn state, the items its target span chose, and the walk through an item span's title.

    Most tokens of a turn are ordinary response text: there the state only watches for the end of the turn and for
    item spans, in plain Python, and the mask is a shared cached tensor (the processor runs once per decoding step
    for every request, so its cost is paid on every token)."""

    def __init__(self, processor: "TurnLogitsProcessor", prompt_ids: list[int] | None, output_ids: list[int],
                 options: dict):
        self.p, self.output_ids, self.consumed = processor, output_ids, 0
        self.serial, self.constraint = processor.constraint_for(options)
        self.state = self.constraint.start(1)
        self.phase = Phase.INTENT
        self.chosen: list[str] = []
        self.title: list[int] | None = None  # tokens of the item span so far, None outside a span
        for token in processor.open_turn(prompt_ids or []):  # a prompt that prefills the start of the turn
            self.step(token)

    def catch_up(self) -> None:
        while self.consumed < len(self.output_ids):
            token = self.output_ids[self.consumed]
            if token < 0:  # a placeholder for a token not sampled yet (async scheduling)
                return
            self.consumed += 1
            self.step(int(token))

    def step(self, token: int) -> None:
        if self.phase == Phase.RESPONSE:
            if self.title is not None:  # inside an item span the title walk, not the turn state, decides
                self.title = None if token == self.p.item_end else [*self.title, token]
            elif token == self.p.item_start:
                self.title = []
            if token != self.p.eos:
                return
        if self.phase == Phase.DONE:
            return
        self.state, item = self.p.transition(self.constraint, self.state, self.key(), token)
        if item is not None:
            self.chosen.append(item)
        self.phase = Phase(int(self.state.phase[0]))

    def key(self) -> tuple:
        return (self.serial, int(self.phase), int(self.state.node[0]), int(self.state.items[0]),
                bool(self.state.recommend[0]))

    def banned(self) -> torch.Tensor:
        """The tokens this request may not write next (True = banned); cached tensors, never modified."""
        if self.phase == Phase.RESPONSE and self.title is not None:
            return self.p.cached(("title", tuple(self.chosen), tuple(self.title)), self._title_banned)
        if self.phase == Phase.RESPONSE:
            return self.p.cached(("response", self.serial, bool(self.chosen)), self._turn_banned)
        return self.p.cached(self.key(), self._turn_banned)

    def _turn_banned(self) -> torch.Tensor:
        mask = self.constraint.mask(self.state)[0]
        if self.phase == Phase.RESPONSE:
            mask[self.p.item_end] = False  # only the title walk closes a span
            if not self.chosen:
                mask[self.p.item_start] = False
        return ~mask

    def _title_banned(self) -> torch.Tensor:
        mask = torch.zeros(self.constraint.vocab_size, dtype=torch.bool)
        for item in self.chosen:
            tokens = self.p.title_tokens(item)
            if tokens[: len(self.title)] == self.title:
                mask[tokens[len(self.title)] if len(tokens) > len(self.title) else self.p.item_end] = True
        return ~mask


class TurnLogitsProcessor(LogitsProcessor):
    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        from transformers import AutoTokenizer
        self.model_dir = vllm_config.model_config.model
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.codebook = CodeBook.load(self.model_dir)
        self.catalog = catalog_of(self.model_dir)
        self.vocab_size = vllm_config.model_config.get_vocab_size()
        self.device = device
        self.constraint = TurnConstraint.from_tokenizer(self.tokenizer, self.codebook, vocab_size=self.vocab_size)
        self.item_start, self.item_end = self.tokenizer.convert_tokens_to_ids([ITEM_START, ITEM_END])
        self.intent_ids = set(self.constraint.intent_ids.tolist())
        self.eos = self.tokenizer.eos_token_id
        self.requests: dict[int, RequestState] = {}
        self._subsets: dict[tuple, tuple[int, TurnConstraint]] = {}
        self._serials = itertools.count(1)  # 0 is the whole catalog; cache keys name constraints by serial
        self._banned: dict[tuple, torch.Tensor] = {}
        self._transitions: dict[tuple, tuple] = {}

    @classmethod
    def validate_params(cls, sampling_params) -> None:
        model_dir = os.environ.get(MODEL_ENV)
        check_options(sampling_params.extra_args, catalog_of(model_dir) if model_dir else None)

    def is_argmax_invariant(self) -> bool:
        return False

    def constraint_for(self, options: dict) -> tuple[int, TurnConstraint]:
        """The request's constraint and its serial number (for the mask and transition caches)."""
        items = set(options.get("gencrs_items", self.catalog)) - set(options.get("gencrs_exclude", []))
        if len(items) == len(self.catalog):
            return 0, self.constraint
        key = tuple(sorted(items))
        if key not in self._subsets:
            sub = CodeBook(self.codebook.levels, self.codebook.codes_per_level,
                           {i: self.codebook.item_codes[i] for i in key})
            # one subset kept: requests rarely share a long one
            self._subsets = {key: (next(self._serials),
                                   TurnConstraint.from_tokenizer(self.tokenizer, sub, vocab_size=self.vocab_size))}
        return self._subsets[key]

    def open_turn(self, prompt_ids: list[int]) -> list[int]:
        """The part of the turn a prompt already holds: from its last intent token on, unless that turn has ended."""
        starts = [n for n, t in enumerate(prompt_ids) if t in self.intent_ids]
        if not starts or self.eos in prompt_ids[starts[-1]:]:
            return []
        return prompt_ids[starts[-1]:]

    def cached(self, key: tuple, build) -> torch.Tensor:
        """Banned-token masks by turn state: a turn visits few distinct states, and many requests share them."""
        banned = self._banned.get(key)
        if banned is None:
            if len(self._banned) > 50_000:
                self._banned.clear()
            banned = self._banned[key] = build().to(self.device)
        return banned

    def transition(self, constraint: TurnConstraint, state, key: tuple, token: int):
        """The turn state after `token` and the item it completes (None if none), cached like the masks."""
        found = self._transitions.get((key, token))
        if found is None:
            item = None
            if key[1] == Phase.TARGET:
                stepped = constraint.trie.step(state.node, torch.tensor([token]))
                if bool(constraint.trie.is_leaf(stepped)[0]):
                    item = constraint.trie.item(int(stepped[0]))
            if len(self._transitions) > 200_000:
                self._transitions.clear()
            found = self._transitions[(key, token)] = (constraint.advance(state, torch.tensor([token])), item)
        return found

    @functools.lru_cache(maxsize=4096)
    def title_tokens(self, item: str) -> list[int]:
        return self.tokenizer(self.catalog[item], add_special_tokens=False)["input_ids"]

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update:
            for index in batch_update.removed:
                self.requests.pop(index, None)
            for index, params, prompt_ids, output_ids in batch_update.added:
                try:
                    options = check_options(params.extra_args, self.catalog)
                except ValueError:  # validate_params rejects these first; never serve a bad request unconstrained
                    options = {}
                if options.get("gencrs_constrain", True):
                    self.requests[index] = RequestState(self, prompt_ids, output_ids, options)
                else:
                    self.requests.pop(index, None)
            for a, b, direction in batch_update.moved:
                state_a, state_b = self.requests.pop(a, None), self.requests.pop(b, None)
                if state_a is not None:
                    self.requests[b] = state_a
                if state_b is not None and direction == MoveDirectionality.SWAP:
                    self.requests[a] = state_b
        for request in self.requests.values():
            request.catch_up()

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.requests:
            return logits
        rows = sorted(self.requests)
        width = min(logits.shape[1], self.constraint.vocab_size)
        banned = torch.stack([self.requests[index].banned()[:width] for index in rows])
        index = torch.tensor(rows, device=logits.device)
        logits[index, :width] = logits[index, :width].masked_fill(banned, float("-inf"))
        if logits.shape[1] > width:  # padded vocabulary rows are no tokens
            logits[index, width:] = float("-inf")
        return logits
