"""Dialogue teacher: the base LM fine-tuned on the output format (intent, target semantic IDs, response) with plain
next-token loss on the assistant turn (trained by gencrs.training.sft.train_sft, recipes/train_dialogue_teacher.py).
Here: the statistic ConKD's gate relies on."""

import torch

from gencrs.format import RESPONSE_START
from gencrs.teachers.outputs import encode_records, online_dialogue_outputs
from tokenizer_ext.codebook import CodeBook


def gate_statistics(model, tokenizer, codebook: CodeBook, records: list[dict], batch_size: int = 16) -> dict:
    """The statistic ConKD's gate relies on: the dialogue teacher's mean probability mass on item (code) tokens at
    positions whose gold next token is a code token (inside the target span) vs at ordinary response positions."""
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
