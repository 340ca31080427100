"""One training run of the LM on the output format (intent, target semantic IDs, response): the dialogue teacher
(plain next-token loss) and the ConKD student (gencrs.training.conkd) are both this run with another trainer.

A run is three steps, each returning named parts: `prepare_run` (checks, dataset, code table, manifest), `build_model`
(loaded, extended, quantized, LoRA), `run_records`, `training_args` (the trainer's config class) and `build_trainer`;
then `train_and_save`. `train_sft` is the dialogue teacher's run; gencrs.training.student the student's.

The run directory OUT holds: manifest.json (config, package versions, data and code hashes), checkpoints/ (HF Trainer
checkpoints, resumed from after a kill), tensorboard/, log.jsonl (every logged step), loss.png, summary.json and the
final model in OUT/adapter (LoRA / QLoRA: a PEFT adapter over the extended base) or OUT/model (full fine-tuning).
"""

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from datasets import Dataset as HFDataset
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import TrainerCallback
from trl import SFTConfig

from gencrs import model_dir
from gencrs.data import Dataset, load_dataset
from gencrs.data.records import approximate_records, item_records, sft_records
from gencrs.errors import GencrsError
from gencrs.io import atomic_dir, atomic_write_json, last_complete_checkpoint
from gencrs.model import (
    check_init_adapter,
    ensure_extended,
    load_model,
    resolve_dtype,
    start_from_adapter,
)
from gencrs.semantic_ids import check_item_texts
from gencrs.training.manifest import run_manifest
from gencrs.training.trainer import GencrsSFTConfig, IndexedCollator, LogitsSFTTrainer
from tokenizer_ext.codebook import CodeBook

log = logging.getLogger(__name__)
SFT_FIELDS = {f.name for f in fields(SFTConfig)}


@dataclass
class SFTRunConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    base_model: str = "runs/tiny_base_synthetic"  # an HF directory or hub name (8B: meta-llama/Llama-3.1-8B-Instruct)
    semantic_ids: str = "runs/semantic_ids_synthetic"  # directory written by recipes/build_semantic_ids.py
    out: str = "runs/dialogue_teacher_synthetic"
    finetune: str = "lora"  # lora (a PEFT adapter; QLoRA with load_in_4bit) | full (every weight: the tiny CPU model)
    load_in_4bit: bool = False  # QLoRA: bitsandbytes NF4 base
    dtype: str = "auto"  # auto: bfloat16 on CUDA, float32 on the CPU (gencrs.model.placement)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    init_adapter: str | None = None  # LoRA: start the adapter from this one (the dialogue teacher's OUT/adapter)
    max_length: int = 512
    epochs: float = 2.0
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-3
    warmup_ratio: float = 0.03
    save_steps: int = 200
    logging_steps: int = 20
    seed: int = 0
    resume: bool = True  # continue from the last checkpoint in OUT/checkpoints when there is one
    code_loss_weight: float = 1.0  # loss weight of the target span's code tokens (gencrs.training.trainer)
    first_code_loss_weight: float | None = None  # the same at the first level's code tokens; None: code_loss_weight
    train_limit: int | None = None  # train on the first N records only (smoke runs, tests)
    item_records: int = 0  # item-alignment records per catalog item added to train (gencrs.data.records.item_records)
    approximate_train: bool = False  # also learn the target codes of the dataset's approximate train dialogues'
    # recommendation turns (redial_mentions; gencrs.data.records.approximate_records)
    context_codes: bool = False  # every prompt opens with the codes of the items its context mentions
    # (gencrs.format.prompt_messages); the model directory records it, so evaluation prompts the same way
    valid_limit: int | None = None
    group_by_length: bool = False  # batches of similar length (less padding: ReDial turns run from 30 to 440 tokens)
    gradient_checkpointing: bool = True  # recompute activations in backward (TRL's default): an 8B run needs the memory;
    # the tiny CPU models do not, and train faster without it (benchmarks/train_step.py)


def final_model_dir(cfg: SFTRunConfig) -> Path:
    return Path(cfg.out) / ("adapter" if cfg.finetune == "lora" else "model")


