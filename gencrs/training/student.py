"""The ConKD student: the SFT run of gencrs.training.sft with the ConKD trainer and the two teachers' outputs.

Teacher outputs come from a disk cache (default; built from the teachers on first use, by the main process) or are
computed online in every step (`teacher_outputs=online`; the dialogue teacher is then a second model in memory).
gamma = 0 is plain SFT: no teacher is loaded (`ConKDConfig.distills`).
"""

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from accelerate import PartialState

from gencrs.data.examples import TWIN_PREFIX, Example
from gencrs.data.protocols import recommender_context
from gencrs.data.records import context_item_codes, examples_by_key, fitted_record, turn_text
from gencrs.errors import GencrsError
from gencrs.format import ITEM_END, ITEM_START
from gencrs.teachers.outputs import (
    CachedTeachers,
    TeacherSettings,
    ensure_teacher_cache,
    load_online_teachers,
)
from gencrs.teachers.rec import RecTeacherEnsemble, load_rec_teacher
from gencrs.training.sft import (
    Run,
    RunModel,
    RunRecords,
    SFTRunConfig,
    build_model,
    build_trainer,
    prepare_run,
    run_records,
    train_and_save,
    training_args,
)
from gencrs.training.trainer import ConKDConfig, ConKDTrainer

log = logging.getLogger(__name__)


@dataclass
class StudentRunConfig(SFTRunConfig):
    out: str = "runs/student_synthetic"
    dialogue_teacher: str = "runs/dialogue_teacher_synthetic/model"  # trained by recipes/train_dialogue_teacher.py
    rec_teacher: str = "runs/rec_teacher_synthetic/teacher"  # trained by recipes/train_rec_teacher.py
    # cross-fitting: the OUT/teacher of rec teachers trained with holdout_fold=0 .. k-1 (folds=k), in fold order; each
    # train context is then read by the teacher that never saw its dialogue (docs/training.md)
    rec_teacher_folds: list[str] = field(default_factory=list)
    teacher_outputs: str = "cache"  # cache | online
    teacher_cache: str | None = None  # default: <dialogue_teacher>/../teacher_cache_<max_length>[_<option>...]
    rec_exclude_context: bool = False  # the rec teacher's target distribution leaves out the context's items
    gamma: float = 0.5  # weight of distillation against NLL (ConKD: 0.4-0.6); 0 = plain SFT
    gate: str = "hard"  # hard: lambda = 1[mass >= eta] | soft: lambda = mass | none: dialogue teacher only
    eta: float = 0.5  # hard-gate threshold on the dialogue teacher's item-token mass (ConKD: 0.3-0.6)
    rec_temperature: float = 1.0  # temperature on the rec teacher's code distributions: < 1 sharpens, > 1 flattens
    top_k: int = 32  # dialogue-teacher tokens kept per position
    teacher_records: bool = False  # every train turn without a gold target also becomes a recommendation of the rec
    # teacher's top item, its loss counted at the code tokens only (teacher_records below)
    teacher_records_items: int = 1  # how many of the rec teacher's top items each such twin recommends, best first


def teacher_cache_dir(cfg: StudentRunConfig) -> Path:
    suffix = "_exclude_context" if cfg.rec_exclude_context else ""
    suffix += "_approximate" if cfg.approximate_train else ""
    suffix += f"_crossfit{len(cfg.rec_teacher_folds)}" if cfg.rec_teacher_folds else ""
    members = RecTeacherEnsemble.members(cfg.rec_teacher) if cfg.rec_teacher else []
    suffix += f"_ensemble{len(members)}" if members else ""
    if cfg.teacher_records:
        suffix += "_teacher_records" + (str(cfg.teacher_records_items) if cfg.teacher_records_items != 1 else "")
    return Path(cfg.teacher_cache or Path(cfg.dialogue_teacher).parent / f"teacher_cache_{cfg.max_length}{suffix}")


def conkd_args(cfg: StudentRunConfig) -> ConKDConfig:
    """The trainer's config; ConKDConfig validates the ConKD settings when it is made, before anything loads."""
    if cfg.teacher_outputs not in ("cache", "online"):
        raise GencrsError(f"teacher_outputs must be cache or online, not {cfg.teacher_outputs!r}")
    args = training_args(cfg, ConKDConfig)
    if cfg.teacher_records and not args.distills:
        raise GencrsError("teacher_records labels turns with the rec teacher: it needs gamma > 0 (0 is plain SFT)")
    if cfg.teacher_records_items < 1:
        raise GencrsError(f"teacher_records_items must be at least 1, not {cfg.teacher_records_items}")
    return args


