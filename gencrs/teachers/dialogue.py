"""Dialogue teacher: the base LM fine-tuned with LoRA on the output format (intent, target semantic IDs, response)
with plain next-token loss on the assistant turn, saved as a PEFT adapter. TRL's SFTTrainer does the training."""

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from gencrs.data import load_dataset
from gencrs.errors import GencrsError
from gencrs.training.model import ensure_extended, load_base, save_model_meta
from gencrs.training.records import sft_records
from tokenizer_ext.codebook import CodeBook

log = logging.getLogger(__name__)


@dataclass
class DialogueTeacherConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    base_model: str = "runs/tiny_base_synthetic"  # an HF directory or hub name (8B: meta-llama/Llama-3.1-8B-Instruct)
    codes: str = "runs/semantic_ids_synthetic"  # directory written by `python -m tokenizer_ext build`
    out: str = "runs/dialogue_teacher_synthetic"
    load_in_4bit: bool = False  # QLoRA (bitsandbytes NF4)
    dtype: str = "float32"  # bfloat16 on a GPU
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
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
    resume: bool = True  # continue from the last checkpoint in `out` when there is one


def lora_config(cfg, token_ids: list[int]):
    from peft import LoraConfig
    # New token rows must learn: in the input embedding and, for an untied head (8B models), in lm_head too.
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules="all-linear",
                      trainable_token_indices={"embed_tokens": token_ids, "lm_head": token_ids}, task_type="CAUSAL_LM")


def train_dialogue_teacher(cfg: DialogueTeacherConfig) -> dict:
    from datasets import Dataset as HFDataset
    from peft import prepare_model_for_kbit_training
    from trl import SFTConfig

    from gencrs.training.trainer import LogitsSFTTrainer

    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    codebook = CodeBook.load(cfg.codes)
    missing = set(codebook.item_codes) ^ set(dataset.catalog)
    if missing:
        raise GencrsError(f"code table {cfg.codes} does not match the {dataset.name} catalog ({len(missing)} items differ)")
    titles = {i: dataset.title(i) for i in dataset.catalog}
    model, tokenizer = load_base(cfg.base_model, cfg.load_in_4bit, cfg.dtype)
    token_ids = ensure_extended(model, tokenizer, codebook, titles)
    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model)
    train = sft_records(dataset, "train", codebook, tokenizer, cfg.max_length)
    valid = sft_records(dataset, "valid", codebook, tokenizer, cfg.max_length)
    log.info("dialogue teacher: %d train / %d valid records", len(train), len(valid))
    out = Path(cfg.out)
    args = SFTConfig(
        output_dir=str(out / "checkpoints"), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr, warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of all steps
        lr_scheduler_type="cosine", logging_steps=cfg.logging_steps, save_steps=cfg.save_steps, save_total_limit=2,
        eval_strategy="epoch", max_length=cfg.max_length, completion_only_loss=True, loss_type="nll",
        report_to=["tensorboard"], seed=cfg.seed, use_cpu=not _cuda(),
        bf16=cfg.dtype == "bfloat16", dataloader_num_workers=0, remove_unused_columns=True,
    )
    drop_key = lambda rows: HFDataset.from_list([{k: v for k, v in r.items() if k != "key"} for r in rows])
    trainer = LogitsSFTTrainer(model=model, args=args, train_dataset=drop_key(train), eval_dataset=drop_key(valid),
                         processing_class=tokenizer, peft_config=lora_config(cfg, token_ids))
    checkpoints = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if cfg.resume and checkpoints else None)
    metrics = trainer.evaluate()
    from gencrs.io import atomic_dir
    with atomic_dir(out / "adapter") as tmp:
        trainer.model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_model_meta(tmp, codebook, titles, cfg.base_model)
        (tmp / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    summary = {"train_records": len(train), "valid_records": len(valid), "eval_loss": metrics.get("eval_loss"),
               "steps": trainer.state.global_step, "log_history": trainer.state.log_history}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def gate_statistics(model, tokenizer, codebook: CodeBook, records: list[dict], batch_size: int = 16) -> dict:
    """The statistic ConKD's gate relies on: the dialogue teacher's mean probability mass on item (code) tokens at
    positions whose gold next token is a code token (inside the target span) vs at ordinary response positions."""
    import torch

    from gencrs.format import RESPONSE_START
    from gencrs.teachers.outputs import encode_records, online_dialogue_outputs

    code_ids = torch.tensor(tokenizer.convert_tokens_to_ids(codebook.all_tokens()))
    response_id = tokenizer.convert_tokens_to_ids(RESPONSE_START)
    inside, ordinary = [], []
    for start in range(0, len(records), batch_size):
        enc, labels = encode_records(tokenizer, records[start:start + batch_size])
        outputs = online_dialogue_outputs(model, enc["input_ids"], enc["attention_mask"], labels, code_ids, top_k=1)
        for out, row_labels in zip(outputs, labels[:, 1:]):
            gold = row_labels[row_labels != -100]
            is_code = torch.isin(gold, code_ids)
            after_response = torch.cumsum(gold == response_id, 0) > 0
            after_response &= gold != response_id
            inside.append(out["mass"][is_code])
            ordinary.append(out["mass"][after_response & ~is_code])
    inside, ordinary = torch.cat(inside), torch.cat(ordinary)
    return {"target_span_mass": float(inside.mean()) if len(inside) else float("nan"), "target_positions": len(inside),
            "response_mass": float(ordinary.mean()) if len(ordinary) else float("nan"), "response_positions": len(ordinary)}
