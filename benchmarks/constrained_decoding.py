"""Per-token decoding time with the trie-constrained turn processor vs without: same model, same prompts, same batch.

    GENCRS_DATA_DIR=../shared/data .venv/bin/python benchmarks/constrained_decoding.py model=runs/export/student_redial
    .venv/bin/python benchmarks/constrained_decoding.py model=runs/export/student_synthetic dataset=synthetic

Both runs generate exactly --new-tokens tokens per row (min_new_tokens = max_new_tokens), greedy, on ReDial test
contexts; the numbers are medians of --repeat runs, interleaved so that machine noise hits both alike.
"""

import statistics
import sys
import time
from dataclasses import dataclass

import torch

from eval.generative import GenerativeRecommender
from gencrs.cli import run_recipe
from gencrs.data import load_dataset
from gencrs.data.protocols import build_instances, contexts_of
from gencrs.decoding.hf import TurnConstraintLogitsProcessor


def per_token_seconds(rec, contexts, new_tokens, constrained):
    inputs = rec._encode(rec.prompts(contexts))
    processors = [TurnConstraintLogitsProcessor(rec.rules, inputs["input_ids"].shape[1])] if constrained else []
    start = time.perf_counter()
    with torch.no_grad():
        rec.model.generate(**inputs, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           logits_processor=processors, pad_token_id=rec.tokenizer.pad_token_id)
    return (time.perf_counter() - start) / new_tokens


@dataclass
class BenchConfig:
    model: str = "???"  # a model directory (trained or exported)
    dataset: str = "redial"
    new_tokens: int = 48
    repeat: int = 5
    batches: str = "1,32"


def main(cfg: BenchConfig) -> dict:
    torch.manual_seed(0)
    rec = GenerativeRecommender.load(cfg.model)
    contexts = contexts_of(build_instances(load_dataset(cfg.dataset), "test", "recommender"))
    report = {"model": cfg.model, "new_tokens": cfg.new_tokens, "vocab": rec.constraint.vocab_size}
    for batch in map(int, cfg.batches.split(",")):
        ctx = contexts[:batch]
        per_token_seconds(rec, ctx, 4, True)  # warm-up
        times = {True: [], False: []}
        for _ in range(cfg.repeat):
            for constrained in (False, True):
                times[constrained].append(per_token_seconds(rec, ctx, cfg.new_tokens, constrained))
        plain, constrained = statistics.median(times[False]), statistics.median(times[True])
        report[f"batch_{batch}"] = {"unconstrained_ms_per_token": round(plain * 1e3, 3),
                                    "constrained_ms_per_token": round(constrained * 1e3, 3),
                                    "ratio_constrained_over_unconstrained": round(constrained / plain, 3)}
    report["mask_cache_bytes"] = rec.rules.mask_cache_bytes()  # the rule's own device memory after the runs
    return report


if __name__ == "__main__":
    sys.exit(run_recipe("constrained_decoding", BenchConfig, main))
