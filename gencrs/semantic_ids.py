"""A dataset's catalog -> semantic IDs (tokenizer_ext) -> the semantic-ID directory, written atomically.

    python recipes/build_semantic_ids.py dataset=redial out=runs/semantic_ids_redial codes_per_level=256
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import svds

from gencrs.data import load_dataset
from gencrs.errors import GencrsError
from gencrs.io import atomic_dir
from tokenizer_ext.build import (
    ItemText,
    QuantizerConfig,
    SemanticIds,
    changed_item_texts,
)
from tokenizer_ext.build import build_semantic_ids as quantize_catalog


@dataclass
class SemanticIdConfig(QuantizerConfig):
    codes_per_level: int = 16  # the synthetic catalog's; ReDial uses 256
    dataset: str = "synthetic"
    data_dir: str | None = None
    out: str = "runs/semantic_ids_synthetic"
    # > 0: each item's text embedding (unit length) is joined by its co-mention vector (unit length) times this weight,
    # so that the first level also groups items that train dialogues mention together (docs/semantic_ids.md)
    collaborative_weight: float = 0.0
    collaborative_dim: int = 32


def item_texts(dataset) -> list[ItemText]:
    """What each catalog item brings to its semantic ID (tokenizer_ext.build.ItemText)."""
    return [ItemText(item.id, item.text, tuple(item.genres)) for item in dataset.catalog.values()]


def collaborative_vectors(dataset, dim: int, seed: int = 0) -> np.ndarray:
    """One row per catalog item (catalog order): its place among the items that train dialogues mention with it, the
    item's row of a rank-`dim` SVD of the log(1 + co-mention count) matrix, scaled to unit length. Zero for an item no
    train dialogue mentions beside another: its code then follows its text alone."""
    index = {item_id: n for n, item_id in enumerate(dataset.catalog)}
    pairs = [(index[a], index[b], count) for a, others in dataset.train_comentions().items()
             for b, count in others.items() if a in index and b in index]
    n = len(index)
    if not 0 < dim < n or not pairs:
        raise GencrsError(f"collaborative_dim={dim}: needs 0 < dim < {n} catalog items and co-mentions in "
                          f"{dataset.name}'s train dialogues ({len(pairs)} pairs)")
    rows, cols, values = zip(*pairs)
    counts = coo_matrix((np.array(values, dtype=np.float64), (rows, cols)), shape=(n, n)).tocsr()
    counts.data = np.log1p(counts.data)
    u, s, _ = svds(counts, k=dim, random_state=seed)
    vectors = u * np.sqrt(s)
    mentioned = np.diff(counts.indptr) > 0
    vectors[mentioned] /= np.maximum(np.linalg.norm(vectors[mentioned], axis=1, keepdims=True), 1e-12)
    vectors[~mentioned] = 0.0
    return vectors.astype(np.float32)


def build_semantic_ids(cfg: SemanticIdConfig, dataset=None) -> SemanticIds:
    """Embed and quantize the catalog of `dataset` (default: cfg.dataset) and write OUT: codes.json, quantizer.npz,
    stats.json, manifest.json (tokenizer_ext.build)."""
    dataset = dataset or load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    extra = None
    if cfg.collaborative_weight > 0:
        extra = cfg.collaborative_weight * collaborative_vectors(dataset, cfg.collaborative_dim, cfg.seed)
    semantic_ids = quantize_catalog(item_texts(dataset), cfg, extra)
    semantic_ids.manifest["config"] = asdict(cfg)
    with atomic_dir(cfg.out) as tmp:
        semantic_ids.save(tmp)
    return semantic_ids


def check_item_texts(directory: str | Path, dataset) -> None:
    """Semantic IDs are made from the catalog's item texts: a catalog whose texts changed since (a regenerated world,
    an edited catalog) would silently reuse codes that no longer describe its items."""
    changed = changed_item_texts(directory, item_texts(dataset))
    if changed:
        raise GencrsError(f"semantic IDs {directory} were built from other texts of {len(changed)} {dataset.name} "
                          f"catalog items (e.g. {changed[0]}): rebuild them (recipes/build_semantic_ids.py), or delete "
                          f"the directory and let the main job build it")
