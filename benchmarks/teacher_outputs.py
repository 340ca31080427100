"""Teacher outputs for ConKD: computed online in the training step vs read from the disk cache (float16 top-k + mass),
per training batch on the CPU scale, and the cache's bytes per example.

    .venv/bin/python benchmarks/teacher_outputs.py --dialogue-teacher runs/dialogue_teacher_synthetic/adapter \
        --rec-teacher runs/rec_teacher_synthetic/teacher --dataset synthetic --batch 16 --batches 20
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from gencrs.data import load_dataset
from gencrs.teachers.outputs import TeacherCache, compute_teacher_outputs, load_teachers
from gencrs.training.records import sft_records


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialogue-teacher", required=True)
    parser.add_argument("--rec-teacher", required=True)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=384)
    args = parser.parse_args()
    torch.manual_seed(0)
    dataset = load_dataset(args.dataset)
    model, tokenizer, codebook, rec, examples = load_teachers(args.dialogue_teacher, args.rec_teacher, dataset)
    records = sft_records(dataset, "train", codebook, tokenizer, args.max_length)[: args.batch * args.batches]
    start = time.perf_counter()
    keys, rows = compute_teacher_outputs(model, tokenizer, rec, codebook, examples, records, args.batch, args.top_k)
    online = (time.perf_counter() - start) / args.batches
    with tempfile.TemporaryDirectory() as tmp:
        cache = TeacherCache(Path(tmp))
        size = cache.write(keys, rows)
        start = time.perf_counter()
        loaded = cache.read()
        for n in range(0, len(keys), args.batch):
            _ = [loaded[k] for k in keys[n:n + args.batch]]
        cached = (time.perf_counter() - start) / args.batches
    print(json.dumps({"examples": len(records), "batch": args.batch, "top_k": args.top_k,
                      "online_ms_per_batch": round(online * 1e3, 2), "cached_ms_per_batch": round(cached * 1e3, 3),
                      "online_over_cached": round(online / cached, 1),
                      "cache_bytes_per_example": round(size["bytes_per_example"])}, indent=2))


if __name__ == "__main__":
    main()
