"""Item texts -> embeddings -> RQ-KMeans codes (collision-free) -> the files of a semantic-ID directory.

`SemanticIds.save` writes into a directory it is given (gencrs.semantic_ids writes it atomically):
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
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tokenizer_ext.codebook import CodeBook
from tokenizer_ext.embed import (
    DEFAULT_ENCODER,
    embed_texts,
    encoder_fingerprint,
    text_hash,
)
from tokenizer_ext.errors import SemanticIdError
from tokenizer_ext.rq import residual_kmeans

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


@dataclass
class QuantizerConfig:
    levels: int = 3
    codes_per_level: int = 256  # the synthetic default uses 16
    encoder: str = DEFAULT_ENCODER
    cache_dir: str | None = "runs/cache/embeddings"
    seed: int = 0


@dataclass
class ItemText:
    """What an item brings to its semantic ID: the text embedded, and its genres (only for the coherence statistic)."""
    id: str
    text: str
    genres: tuple[str, ...] = ()


@dataclass
class SemanticIds:
    codebook: CodeBook
    centroids: np.ndarray  # (levels, codes_per_level, dim)
    stats: dict
    manifest: dict

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        codes_json = self.codebook.save(directory, indent=1)
        np.savez(directory / "quantizer.npz", centroids=self.centroids)
        (directory / "stats.json").write_text(json.dumps(self.stats, indent=2), encoding="utf-8")
        manifest = {**self.manifest, "codes_json_sha256": hashlib.sha256(codes_json.encode("utf-8")).hexdigest()}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def changed_item_texts(directory: str | Path, items: list[ItemText]) -> list[str]:
    """Ids of `items` whose text differs from the one the semantic IDs in `directory` were built from (its manifest
    keeps each text's hash); none for a directory without a manifest (a hand-made code table)."""
    manifest = Path(directory) / MANIFEST
    if not manifest.exists():
        return []
    built = json.loads(manifest.read_text(encoding="utf-8")).get("item_text_sha256", {})
    return [item.id for item in items if item.id in built and built[item.id] != text_hash(item.text)]


def check_items(items: list[ItemText]) -> None:
    seen = set()
    for n, item in enumerate(items):
        if item.id in seen:
            raise SemanticIdError(f"duplicate item id '{item.id}' (catalog entry {n})")
        seen.add(item.id)
        if not item.text.strip():
            raise SemanticIdError(f"item '{item.id}' (catalog entry {n}) has an empty text: no title or metadata to embed")
    if not items:
        raise SemanticIdError("empty catalog")


def genre_coherence(items: list[ItemText], codes: np.ndarray, seed: int = 0, pairs: int = 200_000) -> dict | None:
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


def build_semantic_ids(items: list[ItemText], cfg: QuantizerConfig,
                       extra_vectors: np.ndarray | None = None) -> SemanticIds:
    """`extra_vectors` (one row per item, in order): what else an item's code should say, joined to its text embedding
    before quantization (gencrs: the item's co-mention vector, so that the first level carries collaborative signal)."""
    check_items(items)
    texts = [item.text for item in items]
    timings = {}
    start = time.perf_counter()
    vectors = embed_texts(texts, cfg.encoder, cfg.cache_dir)
    if extra_vectors is not None:
        if extra_vectors.shape[0] != len(items):
            raise SemanticIdError(f"{extra_vectors.shape[0]} extra vectors for {len(items)} items")
        vectors = np.concatenate([vectors, extra_vectors.astype(vectors.dtype)], axis=1)
    timings["embed_seconds"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    with tqdm(total=cfg.levels, desc="rq-kmeans levels", unit="level") as bar:
        quantized = residual_kmeans(vectors, cfg.levels, cfg.codes_per_level, seed=cfg.seed, progress=bar)
    timings["quantize_seconds"] = round(time.perf_counter() - start, 2)
    codebook = CodeBook(cfg.levels, cfg.codes_per_level, {item.id: tuple(int(c) for c in row) for item, row in zip(items, quantized.codes)})
    stats = {**quantized.stats, **timings, "genre_coherence": genre_coherence(items, quantized.codes, cfg.seed)}
    manifest = {"config": asdict(cfg), "encoder": cfg.encoder, "encoder_weights_sha256": encoder_fingerprint(cfg.encoder),
                "item_text_sha256": {item.id: text_hash(t) for item, t in zip(items, texts)}, "versions": _versions()}
    return SemanticIds(codebook, quantized.centroids, stats, manifest)


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
