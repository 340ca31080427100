"""Export a trained model (PEFT adapter or full directory) as one servable directory for vLLM.

    python recipes/export.py model=runs/student_synthetic/model out=runs/export/student_synthetic
    python recipes/export.py model=runs/student_redial_hard/adapter out=runs/export/student_redial dtype=bfloat16

The adapter is merged into its base (vLLM LoRA cannot carry the new token rows); tokenizer, chat template, codes.json
and catalog.json are written beside the weights. Serve with `gencrs serve model=OUT`.
"""

import sys
from dataclasses import dataclass

from gencrs.cli import run_recipe


@dataclass
class ExportConfig:
    model: str = "runs/student_synthetic/model"
    out: str = "runs/export/student_synthetic"
    dtype: str = "float32"  # bfloat16 for a GPU


def job(cfg: ExportConfig) -> dict:
    from gencrs.serving.export import export_model
    return {"exported": str(export_model(cfg.model, cfg.out, cfg.dtype))}


if __name__ == "__main__":
    sys.exit(run_recipe("export", ExportConfig, job))
