"""Semantic-ID build time on ReDial's 6,924 items (embedding and quantization separately) and trie lookup time.

    GENCRS_DATA_DIR=../shared/data .venv/bin/python benchmarks/semantic_ids.py [levels=3 codes_per_level=256]

Embedding runs without the cache. Quantization is timed with faiss (the library used) and, for the level-1 k-means,
against scikit-learn's KMeans on the same data. The trie is timed per batch of 64 prefixes (random catalog prefixes of
every depth): one `walk` + `mask` (what a fresh batch costs) and one `step` + `mask` (what each decoding step costs).
"""

import random
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from gencrs.cli import run_recipe
from gencrs.data import load_dataset
from tokenizer_ext.embed import embed_texts
from tokenizer_ext.rq import kmeans, residual_kmeans
from tokenizer_ext.trie import Trie


def timed(fn, repeat=1):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


@dataclass
class BenchConfig:
    levels: int = 3
    codes_per_level: int = 256
    batch: int = 64


def main(cfg: BenchConfig) -> dict:
    torch.set_num_threads(2)
    items = list(load_dataset("redial").catalog.values())
    texts = [item.text for item in items]
    vectors, embed_s = timed(lambda: embed_texts(texts, cache_dir=None))
    quantized, rq_s = timed(lambda: residual_kmeans(vectors, cfg.levels, cfg.codes_per_level, seed=0), repeat=3)
    _, faiss_level1 = timed(lambda: kmeans(vectors, cfg.codes_per_level, seed=0), repeat=3)
    from sklearn.cluster import KMeans
    _, sklearn_level1 = timed(lambda: KMeans(cfg.codes_per_level, n_init=1, max_iter=25, random_state=0).fit(vectors), repeat=3)

    base = 130_000  # code tokens placed after an 8B-sized vocabulary
    seqs = {item.id: [base + l * cfg.codes_per_level + int(c) for l, c in enumerate(row)] for item, row in zip(items, quantized.codes)}
    trie, build_s = timed(lambda: Trie(seqs))
    vocab = base + cfg.levels * cfg.codes_per_level
    rng = random.Random(0)
    all_seqs = list(seqs.values())
    batches = [[s[: rng.randrange(cfg.levels)] for s in rng.sample(all_seqs, cfg.batch)] for _ in range(50)]
    _, walk_mask_s = timed(lambda: [trie.mask(trie.walk(b), vocab) for b in batches], repeat=5)
    states = [trie.walk([s[:1] for s in rng.sample(all_seqs, cfg.batch)]) for _ in range(50)]
    nxt = [torch.tensor([s[1] for s in rng.sample(all_seqs, cfg.batch)]) for _ in range(50)]
    _, step_mask_s = timed(lambda: [trie.mask(trie.step(st, t), vocab) for st, t in zip(states, nxt)], repeat=5)
    report = {
        "items": len(items), "levels": cfg.levels, "codes_per_level": cfg.codes_per_level,
        "embedding_seconds": round(embed_s, 2),
        "rq_kmeans_seconds_faiss": round(rq_s, 3),
        "level1_kmeans_seconds": {"faiss": round(faiss_level1, 3), "sklearn": round(sklearn_level1, 3)},
        "collisions_before": quantized.stats["collisions_before"], "collisions_after": quantized.stats["collisions_after"],
        "trie_build_seconds": round(build_s, 3), "trie_nodes": trie.num_nodes,
        f"walk_and_mask_ms_per_batch_of_{cfg.batch}": round(walk_mask_s / len(batches) * 1e3, 3),
        f"step_and_mask_ms_per_batch_of_{cfg.batch}": round(step_mask_s / len(states) * 1e3, 3),
        "mask_vocab_size": vocab,
    }
    return report


if __name__ == "__main__":
    sys.exit(run_recipe("semantic_ids", BenchConfig, main))
