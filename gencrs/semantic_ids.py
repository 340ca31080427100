"""A dataset's catalog -> semantic IDs (tokenizer_ext) -> the semantic-ID directory, written atomically.

    python recipes/build_semantic_ids.py dataset=redial out=runs/semantic_ids_redial codes_per_level=256
"""

from dataclasses import asdict, dataclass
from pathlib import Path

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


def item_texts(dataset) -> list[ItemText]:
    """What each catalog item brings to its semantic ID (tokenizer_ext.build.ItemText)."""
    return [ItemText(item.id, item.text, tuple(item.genres)) for item in dataset.catalog.values()]


def build_semantic_ids(cfg: SemanticIdConfig, dataset=None) -> SemanticIds:
    """Embed and quantize the catalog of `dataset` (default: cfg.dataset) and write OUT: codes.json, quantizer.npz,
    stats.json, manifest.json (tokenizer_ext.build)."""
    dataset = dataset or load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    semantic_ids = quantize_catalog(item_texts(dataset), cfg)
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
