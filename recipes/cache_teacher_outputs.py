"""Compute both teachers' outputs for a split once and cache them (float16 top-k + item mass + rec code distributions).

    python recipes/cache_teacher_outputs.py dialogue_teacher=runs/dialogue_teacher_redial_full/model \
        rec_teacher=runs/rec_teacher_redial/teacher dataset=redial max_length=512 \
        out=runs/dialogue_teacher_redial_full/teacher_cache_512

The student (gencrs.training.student) reads <dialogue_teacher>/../teacher_cache_<max_length> unless told otherwise
(..._exclude_context with rec_exclude_context=true), and uses a cache only when its fingerprint (teachers, max_length,
top_k, records, rec_exclude_context) matches its own run; so does this recipe: a cache that matches is kept.
"""

import sys
from dataclasses import dataclass

from gencrs.cli import run_recipe
from gencrs.data import load_dataset
from gencrs.data.records import examples_by_key, sft_records
from gencrs.model import load_tokenizer
from gencrs.model_dir import reads_context_codes
from gencrs.teachers.outputs import TeacherSettings, ensure_teacher_cache
from tokenizer_ext.codebook import CodeBook


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
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    tokenizer, codebook = load_tokenizer(cfg.dialogue_teacher), CodeBook.load(cfg.dialogue_teacher)
    # prompted as the dialogue teacher was trained (with the context's item codes when its directory says so)
    records = sft_records(dataset, cfg.split, codebook, tokenizer, cfg.max_length,
                          context_codes=reads_context_codes(cfg.dialogue_teacher))
    settings = TeacherSettings(cfg.dialogue_teacher, cfg.rec_teacher, cfg.top_k, cfg.rec_exclude_context,
                               cfg.load_in_4bit)
    return ensure_teacher_cache(settings, cfg.out, examples_by_key(dataset, cfg.split), records, tokenizer, codebook,
                                cfg.max_length, cfg.batch_size)


if __name__ == "__main__":
    sys.exit(run_recipe("cache_teacher_outputs", CacheConfig, cache_outputs))