def check_teachers(cfg: StudentRunConfig) -> None:
    for name in ("dialogue_teacher", "rec_teacher"):
        if not Path(getattr(cfg, name)).is_dir():
            raise GencrsError(f"{name} {getattr(cfg, name)} does not exist: train it first "
                              f"(recipes/train_{name}.py) or set gamma=0 for plain SFT")
    for fold, directory in enumerate(cfg.rec_teacher_folds):
        if not Path(directory).is_dir():
            raise GencrsError(f"rec_teacher_folds[{fold}] {directory} does not exist: train it with "
                              f"recipes/train_rec_teacher.py holdout_fold={fold} folds={len(cfg.rec_teacher_folds)}")
    if len(cfg.rec_teacher_folds) == 1:
        raise GencrsError("rec_teacher_folds: cross-fitting needs at least 2 fold teachers")


def teacher_records(run: Run, train: list[dict], examples: dict[str, Example],
                    tokenizer) -> tuple[list[dict], dict[str, Example]]:
    """The train turns without a gold target (most turns: the assistant asks, chats, discusses), each as a
    recommendation of the rec teacher's top item outside its context (its top `teacher_records_items`, best first):
    the student then learns what the teacher would recommend in every context it reads, not only in the turns where
    the dataset's assistant recommended. With several items, each item's code slots distil the teacher's
    distribution without the items before it (teachers.outputs.code_distributions), so one twin teaches the code
    paths of the teacher's top items, not only its first. The records (keys `teacher:<key>`, the source turn's
    context, fitted to max_length like every record: the twin's turn can be longer than its source's) are flagged
    `codes_only`: their loss counts at the code tokens only, so the student does not learn to recommend more often
    than the dataset's assistants."""
    sources = [examples[r["key"]] for r in train if r["key"] in examples and not examples[r["key"]].targets]
    if not sources:
        return [], {}
    teacher = load_rec_teacher(run.cfg.rec_teacher, run.cfg.rec_teacher_folds)
    contexts = [recommender_context(source) for source in sources]
    teacher.prepare(contexts)
    records, labelled = [], {}
    for source, top in zip(sources, teacher.rank(contexts, run.cfg.teacher_records_items)):
        if not top:
            continue
        example = replace(source, dialogue_id=f"{TWIN_PREFIX}{source.dialogue_id}", intent="recommend", targets=top,
                          response=", ".join(f"{ITEM_START}{run.titles[item]}{ITEM_END}" for item in top))
        twin = fitted_record(tokenizer, example, turn_text(example, run.codebook), run.cfg.max_length,
                             context_item_codes(example.context_items, run.codebook, run.cfg.context_codes))
        if twin is not None:
            labelled[example.key] = example
            records.append({**twin, "codes_only": True})
    log.info("teacher_records: %d train turns labelled with the rec teacher's top %d item(s)", len(records),
             run.cfg.teacher_records_items)
    return records, labelled


def student_teachers(run: Run, built: RunModel, train: list[dict], examples: dict[str, Example]):
    """The teachers' outputs for the run's train records (`examples`: each record's Example, by key): from the cache
    (built first when it is missing or stale, by the main process while the others wait) or the loaded teachers."""
    cfg = run.cfg
    settings = TeacherSettings(cfg.dialogue_teacher, cfg.rec_teacher, cfg.top_k, cfg.rec_exclude_context,
                               cfg.load_in_4bit, tuple(cfg.rec_teacher_folds))
    if cfg.teacher_outputs == "online":
        return load_online_teachers(settings, examples, train, built.tokenizer, run.codebook)
    with PartialState().main_process_first():
        ensure_teacher_cache(settings, teacher_cache_dir(cfg), examples, train, built.tokenizer, run.codebook,
                             cfg.max_length)
    return CachedTeachers(train, teacher_cache_dir(cfg))


def build_student_trainer(cfg: StudentRunConfig, callbacks=()) -> tuple[Run, RunRecords, ConKDTrainer]:
    args = conkd_args(cfg)
    if args.distills:
        check_teachers(cfg)
    run = prepare_run(cfg)
    built = build_model(run)
    records = run_records(run, built.tokenizer)
    teachers = None
    if args.distills:
        examples = examples_by_key(run.dataset, "train", cfg.item_records, cfg.seed, cfg.approximate_train)
        if cfg.teacher_records:
            labelled_records, labelled = teacher_records(run, records.train, examples, built.tokenizer)
            records.train += labelled_records
            examples.update(labelled)
        teachers = student_teachers(run, built, records.train, examples)
    return run, records, build_trainer(run, built, records, args, ConKDTrainer, callbacks, teachers=teachers)


def train_student(cfg: StudentRunConfig, callbacks=()) -> dict:
    return train_and_save(*build_student_trainer(cfg, callbacks))
