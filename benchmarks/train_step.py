"""Training-step time of the ConKD student with cached and with online teachers, against plain SFT: the same model,
the same batches, one process, interleaved repeats; reported as ratios to plain SFT.

    python benchmarks/train_step.py [--config recipes/configs/sft_conkd_synthetic_tiny.yaml] [key=value ...] \
        [bench_steps=10]
    # SmolLM2 (after recipes/configs/sft_conkd_synthetic_smollm2.yaml built its dialogue teacher), LoRA; add
    # load_in_4bit=true bench_steps=3 for QLoRA:
    python benchmarks/train_step.py dataset=synthetic base_model=runs/smollm2_135m_instruct \
        codes=runs/semantic_ids_synthetic rec_teacher=runs/rec_teacher_synthetic/teacher \
        dialogue_teacher=runs/dialogue_teacher_synthetic_smollm2/adapter finetune=lora lora_r=16 lora_alpha=32 \
        batch_size=4 max_length=256 train_limit=64 valid_limit=4 teacher_cache=runs/bench_train_step_smollm2/teacher_cache \
        bench_steps=5 out=runs/bench_train_step_smollm2/lora

A step is `trainer.training_step` (forward, loss, backward); the optimizer step is the same for all three and left out.
Needs the run's parts (base, codes, both teachers); `python recipes/sft_conkd.py` builds them on the synthetic default.
"""

import json
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from gencrs.config import load_config
from gencrs.teachers.outputs import TeacherSource
from gencrs.training.sft import build_trainer
from gencrs.training.student import ConKDConfig, teachers_for
from gencrs.training.trainer import ConKDTrainer


@dataclass
class BenchConfig(ConKDConfig):
    out: str = "runs/bench_train_step"
    bench_steps: int = 10  # timed steps per variant (after one warm-up step each)
    train_limit: int | None = 256
    valid_limit: int | None = 8
    resume: bool = False


def main(cfg: BenchConfig) -> dict:
    torch.manual_seed(cfg.seed)
    trainer, run = build_trainer(cfg, ConKDTrainer, teachers_for(cfg))
    cached, tokenizer = trainer.teachers, trainer.processing_class
    online_cfg = ConKDConfig(**{**{k: v for k, v in cfg.__dict__.items() if k != "bench_steps"}, "teacher_outputs": "online"})
    online: TeacherSource = teachers_for(online_cfg)(run["dataset"], run["train"], tokenizer, run["codebook"])["teachers"]
    model = trainer.model
    model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which this loop does not run
    batches = [trainer._prepare_inputs(b) for _, b in zip(range(cfg.bench_steps + 1), trainer.get_train_dataloader())]
    variants = {"sft": (0.0, cached), "conkd_cached": (cfg.gamma, cached), "conkd_online": (cfg.gamma, online)}
    times = {name: [] for name in variants}
    for n, batch in enumerate(batches):
        for name, (gamma, teachers) in variants.items():  # interleaved: drift in machine load hits all three alike
            trainer.gamma, trainer.teachers = gamma, teachers
            start = time.perf_counter()
            trainer.training_step(model, batch)
            elapsed = time.perf_counter() - start
            model.zero_grad(set_to_none=True)
            if n > 0:  # the first batch is the warm-up
                times[name].append(elapsed)
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {"base_model": cfg.base_model, "batch_size": cfg.batch_size, "max_length": cfg.max_length,
              "steps_timed": cfg.bench_steps, "finetune": cfg.finetune, "load_in_4bit": cfg.load_in_4bit,
              "median_seconds": {k: round(v, 4) for k, v in median.items()},
              "ratio_to_sft": {k: round(v / median["sft"], 3) for k, v in median.items()}}
    print(json.dumps(result, indent=2))
    return result



if __name__ == "__main__":
    main(load_config(BenchConfig, sys.argv[1:]))
