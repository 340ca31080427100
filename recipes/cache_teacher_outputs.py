"""Compute both teachers' outputs for a split once and cache them (float16 top-k + item mass + rec code distributions).

    python recipes/cache_teacher_outputs.py dialogue_teacher=runs/dialogue_teacher_redial/adapter \
        rec_teacher=runs/rec_teacher_redial/teacher dataset=redial out=runs/teacher_cache_redial
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from gencrs.cli import run_recipe


@dataclass
class CacheConfig:
    dialogue_teacher: str = "runs/dialogue_teacher_synthetic/adapter"
    rec_teacher: str = "runs/rec_teacher_synthetic/teacher"
    dataset: str = "synthetic"
    data_dir: str | None = None
    split: str = "train"
    out: str = "runs/teacher_cache_synthetic"
    max_length: int = 384
    batch_size: int = 16
    top_k: int = 32


def cache_outputs(cfg: CacheConfig) -> dict:
    from gencrs.data import build_examples, load_dataset
    from gencrs.teachers.outputs import TeacherCache, compute_teacher_outputs
    from gencrs.teachers.rec import RecTeacher
    from gencrs.training.model import load_trained
    from gencrs.training.records import sft_records

    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    model, tokenizer, codebook = load_trained(cfg.dialogue_teacher)
    examples = {f"{e.dialogue_id}:{e.turn_index}": e for e in build_examples(dataset, cfg.split)}
    records = sft_records(dataset, cfg.split, codebook, tokenizer, cfg.max_length)
    keys, rows = compute_teacher_outputs(model, tokenizer, RecTeacher.load(cfg.rec_teacher), codebook, examples,
                                         records, cfg.batch_size, cfg.top_k)
    return TeacherCache(Path(cfg.out)).write(keys, rows)


if __name__ == "__main__":
    sys.exit(run_recipe("cache_teacher_outputs", CacheConfig, cache_outputs))
