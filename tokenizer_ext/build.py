"""Catalog -> item texts -> embeddings -> RQ-KMeans codes (collision-free) -> artifact directory.

Artifacts (written atomically into one directory):
    codes.json        item id -> codes and codes -> item id, levels, codes per level
    quantizer.npz     centroids (levels, K, dim)
    stats.json        collisions before/after, utilization per level, reconstruction error, semantic coherence
    manifest.json     config, encoder name and weights hash, sha256 of each item text and of codes.json, versions
"""

import hashlib
import json
import logging
import random
import time
from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

from gencrs.data.schema import Item
from gencrs.errors import GencrsError
from gencrs.io import atomic_dir
from tokenizer_ext.codebook import CodeBook
from tokenizer_ext.embed import DEFAULT_ENCODER, embed_texts, encoder_fingerprint, text_hash
from tokenizer_ext.item_text import item_text
from tokenizer_ext.rq import residual_kmeans

log = logging.getLogger(__name__)


@dataclass
class SemanticIdConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    out: str = "runs/semantic_ids_synthetic"
    levels: int = 3
    codes: int = 256  # codes per level; the synthetic default uses 16
    encoder: str = DEFAULT_ENCODER
    cache_dir: str | None = "runs/cache/embeddings"
    seed: int = 0


def check_items(items: list[Item]) -> list[str]:
    seen, texts = set(), []
    for n, item in enumerate(items):
        if item.id in seen:
            raise GencrsError(f"duplicate item id '{item.id}' (catalog entry {n})")
        seen.add(item.id)
        text = item_text(item)
        if not text.strip():
            raise GencrsError(f"item '{item.id}' (catalog entry {n}) has an empty text: no title or metadata to embed")
        texts.append(text)
    if not items:
        raise GencrsError("empty catalog")
    return texts


def genre_coherence(items: list[Item], codes: np.ndarray, seed: int = 0, pairs: int = 200_000) -> dict | None:
    """Share of item pairs sharing a genre, among pairs with the same first-level code vs random pairs."""
    genres = [set(i.genres) for i in items]
    known = [i for i, g in enumerate(genres) if g]
    if len(known) < 2:
        return None
    rng = random.Random(seed)
    by_code: dict[int, list[int]] = {}
    for i in known:
        by_code.setdefault(int(codes[i, 0]), []).append(i)
    groups = [g for g in by_code.values() if len(g) > 1]
    weights = [len(g) * (len(g) - 1) for g in groups]  # sample pairs uniformly over all same-code pairs
    same = random_ = 0
    for _ in range(pairs):
        g = rng.choices(groups, weights)[0]
        a, b = rng.sample(g, 2)
        same += bool(genres[a] & genres[b])
        a, b = rng.sample(known, 2)
        random_ += bool(genres[a] & genres[b])
    return {"same_first_code_share_genre": same / pairs, "random_pairs_share_genre": random_ / pairs, "pairs_sampled": pairs}


def build_semantic_ids(items: list[Item], cfg: SemanticIdConfig) -> tuple[CodeBook, dict]:
    texts = check_items(items)
    timings = {}
    start = time.perf_counter()
    vectors = embed_texts(texts, cfg.encoder, cfg.cache_dir)
    timings["embed_seconds"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    with tqdm(total=cfg.levels, desc="rq-kmeans levels", unit="level") as bar:
        quantized = residual_kmeans(vectors, cfg.levels, cfg.codes, seed=cfg.seed, progress=bar)
    timings["quantize_seconds"] = round(time.perf_counter() - start, 2)
    codebook = CodeBook(cfg.levels, cfg.codes, {item.id: tuple(int(c) for c in row) for item, row in zip(items, quantized.codes)})
    stats = {**quantized.stats, **timings, "genre_coherence": genre_coherence(items, quantized.codes, cfg.seed)}
    with atomic_dir(cfg.out) as tmp:
        codes_json = json.dumps(codebook.to_json(), indent=1, ensure_ascii=False)
        (tmp / "codes.json").write_text(codes_json, encoding="utf-8")
        np.savez(tmp / "quantizer.npz", centroids=quantized.centroids)
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
        (tmp / "manifest.json").write_text(json.dumps({
            "config": asdict(cfg),
            "encoder": cfg.encoder,
            "encoder_weights_sha256": encoder_fingerprint(cfg.encoder),
            "item_text_sha256": {item.id: text_hash(t) for item, t in zip(items, texts)},
            "codes_json_sha256": hashlib.sha256(codes_json.encode("utf-8")).hexdigest(),
            "versions": _versions(),
        }, indent=1), encoding="utf-8")
    return codebook, stats


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in ("gencrs", "faiss-cpu", "sentence-transformers", "torch", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def format_summary(stats: dict) -> str:
    lines = [
        f"items {stats['items']}, {stats['levels']} levels x {stats['codes_per_level']} codes",
        f"collisions before resolution: {stats['collisions_before']} (items involved: {stats['items_in_collisions_before']}); "
        f"after: {stats['collisions_after']}; items moved: {stats['items_moved_by_resolution']}",
        "code utilization per level: " + ", ".join(f"{u:.1%}" for u in stats["utilization_per_level"]),
        "relative residual energy per level: " + ", ".join(f"{e:.3f}" for e in stats["relative_error_per_level_before_resolution"]),
        f"reconstruction MSE {stats['reconstruction_mse']:.4f} (relative {stats['relative_reconstruction_error']:.3f})",
        f"time: embedding {stats['embed_seconds']} s, quantization {stats['quantize_seconds']} s",
    ]
    if stats.get("genre_coherence"):
        g = stats["genre_coherence"]
        lines.append(f"genre coherence: pairs with the same first-level code share a genre {g['same_first_code_share_genre']:.3f}, "
                     f"random pairs {g['random_pairs_share_genre']:.3f}")
    return "\n".join(lines)
