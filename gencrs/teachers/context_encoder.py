"""A sentence encoder fine-tuned on (dialogue context, target item text) pairs, and the recommender it makes: items
ranked by the cosine of their text with the context.

Training is sentence-transformers' contrastive recipe: MultipleNegativesRankingLoss, every other item of the batch a
negative, batches without repeated items (NO_DUPLICATES). The context is read as the rec teacher reads it (its last
turns, role-prefixed: gencrs.data.protocols.context_text); an item is its catalog text (title, year, metadata:
Item.text). The encoder directory (OUT/encoder) holds the weights, `context_encoder.json` (the item ids and texts) and
`item_vectors.npy` (their embeddings), so that `python -m eval run model=OUT/encoder` ranks without the dataset.
"""

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gencrs import metrics as M
from gencrs.data import load_dataset
from gencrs.data.protocols import build_instances, context_text, contexts_of
from gencrs.data.splits import without_fold
from gencrs.errors import GencrsError
from gencrs.io import atomic_dir, atomic_write_json, last_complete_checkpoint
from tokenizer_ext.embed import DEFAULT_ENCODER, encoder_path

log = logging.getLogger(__name__)
META = "context_encoder.json"
ITEM_VECTORS = "item_vectors.npy"  # the item texts' embeddings, in META's item order


@dataclass
class ContextEncoderConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    out: str = "runs/context_encoder_synthetic"
    encoder: str = DEFAULT_ENCODER  # the weights training starts from
    train_protocol: str = "unicrs"  # which (context, item) pairs of the train split to learn from
    select_protocol: str = "recommender"  # the validation protocol of summary.json
    context_turns: int = 3  # the last turns a context is read from, as the rec teacher reads it
    max_seq_length: int = 256
    epochs: float = 1.0
    batch_size: int = 64
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    save_steps: int = 200
    seed: int = 0
    holdout_fold: int | None = None  # cross-fitting: learn without this fold of the train dialogues (and set folds)
    folds: int = 5


def training_pairs(dataset, split: str, protocol: str, context_turns: int) -> dict[str, list[str]]:
    """{"anchor": context texts, "positive": their target items' texts}, one pair per instance of `protocol`."""
    instances = build_instances(dataset, split, protocol)
    return {"anchor": [context_text(i.context, context_turns) for i in instances],
            "positive": [dataset.catalog[i.label].text for i in instances]}


def train_context_encoder(cfg: ContextEncoderConfig) -> dict:
    from datasets import Dataset as HFDataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    out = Path(cfg.out)
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    if cfg.holdout_fold is not None:
        dataset = without_fold(dataset, cfg.holdout_fold, cfg.folds)
    pairs = training_pairs(dataset, "train", cfg.train_protocol, cfg.context_turns)
    if not pairs["anchor"]:
        raise GencrsError(f"context encoder: {dataset.name} train has no {cfg.train_protocol} instances to learn from")
    log.info("context encoder: %d (context, item) pairs from %s train", len(pairs["anchor"]), dataset.name)
    model = SentenceTransformer(encoder_path(cfg.encoder), device=None if torch.cuda.is_available() else "cpu")
    model.max_seq_length = cfg.max_seq_length
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"), num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr, warmup_steps=cfg.warmup_ratio, batch_sampler=BatchSamplers.NO_DUPLICATES,  # float: a ratio
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=1, logging_steps=20, seed=cfg.seed,
        report_to=[], use_cpu=not torch.cuda.is_available())
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=HFDataset.from_dict(pairs),
                                         loss=MultipleNegativesRankingLoss(model))
    start = time.monotonic()
    last = last_complete_checkpoint(out / "checkpoints")
    if last:
        log.info("resuming from %s", last)
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    seconds = time.monotonic() - start
    with atomic_dir(out / "encoder") as tmp:
        model.save(str(tmp))
        (tmp / META).write_text(json.dumps({"config": asdict(cfg), "context_turns": cfg.context_turns,
                                            "items": {i: item.text for i, item in dataset.catalog.items()}}))
        ContextRetriever.load(tmp).save_item_vectors()
    valid = build_instances(dataset, "valid", cfg.select_protocol) if "valid" in dataset.splits else []
    scores = {}
    if valid:
        retriever = ContextRetriever.load(out / "encoder")
        rankings = dict(zip((c.key for c in contexts_of(valid)), retriever.rank(contexts_of(valid), 50)))
        metrics = M.ranking_metrics([rankings[i.context.key] for i in valid], [i.label for i in valid])
        scores = {f"valid_{k}": metrics[k] for k in ("recall@1", "recall@10", "recall@50")}
    summary = {"pairs": len(pairs["anchor"]), "seconds": round(seconds, 1), **scores}
    atomic_write_json(out / "summary.json", summary)
    return summary


class ContextRetriever:
    """The recommender of a trained context encoder: cosine of the context's embedding with each item text's."""

    name = "context_encoder"

    def __init__(self, directory: str | Path, item_ids: list[str], item_texts: list[str], context_turns: int = 3,
                 batch_size: int = 128):
        from sentence_transformers import SentenceTransformer

        self.directory = Path(directory)
        self.model = SentenceTransformer(str(directory), device=None if torch.cuda.is_available() else "cpu")
        self.item_ids, self.context_turns, self.batch_size = item_ids, context_turns, batch_size
        saved = self.directory / ITEM_VECTORS
        if saved.exists() and len(vectors := np.load(saved)) == len(item_ids):
            self.item_vectors = torch.from_numpy(vectors)
        else:  # an encoder saved before item vectors were: encode them (minutes on CPU for a large catalog)
            self.item_vectors = self.encode(item_texts)

    def save_item_vectors(self) -> None:
        """Keep the item texts' embeddings in the encoder directory, so that loading it does not encode them again."""
        tmp = self.directory / f".{ITEM_VECTORS}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, self.item_vectors.numpy())
        tmp.replace(self.directory / ITEM_VECTORS)

    @classmethod
    def load(cls, directory: str | Path) -> "ContextRetriever":
        meta = json.loads((Path(directory) / META).read_text())
        return cls(directory, list(meta["items"]), list(meta["items"].values()), meta["context_turns"])

    def encode(self, texts: list[str]) -> torch.Tensor:
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return torch.from_numpy(np.asarray(vectors, dtype=np.float32))

    def similarities(self, contexts) -> torch.Tensor:
        """Cosine of every context with every item text: (len(contexts), n_items), in `item_ids` order."""
        if not contexts:
            return torch.zeros(0, len(self.item_ids))
        return self.encode([context_text(c, self.context_turns) for c in contexts]) @ self.item_vectors.T

    def rank(self, contexts, k: int) -> list[list[str]]:
        return top_items(self.similarities(contexts), contexts, self.item_ids, k)


def top_items(scores: torch.Tensor, contexts, item_ids: list[str], k: int) -> list[list[str]]:
    """Each context's k best-scored items (`scores`: (len(contexts), len(item_ids))), its excluded items left out."""
    rankings = []
    for row, context in zip(scores, contexts):
        banned = set(context.exclude)
        order = row.topk(min(len(item_ids), k + len(banned))).indices.tolist()
        rankings.append([item_ids[n] for n in order if item_ids[n] not in banned][:k])
    return rankings
