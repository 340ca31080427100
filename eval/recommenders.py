"""The recommender interface every model implements, and the non-neural baselines.

    rank(contexts, k) -> one ranked list of item ids (best first, at most k) per context
    prepare(contexts)  (optional) -> None: work done once over all contexts before they are ranked in batches
"""

from collections import Counter
from pathlib import Path
from typing import Protocol

from gencrs.data import Dataset
from gencrs.data.protocols import Context
from gencrs.errors import GencrsError
from gencrs.metrics import rank_by_scores


class Recommender(Protocol):
    name: str

    def rank(self, contexts: list[Context], k: int) -> list[list[str]]: ...


def _top(order: list[str], exclude: list[str], k: int) -> list[str]:
    banned = set(exclude)
    return [i for i in order if i not in banned][:k]


class Popularity:
    """Items by how often they are mentioned in the train dialogues (Dataset.train_mentions; ties: catalog order)."""

    name = "popularity"

    def __init__(self, dataset: Dataset):
        if "train" not in dataset.splits:
            raise GencrsError(f"popularity baseline needs a 'train' split; {dataset.name} has {', '.join(dataset.splits)}")
        counts = Counter(i for mentions in dataset.train_mentions() for i in mentions)
        items = list(dataset.catalog)
        self.order = rank_by_scores([counts[i] for i in items], items)
        self.position = {item: n for n, item in enumerate(self.order)}

    def rank(self, contexts: list[Context], k: int) -> list[list[str]]:
        return [_top(self.order, c.exclude, k) for c in contexts]


class CoOccurrence:
    """Items co-mentioned with the context's items in train dialogues, weighted by recency of the context mention
    (gencrs.teachers.comentions); items not co-mentioned follow by popularity."""

    name = "cooccurrence"

    def __init__(self, dataset: Dataset):
        from gencrs.teachers.comentions import CoMentions

        self.popularity = Popularity(dataset)
        self.comentions = CoMentions.count(dataset)

    def rank(self, contexts: list[Context], k: int) -> list[list[str]]:
        rankings = []
        for context in contexts:
            scores = self.comentions.scores(context.items)
            first = [i for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], self.popularity.position[kv[0]]))]
            rankings.append(_top(list(dict.fromkeys(first + self.popularity.order[: k + len(context.exclude) + len(first)])), context.exclude, k))
        return rankings


BASELINES = {"popularity": Popularity, "cooccurrence": CoOccurrence}


def load_recommender(spec: str, dataset: Dataset, backend: str = "hf", **kwargs) -> Recommender:
    """'baseline:NAME', a recommendation-teacher directory (teacher.json), a context-encoder directory
    (context_encoder.json), or a model directory (HF model +
    tokenizer + codes.json) run by transformers (`backend="hf"`) or by vLLM (`backend="vllm"`, an exported directory).
    `kwargs` (batch size, generation length) apply to generative models only."""
    if spec.startswith("baseline:"):
        name = spec.split(":", 1)[1]
        if name not in BASELINES:
            raise GencrsError(f"unknown baseline '{name}' (choose from {', '.join(BASELINES)})")
        return BASELINES[name](dataset)
    # models are imported when asked for: a baseline runs without torch, and only the vllm backend imports vLLM
    if (Path(spec) / "teacher.json").exists():
        from gencrs.teachers.rec import load_rec_teacher
        return load_rec_teacher(spec)
    if (Path(spec) / "context_encoder.json").exists():
        from gencrs.teachers.context_encoder import ContextRetriever
        return ContextRetriever.load(spec)
    if backend == "vllm":
        from eval.vllm_backend import VllmGenerativeRecommender
        return VllmGenerativeRecommender.load(spec, **kwargs)
    if backend != "hf":
        raise GencrsError(f"unknown backend '{backend}' (hf or vllm)")
    from eval.generative import GenerativeRecommender
    return GenerativeRecommender.load(spec, **kwargs)
