"""Training-step time of the ConKD student with cached and with online teachers, against plain SFT: the same model,
the same batches, one process, interleaved repeats; reported as ratios to plain SFT.

    python benchmarks/train_step.py [key=value ...] [bench_steps=10]     # the tiny synthetic base, LoRA
    # SmolLM2 (after recipes/configs/sft_conkd_synthetic_smollm2.yaml built its dialogue teacher), LoRA; add
    # load_in_4bit=true bench_steps=3 for QLoRA:
    python benchmarks/train_step.py dataset=synthetic base_model=runs/smollm2_135m_instruct \
        semantic_ids=runs/semantic_ids_synthetic rec_teacher=runs/rec_teacher_synthetic/teacher \
        dialogue_teacher=runs/dialogue_teacher_synthetic_smollm2/adapter finetune=lora lora_r=16 lora_alpha=32 \
        batch_size=4 max_length=256 train_limit=64 valid_limit=4 teacher_cache=runs/bench_train_step_smollm2/teacher_cache \
        bench_steps=5 out=runs/bench_train_step_smollm2/lora

A step is `trainer.training_step` (forward, loss, backward); the optimizer step is the same for all and left out.
Each variant's trainer is built by `build_student_trainer`, as `train_student` builds it (a copy of the model each);
`conkd_cached_checkpointing` is the cached variant with gradient checkpointing (TRL's default, the 8B runs' setting);
`sft_full_logits` is plain SFT with the output layer applied at every position (the loss path before the trainers
applied it at the completion positions only).
Needs the run's parts (base, codes, both teachers); `python recipes/sft_conkd.py` builds them on the synthetic default.
"""

import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace

import torch

from gencrs.cli import run_recipe
from gencrs.model import full_logits
from gencrs.training.student import StudentRunConfig, build_student_trainer


@dataclass
class BenchConfig(StudentRunConfig):
    out: str = "runs/bench_train_step"
    gradient_checkpointing: bool = False  # the variants without it; `conkd_cached_checkpointing` has it on
    teacher_cache: str | None = "runs/bench_train_step/teacher_cache"  # built here for the benchmark's records
    bench_steps: int = 10  # timed steps per variant (after one warm-up step each)
    train_limit: int | None = 256
    valid_limit: int | None = 8
    resume: bool = False


def main(cfg: BenchConfig) -> dict:
    run_cfg = StudentRunConfig(**{k: v for k, v in asdict(cfg).items() if k != "bench_steps"})
    variants = {"sft": replace(run_cfg, gamma=0.0), "sft_full_logits": replace(run_cfg, gamma=0.0),
                "conkd_cached": replace(run_cfg, teacher_outputs="cache"),
                "conkd_online": replace(run_cfg, teacher_outputs="online"),
                "conkd_cached_checkpointing": replace(run_cfg, teacher_outputs="cache", gradient_checkpointing=True)}
    trainers = {}
    for name, variant in variants.items():  # built as users build them; the same seed gives the same model
        torch.manual_seed(cfg.seed)
        trainers[name] = build_student_trainer(variant)[2]
        trainers[name].model.train()
        if variant.gradient_checkpointing:  # Trainer.train() turns it on, and this loop does not run train()
            trainers[name].model.gradient_checkpointing_enable()
        trainers[name].current_gradient_accumulation_steps = 1  # set by Trainer.train(), which this loop does not run
    trainers["sft_full_logits"].completion_logits = full_logits  # the (model, inputs, mask) loss path before 2026-12-02
    first = trainers["sft"]
    batches = [first._prepare_inputs(b) for _, b in zip(range(cfg.bench_steps + 1), first.get_train_dataloader())]
    times = {name: [] for name in variants}
    for n, batch in enumerate(batches):
        for name, trainer in trainers.items():  # interleaved: drift in machine load hits all three alike
            start = time.perf_counter()
            trainer.training_step(trainer.model, batch)
            elapsed = time.perf_counter() - start
            trainer.model.zero_grad(set_to_none=True)
            if n > 0:  # the first batch is the warm-up
                times[name].append(elapsed)
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {"base_model": cfg.base_model, "batch_size": cfg.batch_size, "max_length": cfg.max_length,
              "steps_timed": cfg.bench_steps, "finetune": cfg.finetune, "load_in_4bit": cfg.load_in_4bit,
              "median_seconds": {k: round(v, 4) for k, v in median.items()},
              "ratio_to_sft": {k: round(v / median["sft"], 3) for k, v in median.items()}}
    return result


if __name__ == "__main__":
    sys.exit(run_recipe("train_step", BenchConfig, main))
