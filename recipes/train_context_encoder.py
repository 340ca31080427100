"""Fine-tune a sentence encoder on (dialogue context, target item text) pairs: contrastive, in-batch negatives.

    python recipes/train_context_encoder.py [--config recipes/configs/context_encoder_redial.yaml] [key=value ...]

Writes OUT/encoder/ (the weights and the item texts; a recommender: `python -m eval run model=OUT/encoder`) and
OUT/summary.json (valid recall); a killed run resumes from OUT/checkpoints/.
"""

import sys

from gencrs.cli import run_recipe
from gencrs.teachers.context_encoder import ContextEncoderConfig, train_context_encoder

if __name__ == "__main__":
    sys.exit(run_recipe("train_context_encoder", ContextEncoderConfig, train_context_encoder))
