"""Make the CPU-scale base model: tokenizer trained on the corpus + tiny Llama, optionally pre-trained.

    python recipes/make_tiny_base.py [--config FILE.yaml] [dataset=redial out=runs/tiny_base_redial pretrain_minutes=5 ...]
"""

import sys

from gencrs.cli import run_recipe
from gencrs.tiny_base import TinyBaseConfig, build_tiny_base

if __name__ == "__main__":
    sys.exit(run_recipe("make_tiny_base", TinyBaseConfig, lambda cfg: {"tiny base model written to": str(build_tiny_base(cfg))}))
