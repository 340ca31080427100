"""Training of the recommendation teacher: cross-entropy over all items, model selection on the validation split,
a checkpoint after every epoch (atomic), resume from the last one."""

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gencrs import metrics as M
from gencrs.data import load_dataset
from gencrs.data.paths import resolve_data_dir
from gencrs.data.protocols import build_instances, contexts_of
from gencrs.data.splits import without_fold
from gencrs.errors import GencrsError
from gencrs.io import atomic_write_json
from gencrs.teachers.comentions import CoMentions
from gencrs.teachers.context_encoder import ContextRetriever
from gencrs.teachers.kg import build_kg
from gencrs.teachers.rec import RecTeacher, RecTeacherModel
from tokenizer_ext.embed import DEFAULT_ENCODER

log = logging.getLogger(__name__)


@dataclass
class RecTeacherConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    out: str = "runs/rec_teacher_synthetic"
    dim: int = 64
    num_bases: int = 8
    layers: int = 1
    dropout: float = 0.1
    use_text: bool = True  # add the MiniLM embedding of the last turns to the pooled entities
    encoder: str = DEFAULT_ENCODER
    cache_dir: str | None = "runs/cache/embeddings"
    max_nodes: int = 64
    min_relation_edges: int = 8000
    train_protocol: str = "unicrs"  # which (context, item) pairs of the train split to learn from
    select_protocol: str = "recommender"  # validation protocol for model selection
    select_metric: str = "recall@10"
    fusion_weights: list[float] = field(default_factory=list)  # co-mention term weights tried on valid after training
    context_encoder: str | None = None  # a trained context encoder (recipes/train_context_encoder.py OUT/encoder)
    retrieval_weights: list[float] = field(default_factory=list)  # its text-retrieval term's weights tried on valid
    approximate_train: bool = False  # also learn from the dataset's approximate train dialogues (redial_mentions)
    epochs: int = 20
    patience: int = 4
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    holdout_fold: int | None = None  # cross-fitting: learn without this fold of the train dialogues (and set folds)
    folds: int = 5


def train_rec_teacher(cfg: RecTeacherConfig) -> dict:
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    out = Path(cfg.out)
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    if cfg.holdout_fold is not None:
        dataset = without_fold(dataset, cfg.holdout_fold, cfg.folds)
    if cfg.approximate_train:
        dataset.require_approximate_train()
    kg = build_kg(dataset, resolve_data_dir(cfg.data_dir), min_relation_edges=cfg.min_relation_edges)
    log.info("graph: %d nodes, %d edges, %d relations (%s)", kg.num_nodes, kg.edge_index.shape[1], kg.num_relations, ", ".join(kg.sources))
    item_ids = list(dataset.catalog)
    item_index = {i: n for n, i in enumerate(item_ids)}
    model = RecTeacherModel(kg, item_ids, cfg.dim, cfg.num_bases, cfg.layers, 384 if cfg.use_text else 0, cfg.dropout)
    teacher = RecTeacher(model, kg, item_ids, cfg.encoder if cfg.use_text else None, cfg.cache_dir, cfg.max_nodes)
    train = build_instances(dataset, "train", cfg.train_protocol)
    if cfg.approximate_train:
        train += build_instances(replace(dataset, splits={"train": dataset.approximate_train}), "train", cfg.train_protocol)
    valid = build_instances(dataset, "valid", cfg.select_protocol)
    valid_contexts = contexts_of(valid)

    train_contexts = contexts_of(train)
    position = {c.key: n for n, c in enumerate(train_contexts)}
    nodes_all, text_all = teacher.features(train_contexts)
    rows = torch.tensor([position[i.context.key] for i in train])
    labels = torch.tensor([item_index[i.label] for i in train])
    log.info("train: %d instances over %d contexts; valid: %d instances", len(train), len(train_contexts), len(valid))

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = {"epoch": 0, "best": -1.0, "best_epoch": 0, "history": []}
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        log.info("resumed from %s after epoch %d", checkpoint, state["epoch"])
    best_state = torch.load(out / "best.pt", weights_only=True) if (out / "best.pt").exists() else None
    start = time.monotonic()
    while state["epoch"] < cfg.epochs and state["epoch"] - state["best_epoch"] < cfg.patience:
        model.train()
        generator = torch.Generator().manual_seed(cfg.seed + state["epoch"])
        order = torch.randperm(len(rows), generator=generator)
        losses = []
        for start_row in tqdm(range(0, len(order), cfg.batch_size), desc=f"rec teacher epoch {state['epoch'] + 1}", unit="batch"):
            batch = order[start_row:start_row + cfg.batch_size]
            ctx = rows[batch]
            logits = model(nodes_all[ctx], text_all[ctx] if text_all is not None else None)
            loss = torch.nn.functional.cross_entropy(logits, labels[batch])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
        model.eval()
        rankings = dict(zip((c.key for c in valid_contexts), teacher.rank(valid_contexts, 50)))
        scores = M.ranking_metrics([rankings[i.context.key] for i in valid], [i.label for i in valid])
        state["epoch"] += 1
        state["history"].append({"epoch": state["epoch"], "loss": sum(losses) / len(losses), **{k: scores[k] for k in ("recall@1", "recall@10", "recall@50")}})
        log.info("epoch %d: %s", state["epoch"], json.dumps(state["history"][-1]))
        if scores[cfg.select_metric] > state["best"]:
            state["best"], state["best_epoch"] = scores[cfg.select_metric], state["epoch"]
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
            _atomic_torch_save(best_state, out / "best.pt")
        _atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state}, checkpoint)
    model.load_state_dict(best_state)
    fusion = choose_fusion_weight(teacher, dataset, cfg, valid, valid_contexts) if cfg.fusion_weights else {}
    retrieval = choose_retrieval_weight(teacher, cfg, valid, valid_contexts) if cfg.context_encoder else {}
    teacher.save(out / "teacher", asdict(cfg))
    summary = {"best_epoch": state["best_epoch"], f"valid_{cfg.select_metric}": state["best"], "history": state["history"],
               "fusion": fusion, "retrieval": retrieval,
               "graph": {"nodes": kg.num_nodes, "edges": int(kg.edge_index.shape[1]), "relations": kg.num_relations, "sources": kg.sources},
               "seconds": round(time.monotonic() - start, 1)}
    atomic_write_json(out / "summary.json", summary)
    return summary


