"""One training run of the LM on the output format (intent, target semantic IDs, response): the dialogue teacher
(plain next-token loss) and the ConKD student (gencrs.training.conkd) are both this run with another trainer.

The run directory OUT holds: manifest.json (config, package versions, data and code hashes), checkpoints/ (HF Trainer
checkpoints, resumed from after a kill), tensorboard/, log.jsonl (every logged step), loss.png, summary.json and the
final model in OUT/adapter (LoRA / QLoRA: a PEFT adapter over the extended base) or OUT/model (full fine-tuning).
"""

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import TrainerCallback

from gencrs.data import load_dataset
from gencrs.errors import GencrsError
from gencrs.io import atomic_dir, atomic_write_json
from gencrs.training.manifest import run_manifest
from gencrs.training.model import (check_init_adapter, ensure_extended, load_model, resolve_dtype, save_model_meta,
                                   start_from_adapter)
from gencrs.training.records import item_records, sft_records
from tokenizer_ext.codebook import CodeBook

log = logging.getLogger(__name__)


@dataclass
class SFTRunConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    base_model: str = "runs/tiny_base_synthetic"  # an HF directory or hub name (8B: meta-llama/Llama-3.1-8B-Instruct)
    codes: str = "runs/semantic_ids_synthetic"  # directory written by `python -m tokenizer_ext build`
    out: str = "runs/dialogue_teacher_synthetic"
    finetune: str = "lora"  # lora (a PEFT adapter; QLoRA with load_in_4bit) | full (every weight: the tiny CPU model)
    load_in_4bit: bool = False  # QLoRA: bitsandbytes NF4 base
    dtype: str = "auto"  # auto: bfloat16 on CUDA, float32 on the CPU (gencrs.training.model.placement)
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
    train_limit: int | None = None  # train on the first N records only (smoke runs, tests)
    item_records: int = 0  # item-alignment records per catalog item added to train (gencrs.training.records.item_records)
    valid_limit: int | None = None
    group_by_length: bool = False  # batches of similar length (less padding: ReDial turns run from 30 to 440 tokens)


def final_model_dir(cfg: SFTRunConfig) -> Path:
    return Path(cfg.out) / ("adapter" if cfg.finetune == "lora" else "model")


def lora_config(cfg: SFTRunConfig, token_ids: list[int]):
    from peft import LoraConfig
    # New token rows must learn: in the input embedding and, for an untied head (8B models), in lm_head too.
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules="all-linear",
                      trainable_token_indices={"embed_tokens": token_ids, "lm_head": token_ids}, task_type="CAUSAL_LM")


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


def last_checkpoint(checkpoints: Path) -> Path | None:
    found = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return found[-1] if found else None


