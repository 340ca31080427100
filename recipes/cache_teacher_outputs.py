"""Compute both teachers' outputs for a split once and cache them (float16 top-k + item mass + rec code distributions).

    python recipes/cache_teacher_outputs.py dialogue_teacher=runs/dialogue_teacher_redial_full/model \
        rec_teacher=runs/rec_teacher_redial/teacher dataset=redial max_length=512 \
        out=runs/dialogue_teacher_redial_full/teacher_cache_512

The student (gencrs.training.student) reads <dialogue_teacher>/../teacher_cache_<max_length> unless told otherwise
(..._exclude_context with rec_exclude_context=true), and uses a cache only when its fingerprint (teachers, max_length,
top_k, records, rec_exclude_context) matches its own run.
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
    rec_exclude_context: bool = False  # the rec teacher's target distribution leaves out the context's items
    load_in_4bit: bool = False  # the dialogue teacher's base in NF4 (an 8B teacher on a 24 GB GPU)


def cache_outputs(cfg: CacheConfig) -> dict:
    from gencrs.data import load_dataset
    from gencrs.teachers.outputs import TeacherCache, cache_fingerprint, compute_teacher_outputs, load_teachers
    from gencrs.training.records import sft_records

    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    model, tokenizer, codebook, rec, examples = load_teachers(cfg.dialogue_teacher, cfg.rec_teacher, dataset, cfg.split,
                                                              cfg.load_in_4bit)
    records = sft_records(dataset, cfg.split, codebook, tokenizer, cfg.max_length)
    keys, rows = compute_teacher_outputs(model, tokenizer, rec, codebook, examples, records, cfg.batch_size, cfg.top_k,
                                         cfg.rec_exclude_context)
    fingerprint = cache_fingerprint(cfg.dialogue_teacher, cfg.rec_teacher, cfg.max_length, cfg.top_k, records,
                                    cfg.rec_exclude_context)
    return TeacherCache(Path(cfg.out)).write(keys, rows, fingerprint)


if __name__ == "__main__":
    sys.exit(run_recipe("cache_teacher_outputs", CacheConfig, cache_outputs))