@dataclass
class Run:
    """What a run reads, checked against each other."""
    cfg: SFTRunConfig
    out: Path
    dataset: Dataset
    codebook: CodeBook
    titles: dict[str, str]  # item id -> title, as the model writes it


@dataclass
class RunModel:
    model: object  # the base, extended with the format and code tokens (a PEFT model when started from an adapter)
    tokenizer: object
    peft_config: LoraConfig | None  # the adapter the trainer wraps the model in (None: full fine-tuning, or already wrapped)


def prepare_run(cfg: SFTRunConfig) -> Run:
    if cfg.finetune not in ("lora", "full"):
        raise GencrsError(f"finetune must be lora or full, not {cfg.finetune!r}")
    if cfg.load_in_4bit and cfg.finetune != "lora":
        raise GencrsError("load_in_4bit (QLoRA) needs finetune=lora: 4-bit weights cannot be trained directly")
    if cfg.init_adapter and cfg.finetune != "lora":
        raise GencrsError("init_adapter needs finetune=lora; full fine-tuning starts from a model directory: base_model")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    if cfg.approximate_train:
        dataset.require_approximate_train()
    codebook = CodeBook.load(cfg.semantic_ids)
    differ = set(codebook.item_codes) ^ set(dataset.catalog)
    if differ:
        raise GencrsError(f"code table {cfg.semantic_ids} does not match the {dataset.name} catalog "
                          f"({len(differ)} items differ)")
    check_item_texts(cfg.semantic_ids, dataset)
    if cfg.init_adapter:
        check_init_adapter(cfg.init_adapter, cfg.base_model, codebook)
    atomic_write_json(out / "manifest.json", run_manifest(asdict(cfg), dataset))
    return Run(cfg, out, dataset, codebook, {i: dataset.title(i) for i in dataset.catalog})


def lora_config(cfg: SFTRunConfig, token_ids: list[int]) -> LoraConfig:
    # New token rows must learn: in the input embedding and, for an untied head (8B models), in lm_head too.
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules="all-linear",
                      trainable_token_indices={"embed_tokens": token_ids, "lm_head": token_ids}, task_type="CAUSAL_LM")


def build_model(run: Run) -> RunModel:
    cfg = run.cfg
    model, tokenizer = load_model(cfg.base_model, cfg.load_in_4bit, cfg.dtype)
    token_ids = ensure_extended(model, tokenizer, run.codebook, run.titles)
    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model)
    peft_config = lora_config(cfg, token_ids) if cfg.finetune == "lora" else None
    if cfg.init_adapter:
        model, peft_config = start_from_adapter(model, peft_config, cfg.init_adapter), None
    return RunModel(model, tokenizer, peft_config)


@dataclass
class RunRecords:
    """Prompt-completion records (gencrs.data.records); a train record's position is its `example_index`."""
    train: list[dict]  # the train split's turns, the item-alignment records, the student's teacher-labelled turns
    valid: list[dict]


def run_records(run: Run, tokenizer) -> RunRecords:
    cfg = run.cfg
    train = sft_records(run.dataset, "train", run.codebook, tokenizer, cfg.max_length, cfg.train_limit,
                        cfg.context_codes)
    if cfg.item_records:
        train += item_records(run.dataset, run.codebook, cfg.item_records, cfg.seed)
    if cfg.approximate_train:
        approximate = approximate_records(run.dataset, run.codebook, tokenizer, cfg.max_length, cfg.context_codes)
        log.info("approximate_train: %d recommendation turns of %d approximate dialogues", len(approximate),
                 len(run.dataset.approximate_train))
        train += approximate
    valid = sft_records(run.dataset, "valid", run.codebook, tokenizer, cfg.max_length, cfg.valid_limit,
                        cfg.context_codes)
    log.info("%s: %d train / %d valid records", run.out, len(train), len(valid))
    return RunRecords(train, valid)


