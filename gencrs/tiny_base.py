"""The CPU-scale stand-in for the 8B instruct model: a byte-level BPE tokenizer trained on the corpus, a chat
template, and a small Llama-architecture model (head_dim 64, which vLLM's CPU attention needs), optionally
pre-trained for a few minutes on the corpus' dialogues. Saved as a normal HF model directory."""

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from gencrs.data import Dataset, load_dataset
from gencrs.format import render_mentions
from gencrs.io import atomic_dir, atomic_write_json

log = logging.getLogger(__name__)

BOS, EOS, PAD, TURN_START = "<|begin_of_text|>", "<|end|>", "<|pad|>", "<|start|>"
# Turn layout (Llama-3-like): <|start|>role\ncontent<|end|>\n
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start|>{{ message['role'] }}\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|start|>assistant\n{% endif %}"
)


@dataclass
class TinyBaseConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    out: str = "runs/tiny_base_synthetic"
    vocab_size: int = 4096
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4  # head_dim = hidden_size / heads = 64
    kv_heads: int = 2
    intermediate_size: int = 768
    max_positions: int = 2048
    pretrain_minutes: float = 2.0  # wall-time budget; 0 = no pre-training (random weights)
    pretrain_max_steps: int = 2000
    seq_len: int = 256
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0


def corpus_texts(dataset: Dataset) -> list[str]:
    """Plain text of every train dialogue (items as titles) and every catalog entry."""
    texts = []
    for dialogue in dataset.splits.get("train", []):
        texts.extend(render_mentions(t.text, dataset.title) for t in dialogue.turns)
    for item in dataset.catalog.values():
        attributes = [value for values in item.attributes.values() for value in values]
        texts.append(" ".join([item.display, *item.genres, *item.directors, *item.actors, *attributes, item.plot or ""]))
    return texts


def chat_documents(dataset: Dataset) -> list[list[dict]]:
    return [
        [{"role": t.role, "content": render_mentions(t.text, dataset.title)} for t in d.turns]
        for d in dataset.splits.get("train", [])
    ]


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[BOS, EOS, PAD, TURN_START],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=[TURN_START], chat_template=CHAT_TEMPLATE,
    )


def make_model(cfg: TinyBaseConfig, tokenizer) -> LlamaForCausalLM:
    if cfg.hidden_size % cfg.heads or cfg.hidden_size // cfg.heads != 64:
        raise ValueError(f"hidden_size / heads must be 64 (vLLM CPU attention), got {cfg.hidden_size}/{cfg.heads}")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.kv_heads,
        head_dim=64, max_position_embeddings=cfg.max_positions, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(config)


def pretrain(model, tokenizer, documents: list[list[dict]], cfg: TinyBaseConfig) -> dict:
    """Next-token training on the chat-rendered dialogues, packed into fixed-length rows, within a time budget."""
    ids = []
    for doc in documents:
        ids.extend(tokenizer.apply_chat_template(doc, tokenize=True, return_dict=False))
    n_rows = len(ids) // cfg.seq_len
    if n_rows < 1:
        raise ValueError(f"corpus has {len(ids)} tokens, fewer than one row of seq_len={cfg.seq_len}")
    rows = torch.tensor(ids[: n_rows * cfg.seq_len]).view(n_rows, cfg.seq_len)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 50))
    rng = random.Random(cfg.seed)
    model.train()
    start, step, losses = time.monotonic(), 0, []
    bar = tqdm(total=cfg.pretrain_max_steps, desc="pretrain tiny base", unit="step")
    while step < cfg.pretrain_max_steps and time.monotonic() - start < cfg.pretrain_minutes * 60:
        batch = rows[rng.sample(range(n_rows), min(cfg.batch_size, n_rows))]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    tail = losses[-20:]
    return {"steps": step, "tokens": int(len(ids)), "first_loss": losses[0], "final_loss": sum(tail) / len(tail),
            "final_ppl": math.exp(sum(tail) / len(tail)), "seconds": round(time.monotonic() - start, 1)}


def build_tiny_base(cfg: TinyBaseConfig) -> Path:
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    tokenizer = train_tokenizer(corpus_texts(dataset), cfg.vocab_size)
    model = make_model(cfg, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny base: %d tokens in vocabulary, %.2fM parameters", len(tokenizer), n_params / 1e6)
    report = {"vocab": len(tokenizer), "parameters": n_params}
    if cfg.pretrain_minutes > 0:
        report["pretrain"] = pretrain(model, tokenizer, chat_documents(dataset), cfg)
        log.info("pre-training: %s", json.dumps(report["pretrain"]))
    with atomic_dir(cfg.out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / "gencrs_tiny_base.json", {"config": vars(cfg), **report})
    return Path(cfg.out)