def choose_fusion_weight(teacher: RecTeacher, dataset, cfg: RecTeacherConfig, valid, valid_contexts) -> dict:
    """Adds the train co-mentions to the trained teacher and keeps the weight of their term (0 included: no term) with
    the best valid `select_metric`. Returns {weight: valid metrics}."""
    teacher.comentions = CoMentions.count(dataset)
    return _choose(teacher, "fusion_weight", cfg.fusion_weights, cfg.select_metric, valid, valid_contexts)


def choose_retrieval_weight(teacher: RecTeacher, cfg: RecTeacherConfig, valid, valid_contexts) -> dict:
    """Adds the context encoder's text-retrieval term (after the co-mention term's weight is chosen) and keeps its
    weight (0 included) with the best valid `select_metric`."""
    if not cfg.retrieval_weights:
        raise GencrsError("context_encoder is set but retrieval_weights is empty: list the weights to try on valid")
    teacher.attach_retriever(ContextRetriever.load(cfg.context_encoder))
    return _choose(teacher, "retrieval_weight", cfg.retrieval_weights, cfg.select_metric, valid, valid_contexts)


def _choose(teacher: RecTeacher, attribute: str, weights: list[float], metric: str, valid, valid_contexts) -> dict:
    tried = {}
    for weight in dict.fromkeys([0.0, *weights]):
        setattr(teacher, attribute, weight)
        rankings = dict(zip((c.key for c in valid_contexts), teacher.rank(valid_contexts, 50)))
        scores = M.ranking_metrics([rankings[i.context.key] for i in valid], [i.label for i in valid])
        tried[weight] = {k: scores[k] for k in ("recall@1", "recall@10", "recall@50")}
        log.info("%s %g: %s", attribute, weight, json.dumps(tried[weight]))
    setattr(teacher, attribute, max(tried, key=lambda w: tried[w][metric]))
    log.info("%s chosen on valid: %g", attribute, getattr(teacher, attribute))
    return {"chosen": getattr(teacher, attribute), "tried": {str(w): m for w, m in tried.items()}}


def _atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