def training_args(cfg: SFTRunConfig, args_cls=GencrsSFTConfig) -> GencrsSFTConfig:
    """The trainer's config: TRL's SFTConfig fields from the run config, and the trainer's own settings (the fields its
    config class adds to SFTConfig: the code weights; ConKD's gamma, gate, eta, rec_temperature) copied from the run
    config by name."""
    own = {f.name: getattr(cfg, f.name) for f in fields(args_cls) if f.name not in SFT_FIELDS}
    train_dtype = resolve_dtype(cfg.dtype)
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(cfg.out) / "tensorboard")
    return args_cls(
        output_dir=str(Path(cfg.out) / "checkpoints"), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of all steps
        lr_scheduler_type="cosine", logging_steps=cfg.logging_steps, save_steps=cfg.save_steps, save_total_limit=2,
        eval_strategy="epoch", max_length=cfg.max_length, completion_only_loss=True, loss_type="nll",
        report_to=["tensorboard"], seed=cfg.seed, use_cpu=not torch.cuda.is_available(),
        bf16=train_dtype == torch.bfloat16, fp16=train_dtype == torch.float16,
        dataloader_num_workers=0, remove_unused_columns=True,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        gradient_checkpointing=cfg.gradient_checkpointing,
        **own)


def build_trainer(run: Run, built: RunModel, records: RunRecords, args: GencrsSFTConfig, trainer_cls=LogitsSFTTrainer,
                  callbacks=(), **trainer_kwargs) -> LogitsSFTTrainer:
    """The trainer over the run's records; `trainer_kwargs` go to `trainer_cls` (ConKD: teachers)."""
    as_hf = lambda rows: HFDataset.from_list([{"prompt": r["prompt"], "completion": r["completion"], "example_index": n}
                                              for n, r in enumerate(rows)])
    return trainer_cls(model=built.model, args=args, train_dataset=as_hf(records.train), eval_dataset=as_hf(records.valid),
                       processing_class=built.tokenizer,
                       data_collator=IndexedCollator(pad_token_id=built.tokenizer.pad_token_id),
                       peft_config=built.peft_config, callbacks=[JsonlLogCallback(run.out / "log.jsonl"), *callbacks],
                       codebook=run.codebook, codes_only=[bool(r.get("codes_only")) for r in records.train],
                       **trainer_kwargs)


class JsonlLogCallback(TrainerCallback):
    """Appends every log entry (with its step) to OUT/log.jsonl; on resume, entries past the checkpoint are dropped
    first so the file tells one consistent history."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= state.global_step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


def plot_log(log_path: Path, png_path: Path) -> None:
    """Training curves from log.jsonl: every logged loss part against the step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    keys = [k for k in ("loss", "nll", "kd_dialogue", "kd_rec", "gate", "eval_loss") if any(k in r for r in rows)]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
        points = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot(*zip(*points), label=key, marker="o" if key == "eval_loss" else None)
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = png_path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png_path)


def train_and_save(run: Run, records: RunRecords, trainer: LogitsSFTTrainer) -> dict:
    """Train (resuming from the last checkpoint), evaluate on the validation split, save the final model atomically;
    returns the run summary."""
    cfg = run.cfg
    resume_from = last_complete_checkpoint(run.out / "checkpoints") if cfg.resume else None
    if resume_from:
        log.info("resuming from %s", resume_from)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    metrics = trainer.evaluate()
    final = final_model_dir(cfg)
    if trainer.is_world_process_zero():
        with atomic_dir(final) as tmp:
            trainer.model.save_pretrained(tmp)
            trainer.processing_class.save_pretrained(tmp)
            model_dir.write(tmp, run.codebook, run.titles, cfg.base_model if cfg.finetune == "lora" else None,
                            context_codes=cfg.context_codes)
            (tmp / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
        plot_log(run.out / "log.jsonl", run.out / "loss.png")
    summary = {"model": str(final), "train_records": len(records.train), "valid_records": len(records.valid),
               "eval_loss": metrics.get("eval_loss"),
               "steps": trainer.state.global_step, "world_size": trainer.args.world_size}
    if trainer.is_world_process_zero():
        atomic_write_json(run.out / "summary.json", summary)
    return summary


def train_sft(cfg: SFTRunConfig, callbacks=()) -> dict:
    """The dialogue teacher: plain next-token loss on the output format."""
    run = prepare_run(cfg)
    built = build_model(run)
    records = run_records(run, built.tokenizer)
    trainer = build_trainer(run, built, records, training_args(cfg), callbacks=callbacks)
    return train_and_save(run, records, trainer)
