"""A GGUF model file as a Hugging Face model directory that `base_model` can name (gencrs.gguf_base).

    python recipes/convert_gguf.py [gguf=smollm2 out=runs/smollm2_135m_instruct]   # the packaged SmolLM2-135M-Instruct
    python recipes/convert_gguf.py gguf=/path/to/model.gguf out=runs/my_base
"""

import sys

from gencrs.cli import run_recipe
from gencrs.gguf_base import GgufBaseConfig, convert_gguf

if __name__ == "__main__":
    sys.exit(run_recipe("convert_gguf", GgufBaseConfig, lambda cfg: {"base model written to": str(convert_gguf(cfg))}))
