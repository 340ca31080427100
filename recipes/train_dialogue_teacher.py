"""Train the dialogue teacher: LoRA (or QLoRA) on the base LM with the structured turn format, plain next-token loss.

    python recipes/train_dialogue_teacher.py [--config recipes/configs/dialogue_teacher_redial.yaml] [key=value ...]
    accelerate launch --config_file accelerate_config.yaml recipes/train_dialogue_teacher.py --config recipes/configs/dialogue_teacher_redial_8b.yaml

Writes OUT/adapter/ (PEFT adapter, tokenizer, codes.json, catalog.json; `python -m eval run model=OUT/adapter`);
a killed run resumes from the last checkpoint in OUT/checkpoints.
"""

import sys

from gencrs.cli import run_recipe
from gencrs.training.sft import SFTRunConfig, train_sft

if __name__ == "__main__":
    sys.exit(run_recipe("train_dialogue_teacher", SFTRunConfig, train_sft))
