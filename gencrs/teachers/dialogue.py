"""Dialogue teacher: the base LM fine-tuned on the output format (intent, target semantic IDs, response) with plain
next-token loss on the assistant turn: LoRA/QLoRA saved as a PEFT adapter, or (the tiny CPU model) fully fine-tuned.
It is the run of gencrs.training.sft with the plain trainer."""

from dataclasses import dataclass

from gencrs.training.sft import SFTRunConfig, train_sft
from tokenizer_ext.codebook import CodeBook


@dataclass
class DialogueTeacherConfig(SFTRunConfig):
    out: str = "runs/dialogue_teacher_synthetic"


def train_dialogue_teacher(cfg: DialogueTeacherConfig) -> dict:
    return train_sft(cfg)


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
            mass = out["mass"].cpu()
            inside.append(mass[is_code])
            ordinary.append(mass[after_response & ~is_code])
    inside, ordinary = torch.cat(inside), torch.cat(ordinary)
    return {"target_span_mass": float(inside.mean()) if len(inside) else float("nan"), "target_positions": len(inside),
            "response_mass": float(ordinary.mean()) if len(ordinary) else float("nan"), "response_positions": len(ordinary)}
