"""transformers wrapper of the turn constraint: a LogitsProcessor for greedy, sampling and beam search."""

import torch
from transformers import LogitsProcessor

from gencrs.decoding.constraint import Phase, TurnConstraint, TurnState


class TurnConstraintLogitsProcessor(LogitsProcessor):
    """Sets the logits of forbidden tokens to -inf. Tokens after `prompt_length` are the generated turn.

    States are advanced incrementally: each row's parent is the previous step's row with the same generated prefix
    (beam search reorders rows), found by hashing the prefixes, so one step costs O(batch) plus a few tensor ops.
    """

    def __init__(self, constraint: TurnConstraint, prompt_length: int, start_phase: Phase = Phase.INTENT,
                 recommend: bool = False):
        self.constraint, self.prompt_length = constraint, prompt_length
        self.start_phase, self.recommend = start_phase, recommend
        self.state: TurnState | None = None
        self.rows: dict[tuple, int] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length:]
        if generated.shape[1] == 0 or self.state is None:
            self.state = self.constraint.start(len(input_ids), self.start_phase, self.recommend)
            if generated.shape[1] > 0:  # started mid-way: replay what was generated
                for t in range(generated.shape[1]):
                    self.state = self.constraint.advance(self.state, generated[:, t])
        else:
            parents = torch.tensor([self.rows[tuple(row[:-1])] for row in generated.tolist()])
            self.state = self.constraint.advance(self.state.select(parents), generated[:, -1])
        self.rows = {tuple(row): i for i, row in enumerate(generated.tolist())}
        mask = self.constraint.mask(self.state).to(scores.device)
        vocab = min(mask.shape[1], scores.shape[1])
        out = torch.full_like(scores, float("-inf"))
        out[:, :vocab] = torch.where(mask[:, :vocab], scores[:, :vocab], out[:, :vocab])
        return out
