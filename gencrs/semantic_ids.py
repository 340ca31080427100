"""A dataset's catalog -> semantic IDs (tokenizer_ext) -> the semantic-ID directory, written atomically.

    python recipes/build_semantic_ids.py dataset=redial out=runs/semantic_ids_redial codes_per_level=256
"""

from dataclasses import asdict, dataclass

from gencrs.data import load_dataset
from gencrs.io import atomic_dir
from tokenizer_ext.build import ItemText, QuantizerConfig, SemanticIds
from tokenizer_ext.build import build_semantic_ids as quantize_catalog


@dataclass
class SemanticIdConfig(QuantizerConfig):
    codes_per_level: int = 16  # the synthetic catalog's; ReDial uses 256
    dataset: str = "synthetic"
    data_dir: str | None = None
    out: str = "runs/semantic_ids_synthetic"


def build_semantic_ids(cfg: SemanticIdConfig, dataset=None) -> SemanticIds:
    """Embed and quantize the catalog of `dataset` (default: cfg.dataset) and write OUT: codes.json, quantizer.npz,
    stats.json, manifest.json (tokenizer_ext.build)."""
    dataset = dataset or load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    items = [ItemText(item.id, item.text, tuple(item.genres)) for item in dataset.catalog.values()]
    semantic_ids = quantize_catalog(items, cfg)
    semantic_ids.manifest["config"] = asdict(cfg)
    with atomic_dir(cfg.out) as tmp:
        semantic_ids.save(tmp)
    return semantic_ids
