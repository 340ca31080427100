"""Make the CPU-scale base model: tokenizer trained on the corpus + tiny Llama, optionally pre-trained.

    python recipes/make_tiny_base.py [--config FILE.yaml] [dataset=redial out=runs/tiny_base_redial pretrain_minutes=5 ...]
"""

import logging
import sys

from gencrs.config import load_config
from gencrs.errors import GencrsError
from gencrs.tiny_base import TinyBaseConfig, build_tiny_base


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(TinyBaseConfig)
        out = build_tiny_base(cfg)
    except (GencrsError, ValueError) as e:
        print(f"make_tiny_base: error: {e}", file=sys.stderr)
        return 1
    print(f"tiny base model written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