def build_trainer(cfg: SFTRunConfig, trainer_cls=None, make_trainer_kwargs=None, callbacks=()):
    """The run's trainer, ready to train, and what the run uses besides (dataset, codebook, titles, train records,
    record counts).

    make_trainer_kwargs(dataset, train_records, tokenizer, codebook) -> extra keyword arguments for `trainer_cls`
    (the ConKD student passes its teachers this way)."""
    from datasets import Dataset as HFDataset
    from peft import prepare_model_for_kbit_training
    from trl import SFTConfig

    from gencrs.training.trainer import IndexedCollator, LogitsSFTTrainer

    trainer_cls = trainer_cls or LogitsSFTTrainer
    if cfg.finetune not in ("lora", "full"):
        raise GencrsError(f"finetune must be lora or full, not {cfg.finetune!r}")
    if cfg.load_in_4bit and cfg.finetune != "lora":
        raise GencrsError("load_in_4bit (QLoRA) needs finetune=lora: 4-bit weights cannot be trained directly")
    if cfg.init_adapter and cfg.finetune != "lora":
        raise GencrsError("init_adapter needs finetune=lora; full fine-tuning starts from a model directory: base_model")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    codebook = CodeBook.load(cfg.codes)
    differ = set(codebook.item_codes) ^ set(dataset.catalog)
    if differ:
        raise GencrsError(f"code table {cfg.codes} does not match the {dataset.name} catalog ({len(differ)} items differ)")
    if cfg.init_adapter:
        check_init_adapter(cfg.init_adapter, cfg.base_model, codebook)
    atomic_write_json(out / "manifest.json", run_manifest(asdict(cfg), dataset))
    titles = {i: dataset.title(i) for i in dataset.catalog}
    train_dtype = resolve_dtype(cfg.dtype)
    model, tokenizer = load_model(cfg.base_model, cfg.load_in_4bit, cfg.dtype)
    token_ids = ensure_extended(model, tokenizer, codebook, titles)
    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model)
    peft_config = lora_config(cfg, token_ids) if cfg.finetune == "lora" else None
    if cfg.init_adapter:
        model, peft_config = start_from_adapter(model, peft_config, cfg.init_adapter), None
    train = sft_records(dataset, "train", codebook, tokenizer, cfg.max_length, cfg.train_limit)
    valid = sft_records(dataset, "valid", codebook, tokenizer, cfg.max_length, cfg.valid_limit)
    if cfg.item_records:
        train += item_records(dataset, codebook, cfg.item_records, cfg.seed)
    log.info("%s: %d train / %d valid records", out, len(train), len(valid))
    extra = make_trainer_kwargs(dataset, train, tokenizer, codebook) if make_trainer_kwargs else {}

    os.environ["TENSORBOARD_LOGGING_DIR"] = str(out / "tensorboard")
    args = SFTConfig(
        output_dir=str(out / "checkpoints"), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of all steps
        lr_scheduler_type="cosine", logging_steps=cfg.logging_steps, save_steps=cfg.save_steps, save_total_limit=2,
        eval_strategy="epoch", max_length=cfg.max_length, completion_only_loss=True, loss_type="nll",
        report_to=["tensorboard"], seed=cfg.seed, use_cpu=not _cuda(), bf16=train_dtype == torch.bfloat16,
        fp16=train_dtype == torch.float16,
        dataloader_num_workers=0, remove_unused_columns=True,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
    )
    as_hf = lambda rows: HFDataset.from_list([{"prompt": r["prompt"], "completion": r["completion"], "example_index": n}
                                              for n, r in enumerate(rows)])
    trainer = trainer_cls(model=model, args=args, train_dataset=as_hf(train), eval_dataset=as_hf(valid),
                          processing_class=tokenizer, data_collator=IndexedCollator(pad_token_id=tokenizer.pad_token_id),
                          peft_config=peft_config,
                          callbacks=[JsonlLogCallback(out / "log.jsonl"), *callbacks],
                          code_token_ids=tokenizer.convert_tokens_to_ids(codebook.all_tokens()),
                          code_loss_weight=cfg.code_loss_weight, **extra)
    return trainer, {"dataset": dataset, "codebook": codebook, "titles": titles, "train": train,
                     "train_records": len(train), "valid_records": len(valid)}


def train_sft(cfg: SFTRunConfig, trainer_cls=None, make_trainer_kwargs=None, callbacks=()) -> dict:
    """Train (resuming from the last checkpoint), evaluate on the validation split, save the final model atomically;
    returns the run summary."""
    out = Path(cfg.out)
    trainer, saved = build_trainer(cfg, trainer_cls, make_trainer_kwargs, callbacks)
    tokenizer = trainer.processing_class
    resume_from = last_checkpoint(out / "checkpoints") if cfg.resume else None
    if resume_from:
        log.info("resuming from %s", resume_from)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    metrics = trainer.evaluate()
    final = final_model_dir(cfg)
    if trainer.is_world_process_zero():
        with atomic_dir(final) as tmp:
            trainer.model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            save_model_meta(tmp, saved["codebook"], saved["titles"], cfg.base_model if cfg.finetune == "lora" else None)
            (tmp / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
        plot_log(out / "log.jsonl", out / "loss.png")
    summary = {"model": str(final), "train_records": saved["train_records"], "valid_records": saved["valid_records"],
               "eval_loss": metrics.get("eval_loss"), "steps": trainer.state.global_step,
               "world_size": trainer.args.world_size}
    if trainer.is_world_process_zero():
        atomic_write_json(out / "summary.json", summary)
    return summary


def _cuda() -> bool:
    return torch.cuda.is_available()
