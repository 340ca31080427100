"""transformers adapter of the turn rule (gencrs.decoding.turn): a LogitsProcessor for greedy, sampling and beam search."""

import torch
from transformers import LogitsProcessor

from gencrs.decoding.turn import TurnRules, TurnWalk


class TurnConstraintLogitsProcessor(LogitsProcessor):
    """Sets the logits of forbidden tokens to -inf. Tokens after `prompt_length` are the generated turn; a prompt that
    already holds the start of the turn (e.g. ends with `<|intent:recommend|><|target|>`) is continued.

    Each row keeps a walk, stepped with the row's newest token. Beam search reorders rows: then a row's parent is the
    previous step's row with the same prefix, found by hashing the rows (only on steps that reordered).
    """

    def __init__(self, rules: TurnRules, prompt_length: int, items=None, exclude=()):
        self.rules, self.prompt_length = rules, prompt_length
        self.items, self.exclude = items, exclude
        self.walks: list[TurnWalk] | None = None
        self.previous: torch.Tensor | None = None  # the last call's input_ids

    def _start(self, input_ids: torch.LongTensor) -> None:
        self.walks = [self.rules.start(row[:self.prompt_length], self.items, self.exclude) for row in input_ids.tolist()]
        for walk, row in zip(self.walks, input_ids[:, self.prompt_length:].tolist()):  # started mid-way: replay
            for token in row:
                walk.step(token)

    def _reorder(self, input_ids: torch.LongTensor) -> None:
        """Beam search moved rows: each row continues the previous row holding its prefix (one may continue in several)."""
        previous = {tuple(row): n for n, row in enumerate(self.previous.tolist())}
        seen, walks = set(), []
        for row in input_ids[:, :-1].tolist():
            parent = previous[tuple(row)]
            walks.append(self.walks[parent].fork() if parent in seen else self.walks[parent])
            seen.add(parent)
        self.walks = walks

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.walks is None or input_ids.shape[1] <= self.prompt_length:
            self._start(input_ids)
        else:
            if not (self.previous.shape[0] == input_ids.shape[0] and torch.equal(self.previous, input_ids[:, :-1])):
                self._reorder(input_ids)
            for walk, token in zip(self.walks, input_ids[:, -1].tolist()):
                walk.step(token)
        self.previous = input_ids
        banned = self.rules.banned(self.walks).to(scores.device)
        if banned.shape[1] == scores.shape[1]:
            return scores.masked_fill(banned, float("-inf"))
        width = min(banned.shape[1], scores.shape[1])
        out = torch.full_like(scores, float("-inf"))  # columns past the rule's vocabulary are no tokens
        out[:, :width] = scores[:, :width].masked_fill(banned[:, :width], float("-inf"))
        return out
