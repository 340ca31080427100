"""The ConKD student: the SFT run of gencrs.training.sft with the ConKD trainer and the two teachers' outputs.

Teacher outputs come from a disk cache (default; built from the teachers on first use, by the main process) or are
computed online in every step (`teacher_outputs=online`; the dialogue teacher is then a second model in memory).
gamma = 0 is plain SFT: no teacher is loaded.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from gencrs.errors import GencrsError
from gencrs.training.sft import SFTRunConfig, train_sft

log = logging.getLogger(__name__)


@dataclass
class ConKDConfig(SFTRunConfig):
    out: str = "runs/student_synthetic"
    dialogue_teacher: str = "runs/dialogue_teacher_synthetic/model"  # trained by recipes/train_dialogue_teacher.py
    rec_teacher: str = "runs/rec_teacher_synthetic/teacher"  # trained by recipes/train_rec_teacher.py
    teacher_outputs: str = "cache"  # cache | online
    teacher_cache: str | None = None  # default: <dialogue_teacher>/../teacher_cache_<max_length>[_exclude_context]
    rec_exclude_context: bool = False  # the rec teacher's target distribution leaves out the context's items
    gamma: float = 0.5  # weight of distillation against NLL (ConKD: 0.4-0.6); 0 = plain SFT
    gate: str = "hard"  # hard: lambda = 1[mass >= eta] | soft: lambda = mass | none: dialogue teacher only
    eta: float = 0.5  # hard-gate threshold on the dialogue teacher's item-token mass (ConKD: 0.3-0.6)
    top_k: int = 32  # dialogue-teacher tokens kept per position


def teacher_cache_dir(cfg: ConKDConfig) -> Path:
    suffix = "_exclude_context" if cfg.rec_exclude_context else ""
    return Path(cfg.teacher_cache or Path(cfg.dialogue_teacher).parent / f"teacher_cache_{cfg.max_length}{suffix}")


def check_config(cfg: ConKDConfig) -> None:
    if not 0 <= cfg.gamma <= 1:
        raise GencrsError(f"gamma must be in [0, 1], not {cfg.gamma}")
    if cfg.gate not in ("hard", "soft", "none"):
        raise GencrsError(f"gate must be hard, soft or none, not {cfg.gate!r}")
    if cfg.teacher_outputs not in ("cache", "online"):
        raise GencrsError(f"teacher_outputs must be cache or online, not {cfg.teacher_outputs!r}")
    if cfg.gamma > 0:
        for name in ("dialogue_teacher", "rec_teacher"):
            if not Path(getattr(cfg, name)).is_dir():
                raise GencrsError(f"{name} {getattr(cfg, name)} does not exist: train it first "
                                  f"(recipes/train_{name}.py) or set gamma=0 for plain SFT")


def load_teachers_for(cfg: ConKDConfig, dataset):
    """The teachers and the train examples they read: the dialogue turns and the run's item-alignment turns."""
    from gencrs.teachers.outputs import load_teachers
    from gencrs.training.records import item_examples

    model, _, _, rec, examples = load_teachers(cfg.dialogue_teacher, cfg.rec_teacher, dataset,
                                                 load_in_4bit=cfg.load_in_4bit)
    examples.update({e.key: e for e in item_examples(dataset, cfg.item_records, cfg.seed)})
    return model, rec, examples


def build_teacher_cache(cfg: ConKDConfig, dataset, records: list[dict], tokenizer, codebook, fingerprint: str) -> None:
    from gencrs.teachers.outputs import TeacherCache, compute_teacher_outputs

    log.info("building the teacher cache %s from %s and %s", teacher_cache_dir(cfg), cfg.dialogue_teacher, cfg.rec_teacher)
    model, rec, examples = load_teachers_for(cfg, dataset)
    keys, rows = compute_teacher_outputs(model, tokenizer, rec, codebook, examples, records, top_k=cfg.top_k,
                                         exclude_context=cfg.rec_exclude_context)
    stats = TeacherCache(teacher_cache_dir(cfg)).write(keys, rows, fingerprint)
    log.info("teacher cache: %d examples, %.0f bytes per example", stats["examples"], stats["bytes_per_example"])


def teachers_for(cfg: ConKDConfig):
    """make_trainer_kwargs for train_sft: the ConKD trainer's settings and its teacher source."""
    from accelerate import PartialState

    from gencrs.teachers.outputs import TeacherCache, TeacherSource, cache_fingerprint

    def make(dataset, records, tokenizer, codebook) -> dict:
        kwargs = {"gamma": cfg.gamma, "gate": cfg.gate, "eta": cfg.eta, "codebook": codebook, "teachers": None}
        if cfg.gamma == 0:
            return kwargs
        if cfg.teacher_outputs == "cache":
            cache = teacher_cache_dir(cfg)
            with PartialState().main_process_first():  # one process builds it, the others then read it
                found = TeacherCache(cache).fingerprint()
                expected = cache_fingerprint(cfg.dialogue_teacher, cfg.rec_teacher, cfg.max_length, cfg.top_k, records,
                                             cfg.rec_exclude_context)
                if found != expected:
                    if found is not None:
                        log.info("teacher cache %s was computed from other teachers or settings: rebuilding", cache)
                    build_teacher_cache(cfg, dataset, records, tokenizer, codebook, expected)
            kwargs["teachers"] = TeacherSource.from_cache(records, cache)
        else:
            model, rec, examples = load_teachers_for(cfg, dataset)
            kwargs["teachers"] = TeacherSource.from_teachers(records, examples, model, rec, tokenizer, codebook, cfg.top_k,
                                                             cfg.rec_exclude_context)
        return kwargs

    return make


def train_student(cfg: ConKDConfig, callbacks=()) -> dict:
    from gencrs.training.trainer import ConKDTrainer
    check_config(cfg)
    return train_sft(cfg, ConKDTrainer, teachers_for(cfg), callbacks)
