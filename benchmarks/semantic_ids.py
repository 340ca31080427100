"""Semantic-ID build time on ReDial's 6,924 items (embedding and quantization separately) and trie lookup time.

    GENCRS_DATA_DIR=../shared/data .venv/bin/python benchmarks/semantic_ids.py [--levels 3 --codes 256]

Embedding runs without the cache. Quantization is timed with faiss (the library used) and, for the level-1 k-means,
against scikit-learn's KMeans on the same data. The trie is timed per batch of 64 prefixes (random catalog prefixes of
every depth): one `walk` + `mask` (what a fresh batch costs) and one `step` + `mask` (what each decoding step costs).
"""

import argparse
import json
import random
import statistics
import time

import torch

from gencrs.data import load_dataset
from tokenizer_ext.embed import embed_texts
from tokenizer_ext.item_text import item_text
from tokenizer_ext.rq import kmeans, residual_kmeans
from tokenizer_ext.trie import Trie


def timed(fn, repeat=1):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--codes", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)
    items = list(load_dataset("redial").catalog.values())
    texts = [item_text(i) for i in items]
    vectors, embed_s = timed(lambda: embed_texts(texts, cache_dir=None))
    quantized, rq_s = timed(lambda: residual_kmeans(vectors, args.levels, args.codes, seed=0), repeat=3)
    _, faiss_level1 = timed(lambda: kmeans(vectors, args.codes, seed=0), repeat=3)
    from sklearn.cluster import KMeans
    _, sklearn_level1 = timed(lambda: KMeans(args.codes, n_init=1, max_iter=25, random_state=0).fit(vectors), repeat=3)

    base = 130_000  # code tokens placed after an 8B-sized vocabulary
    seqs = {item.id: [base + l * args.codes + int(c) for l, c in enumerate(row)] for item, row in zip(items, quantized.codes)}
    trie, build_s = timed(lambda: Trie(seqs))
    vocab = base + args.levels * args.codes
    rng = random.Random(0)
    all_seqs = list(seqs.values())
    batches = [[s[: rng.randrange(args.levels)] for s in rng.sample(all_seqs, args.batch)] for _ in range(50)]
    _, walk_mask_s = timed(lambda: [trie.mask(trie.walk(b), vocab) for b in batches], repeat=5)
    states = [trie.walk([s[:1] for s in rng.sample(all_seqs, args.batch)]) for _ in range(50)]
    nxt = [torch.tensor([s[1] for s in rng.sample(all_seqs, args.batch)]) for _ in range(50)]
    _, step_mask_s = timed(lambda: [trie.mask(trie.step(st, t), vocab) for st, t in zip(states, nxt)], repeat=5)
    report = {
        "items": len(items), "levels": args.levels, "codes": args.codes,
        "embedding_seconds": round(embed_s, 2),
        "rq_kmeans_seconds_faiss": round(rq_s, 3),
        "level1_kmeans_seconds": {"faiss": round(faiss_level1, 3), "sklearn": round(sklearn_level1, 3)},
        "collisions_before": quantized.stats["collisions_before"], "collisions_after": quantized.stats["collisions_after"],
        "trie_build_seconds": round(build_s, 3), "trie_nodes": trie.num_nodes,
        f"walk_and_mask_ms_per_batch_of_{args.batch}": round(walk_mask_s / len(batches) * 1e3, 3),
        f"step_and_mask_ms_per_batch_of_{args.batch}": round(step_mask_s / len(states) * 1e3, 3),
        "mask_vocab_size": vocab,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
