"""Train the knowledge-graph recommendation teacher (R-GCN + attention-pooled context entities + context text).

    python recipes/train_rec_teacher.py [--config recipes/configs/rec_teacher_redial.yaml] [key=value ...]

Writes OUT/teacher/ (model, graph, config; loadable by `python -m eval run model=OUT/teacher`), OUT/summary.json,
and per-epoch checkpoints; a killed run resumes from OUT/checkpoint.pt.
"""

import sys

from gencrs.cli import run_recipe
from gencrs.teachers.rec_train import RecTeacherConfig, train_rec_teacher


def job(cfg: RecTeacherConfig) -> dict:
    return {k: v for k, v in train_rec_teacher(cfg).items() if k != "history"}


if __name__ == "__main__":
    sys.exit(run_recipe("train_rec_teacher", RecTeacherConfig, job))
