"""The constraint on an assistant turn `<|intent:X|><|target|>CODES<|/target|><|response|>text<eos>`, batched.

The core keeps, per sequence, a phase, a trie node and the number of items completed, as tensors, and turns them into a
(batch, vocab) mask of allowed next tokens with a few tensor ops. It knows nothing of transformers or vLLM: both
wrap it (gencrs.decoding.hf, the serving processor).

Rules:
- the turn starts with exactly one intent token, then `<|target|>`;
- inside the target span only tokens that continue a catalog item's code sequence are allowed; after a complete item
  the span may start another item (up to `max_items`) or close; with intent `recommend` the span holds at least one
  item, with any other intent it is empty (the data's definition: only `recommend` turns have targets);
- then `<|response|>` and free text that never contains code tokens, the tokenizer's other special tokens (bos, chat
  turn markers) or format tokens other than the item markers, until end of sequence.
"""

from dataclasses import dataclass
from enum import IntEnum

import torch

from gencrs.format import (
    INTENT_TOKENS,
    ITEM_END,
    ITEM_START,
    RESPONSE_START,
    SPECIAL_TOKENS,
    TARGET_END,
    TARGET_START,
)
from tokenizer_ext.codebook import CodeBook
from tokenizer_ext.trie import INVALID, Trie


class Phase(IntEnum):
    INTENT = 0
    OPEN_TARGET = 1
    TARGET = 2
    OPEN_RESPONSE = 3
    RESPONSE = 4
    DONE = 5


@dataclass
class TurnState:
    phase: torch.Tensor  # (B,) long
    node: torch.Tensor  # (B,) long, trie node inside the target span (root between items)
    items: torch.Tensor  # (B,) long, items completed in the target span
    recommend: torch.Tensor  # (B,) bool, intent is recommend

    def select(self, rows: torch.Tensor) -> "TurnState":
        return TurnState(self.phase[rows], self.node[rows], self.items[rows], self.recommend[rows])


class TurnConstraint:
    def __init__(self, trie: Trie, token_ids: dict[str, int], code_token_ids: list[int], eos_token_id: int,
                 vocab_size: int, max_items: int = 3, banned_in_response: list[int] = ()):
        self.trie, self.vocab_size, self.max_items, self.eos = trie, vocab_size, max_items, eos_token_id
        self.intent_ids = torch.tensor([token_ids[t] for t in INTENT_TOKENS.values()])
        self.recommend_id = token_ids[INTENT_TOKENS["recommend"]]
        self.target_open, self.target_close = token_ids[TARGET_START], token_ids[TARGET_END]
        self.response_open = token_ids[RESPONSE_START]
        masks = torch.zeros(len(Phase), vocab_size, dtype=torch.bool)
        masks[Phase.INTENT, self.intent_ids] = True
        masks[Phase.OPEN_TARGET, self.target_open] = True
        masks[Phase.OPEN_RESPONSE, self.response_open] = True
        masks[Phase.RESPONSE] = True
        banned = [token_ids[t] for t in SPECIAL_TOKENS if t not in (ITEM_START, ITEM_END)] + list(code_token_ids)
        banned += [t for t in banned_in_response if t != eos_token_id]
        masks[Phase.RESPONSE, banned] = False
        masks[Phase.DONE, eos_token_id] = True  # a finished row only pads with eos
        self.phase_masks = masks  # phase TARGET is built from the trie

    @classmethod
    def from_tokenizer(cls, tokenizer, codebook: CodeBook, vocab_size: int | None = None, max_items: int = 3) -> "TurnConstraint":
        token_ids = dict(zip(SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))))
        code_ids = tokenizer.convert_tokens_to_ids(codebook.all_tokens())
        markers = {token_ids[ITEM_START], token_ids[ITEM_END]}
        chat_specials = [i for i in tokenizer.all_special_ids if i not in markers]  # bos, turn markers, pad...
        return cls(Trie.from_codebook(codebook, tokenizer), token_ids, code_ids, tokenizer.eos_token_id,
                   vocab_size or len(tokenizer), max_items, chat_specials)

    def start(self, batch_size: int, phase: Phase = Phase.INTENT, recommend: bool = False) -> TurnState:
        """Fresh states; `phase=Phase.TARGET, recommend=True` starts inside a target span (prompt ends with it)."""
        return TurnState(torch.full((batch_size,), int(phase)), torch.zeros(batch_size, dtype=torch.long),
                         torch.zeros(batch_size, dtype=torch.long), torch.full((batch_size,), recommend))

    @staticmethod
    def state_of(phase: int, node: int, items: int, recommend: bool) -> TurnState:
        """A batch of one state, from plain values (the per-request walks of gencrs.decoding.turn keep those)."""
        return TurnState(torch.tensor([phase]), torch.tensor([node]), torch.tensor([items]), torch.tensor([recommend]))

    def advance(self, state: TurnState, tokens: torch.Tensor) -> TurnState:
        """The states after each row emits `tokens[row]`. A token the mask forbids sends the row to DONE."""
        tokens = tokens.long().to(state.phase.device)
        phase, node, items, recommend = state.phase.clone(), state.node.clone(), state.items.clone(), state.recommend.clone()
        allowed = self.mask(state).gather(1, tokens.clamp(0, self.vocab_size - 1)[:, None])[:, 0] & (tokens < self.vocab_size)

        at = phase == Phase.INTENT
        recommend = torch.where(at, tokens == self.recommend_id, recommend)
        nxt = torch.where(at, Phase.OPEN_TARGET, phase)
        nxt = torch.where(phase == Phase.OPEN_TARGET, Phase.TARGET, nxt)
        in_target = phase == Phase.TARGET
        closing = in_target & (tokens == self.target_close)
        nxt = torch.where(closing, Phase.OPEN_RESPONSE, nxt)
        stepped = self.trie.step(node, tokens)
        leaf = self.trie.is_leaf(stepped)
        moving = in_target & ~closing
        items = torch.where(moving & leaf, items + 1, items)
        node = torch.where(moving, torch.where(leaf, torch.zeros_like(stepped), stepped), node)
        nxt = torch.where(phase == Phase.OPEN_RESPONSE, Phase.RESPONSE, nxt)
        nxt = torch.where((phase == Phase.RESPONSE) & (tokens == self.eos), Phase.DONE, nxt)
        nxt = torch.where(allowed, nxt, torch.full_like(nxt, Phase.DONE))
        return TurnState(nxt, node, items, recommend)

    def mask(self, state: TurnState) -> torch.Tensor:
        mask = self.phase_masks[state.phase]
        in_target = state.phase == Phase.TARGET
        if in_target.any():
            at_root = state.node == 0
            may_start = state.recommend & (state.items < self.max_items)
            nodes = torch.where(in_target & (~at_root | may_start), state.node, torch.full_like(state.node, INVALID))
            rows, cols = self.trie.allowed(nodes)
            keep = cols < self.vocab_size
            mask[rows[keep], cols[keep]] = True
            may_close = in_target & at_root & (~state.recommend | (state.items >= 1))
            mask[may_close, self.target_close] = True
        return mask
