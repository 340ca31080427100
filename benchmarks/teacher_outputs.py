"""Teacher outputs for ConKD: computed online in the training step vs read from the disk cache (float16 top-k + mass),
per training batch on the CPU scale, and the cache's bytes per example.

    .venv/bin/python benchmarks/teacher_outputs.py dialogue_teacher=runs/dialogue_teacher_synthetic/model \
        rec_teacher=runs/rec_teacher_synthetic/teacher dataset=synthetic batch_size=16 batches=20

The cache is built by `ensure_teacher_cache`, as a student run builds it; its compute time over the batches is the
online cost, and reading the same batches back from it the cached cost.
"""

import sys
import tempfile
import time
from dataclasses import dataclass

import torch

from gencrs.cli import run_recipe
from gencrs.data import load_dataset
from gencrs.data.records import examples_by_key, sft_records
from gencrs.model import load_tokenizer
from gencrs.teachers.outputs import (
    CachedTeachers,
    TeacherSettings,
    ensure_teacher_cache,
)
from tokenizer_ext.codebook import CodeBook


@dataclass
class BenchConfig:
    dialogue_teacher: str = "runs/dialogue_teacher_synthetic/model"
    rec_teacher: str = "runs/rec_teacher_synthetic/teacher"
    dataset: str = "synthetic"
    batch_size: int = 16
    batches: int = 20
    top_k: int = 32
    max_length: int = 384


def main(cfg: BenchConfig) -> dict:
    torch.manual_seed(0)
    dataset = load_dataset(cfg.dataset)
    tokenizer, codebook = load_tokenizer(cfg.dialogue_teacher), CodeBook.load(cfg.dialogue_teacher)
    records = sft_records(dataset, "train", codebook, tokenizer, cfg.max_length)[: cfg.batch_size * cfg.batches]
    settings = TeacherSettings(cfg.dialogue_teacher, cfg.rec_teacher, cfg.top_k)
    with tempfile.TemporaryDirectory() as tmp:
        built = ensure_teacher_cache(settings, tmp, examples_by_key(dataset, "train"), records, tokenizer, codebook,
                                     cfg.max_length, cfg.batch_size)
        online = built["compute_seconds"] / cfg.batches
        start = time.perf_counter()
        cached = CachedTeachers(records, tmp)
        for first in range(0, len(records), cfg.batch_size):
            cached.rows(list(range(first, min(first + cfg.batch_size, len(records)))), {}, None)
        read = (time.perf_counter() - start) / cfg.batches
    return {"examples": len(records), "batch_size": cfg.batch_size, "top_k": cfg.top_k,
            "online_ms_per_batch": round(online * 1e3, 2), "cached_ms_per_batch": round(read * 1e3, 3),
            "online_over_cached": round(online / read, 1), "cache_bytes_per_example": round(built["bytes_per_example"])}


if __name__ == "__main__":
    sys.exit(run_recipe("teacher_outputs", BenchConfig, main))
