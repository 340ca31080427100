"""Item co-mentions in train dialogues: what the co-occurrence baseline ranks by, and a term the recommendation teacher
can add to its item logits (`fusion_weight`, chosen on valid; docs/teachers.md)."""

import json
import math
from collections import Counter
from pathlib import Path

from gencrs.io import atomic_write_text


class CoMentions:
    def __init__(self, pairs: dict[str, dict[str, int]]):
        self.pairs = pairs  # item -> item -> number of train dialogues that mention both

    @classmethod
    def count(cls, dataset) -> "CoMentions":
        """From the dataset's train dialogues (Dataset.train_comentions)."""
        return cls({a: dict(c) for a, c in dataset.train_comentions().items()})

    def scores(self, context_items: list[str]) -> Counter:
        """Items co-mentioned with the context's items, weighted by recency of the context mention: the last mentioned
        item weighs 1, the one before 1/2, ..."""
        scores: Counter = Counter()
        for age, item in enumerate(reversed(context_items)):
            for other, count in self.pairs.get(item, {}).items():
                scores[other] += count / (age + 1)
        return scores

    def log_scores(self, context_items: list[str], index: dict[str, int]) -> list[tuple[int, float]]:
        """(item position, log(1 + score)) of the co-mentioned items: the teacher's fusion term."""
        return [(index[i], math.log1p(s)) for i, s in self.scores(context_items).items() if i in index]

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.pairs))

    @classmethod
    def load(cls, path: str | Path) -> "CoMentions":
        return cls(json.loads(Path(path).read_text()))
